// MetricsPlot: metrics.jsonl read into curves (training and validation lines apart, nulls skipped
// and counted, resumed runs' time summed), bad files named with their line, and the SVG parsed as
// XML: one polyline per run and series, a legend entry per run, tick labels spanning the data.
import Testing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Training
import TestSupport

/// A metrics.jsonl of `steps` training lines every 10 steps (loss falling from `start`), a
/// validation line every 50, and the learning rate `rate`.
func syntheticMetrics(steps: Int, start: Double, rate: Double, elapsedOffset: Double = 0, from first: Int = 10) -> String {
    var text = ""
    for step in stride(from: first, through: steps, by: 10) {
        let loss = start / (1 + Double(step) / 100)
        text += "{\"step\": \(step), \"train_loss\": \(loss), \"lr\": \(rate), \"tokens\": \(step * 768), \"elapsed_s\": \(Double(step) * 0.2 - elapsedOffset), \"tokens_per_s\": 3800, \"grad_norm\": 1.25}\n"
        if step % 50 == 0 {
            text += "{\"step\": \(step), \"train_loss\": \(loss), \"lr\": \(rate), \"tokens\": \(step * 768), \"elapsed_s\": \(Double(step) * 0.2 - elapsedOffset), \"tokens_per_s\": 3700, \"val_loss\": \(loss * 1.1)}\n"
        }
    }
    return text
}

/// Collects elements by name with their attributes, and every text element's content with the
/// `data-panel` of the group around it (the loss or learning-rate axis).
final class SVGCollector: NSObject, XMLParserDelegate {
    var elements: [(name: String, attributes: [String: String])] = []
    var texts: [String] = []
    var panelTexts: [(panel: String?, text: String)] = []
    private var open: [[String: String]] = []
    private var current = ""
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append((name, attributes)); open.append(attributes); current = ""
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
        if name == "text" {
            texts.append(current)
            panelTexts.append((open.reversed().lazy.compactMap { $0["data-panel"] }.first, current))
        }
        current = ""
    }
}

func parseSVG(_ svg: String) throws -> SVGCollector {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = SVGCollector()
    parser.delegate = collector
    #expect(parser.parse(), "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")")
    return collector
}

@Suite struct MetricsPlotTests {
    @Test func readsTrainingValidationAndRateApart() throws {
        let run = try MetricsPlot.parse(syntheticMetrics(steps: 200, start: 4, rate: 1e-3), file: "m.jsonl", name: "a")
        #expect(run.training.map(\.step) == Array(stride(from: 10, through: 200, by: 10)))
        #expect(run.validation.map(\.step) == [50, 100, 150, 200])
        #expect(run.learningRate.count == run.training.count && run.learningRate.allSatisfy { $0.value == 1e-3 })
        #expect(run.validation[0].value == 4 / 1.5 * 1.1)
        #expect(run.training[1].tokens == 20 * 768 && run.training[1].seconds == 4)
        #expect(run.skippedValues == 0 && run.resumes == 0)
    }

    @Test func nullsAreSkippedAndCounted() throws {
        let text = """
        {"step": 1, "train_loss": 4.0, "lr": 0.001}
        {"step": 2, "train_loss": null, "lr": 0.001}
        {"step": 3, "train_loss": 3.0, "lr": 0.001, "val_loss": null}

        """
        let run = try MetricsPlot.parse(text, file: "m.jsonl", name: "a")
        #expect(run.training.map(\.step) == [1] && run.validation.isEmpty && run.skippedValues == 2)
        let svg = try MetricsPlot.svg(runs: [run])
        #expect(try parseSVG(svg).texts.contains { $0.contains("2 null or non-finite value(s) skipped") })
    }

    /// A resumed run's elapsed_s starts again near zero: its time continues from the earlier process's.
    @Test func resumedRunsTimeIsSummed() throws {
        let before = syntheticMetrics(steps: 100, start: 4, rate: 1e-3)
        let after = syntheticMetrics(steps: 200, start: 4, rate: 1e-3, elapsedOffset: 19, from: 110)
        let run = try MetricsPlot.parse(before + after, file: "m.jsonl", name: "a")
        #expect(run.resumes == 1)
        let seconds = run.training.compactMap(\.seconds)
        #expect(zip(seconds, seconds.dropFirst()).allSatisfy { $0 < $1 })
        let resumedElapsed: Double = 200 * 0.2 - 19, firstProcess: Double = 100 * 0.2
        #expect(run.training.last?.seconds == firstProcess + resumedElapsed)
    }

    @Test func badFilesNameTheFileAndLine() throws {
        let cases: [(String, MetricsPlotError)] = [
            ("", .empty("m.jsonl")),
            ("\n\n", .empty("m.jsonl")),
            ("{\"step\": 1, \"train_loss\": 2}\nnot json\n", .malformed(file: "m.jsonl", line: 2, reason: "not a JSON object")),
            ("{\"step\": 1.5, \"train_loss\": 2}\n", .malformed(file: "m.jsonl", line: 1, reason: "no integer \"step\"")),
            ("[1, 2]\n", .malformed(file: "m.jsonl", line: 1, reason: "not a JSON object")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected) { try MetricsPlot.parse(text, file: "m.jsonl", name: "a") }
        }
        #expect("\(MetricsPlotError.malformed(file: "m.jsonl", line: 2, reason: "not a JSON object"))".hasPrefix("m.jsonl:2: "))
        let dir = try makeScratchDirectory("plot")
        #expect(throws: MetricsPlotError.noRunDirectory(dir + "/none")) { try MetricsPlot.read(run: dir + "/none") }
        #expect(throws: MetricsPlotError.noMetrics(dir + "/metrics.jsonl")) { try MetricsPlot.read(run: dir) }
        #expect(throws: MetricsPlotError.nothingToPlot("no runs given")) { try MetricsPlot.svg(runs: []) }
    }

    @Test func svgHasOneCurvePerRunAndSeriesALegendAndTicksOverTheData() throws {
        let a = try MetricsPlot.parse(syntheticMetrics(steps: 300, start: 4.2, rate: 1e-3), file: "a", name: "short & <lr>")
        let b = try MetricsPlot.parse(syntheticMetrics(steps: 500, start: 3.8, rate: 3e-3), file: "b", name: "long")
        for axis in PlotAxis.allCases {
            for scale in LossScale.allCases {
                let svg = try MetricsPlot.svg(runs: [a, b], axis: axis, title: "two runs", lossScale: scale)
                let parsed = try parseSVG(svg)
                #expect(parsed.elements.first?.name == "svg" && parsed.elements.first?.attributes["viewBox"] != nil)
                // Self-contained: no scripts, styles, images or links to elsewhere.
                #expect(!parsed.elements.contains { ["script", "style", "image", "use", "a", "foreignObject"].contains($0.name) })
                #expect(!svg.contains("href") && !svg.contains("url(http"))
                let curves = parsed.elements.filter { $0.name == "polyline" && $0.attributes["class"] == "series" }
                for run in ["short & <lr>", "long"] {
                    for series in ["train", "val", "lr"] {
                        #expect(curves.filter { $0.attributes["data-run"] == run && $0.attributes["data-series"] == series }.count == 1,
                                "\(axis) \(scale): \(run) \(series)")
                    }
                }
                #expect(curves.count == 6)
                let legend = parsed.elements.filter { $0.name == "g" && $0.attributes["class"] == "legend-entry" }
                #expect(legend.map { $0.attributes["data-run"] } == ["short & <lr>", "long"])
                #expect(parsed.texts.contains("short & <lr>") && parsed.texts.contains("long") && parsed.texts.contains("two runs"))
                // Every point lies inside the drawing.
                let size = parsed.elements[0].attributes["viewBox"]!.split(separator: " ").compactMap { Double($0) }
                for c in curves {
                    for pair in c.attributes["points"]!.split(separator: " ") {
                        let xy = pair.split(separator: ",").compactMap { Double($0) }
                        #expect(xy.count == 2 && xy[0] >= 0 && xy[0] <= size[2] && xy[1] >= 0 && xy[1] <= size[3])
                    }
                }
            }
        }
        // Step axis: tick labels cover the longer run's 10…500; loss ticks cover both runs' losses.
        let parsed = try parseSVG(try MetricsPlot.svg(runs: [a, b]))
        let ticks = parsed.texts.compactMap { Double($0) }
        #expect(ticks.contains(500) && ticks.contains(0))
        let losses = (a.training + a.validation + b.training + b.validation).map(\.value)
        let lossTicks = parsed.panelTexts.filter { $0.panel == "loss" }.compactMap { Double($0.text) }
        #expect(lossTicks.count >= 4)
        #expect(lossTicks.min()! <= losses.min()! && lossTicks.max()! >= losses.max()!)
        #expect(parsed.texts.contains("step") && parsed.texts.contains("learning rate"))
        let rateTicks = parsed.panelTexts.filter { $0.panel == "lr" }.map(\.text)
        #expect(rateTicks.contains("3e-3") && rateTicks.contains("1e-3"))
    }

    @Test func tickValuesAreRound() {
        #expect(MetricsPlot.niceTicks(low: 0, high: 300, count: 7) == [0, 50, 100, 150, 200, 250, 300])
        #expect(MetricsPlot.niceTicks(low: 2.3, high: 4.2, count: 6) == [2.5, 3, 3.5, 4])
        #expect(MetricsPlot.niceTicks(low: 0, high: 0.003, count: 4) == [0, 0.001, 0.002, 0.003])
        #expect(MetricsPlot.logTicks(low: 1, high: 100) == [1, 2, 5, 10, 20, 50, 100])
        #expect(MetricsPlot.logTicks(low: 2, high: 4.5) == [2, 3, 4])
        #expect(MetricsPlot.label(1_500_000, spacing: 500_000) == "1.5M")
        #expect(MetricsPlot.label(20_000, spacing: 10_000) == "20k")
        #expect(MetricsPlot.label(0.0006, spacing: 0.0002) == "6e-4")
        #expect(MetricsPlot.label(2.5, spacing: 0.5) == "2.5")
        #expect(MetricsPlot.label(150, spacing: 50) == "150")
    }
}
