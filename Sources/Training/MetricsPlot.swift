// MetricsPlot: `loom plot` — reads runs' metrics.jsonl and draws their curves as one
// self-contained SVG: training and validation loss on the top panel, the learning rate below,
// against step, tokens or training time, one colour per run. Pure functions (text in, text out).
import Foundation

/// One logged value of a run, with the three positions it can be drawn at.
public struct MetricPoint: Equatable, Sendable {
    public var step: Int
    /// Tokens trained on so far (`tokens`), nil when the line has none.
    public var tokens: Double?
    /// Training time so far in seconds: `elapsed_s` (seconds since its process started), summed
    /// over the processes of a resumed run; nil when the line has none.
    public var seconds: Double?
    public var value: Double
}

/// The curves of one run as its metrics.jsonl holds them.
public struct RunMetrics: Equatable, Sendable {
    /// The run's name in the legend (its directory's name).
    public var name: String
    /// `train_loss` of the training lines (the mean over each logging window).
    public var training: [MetricPoint] = []
    /// `val_loss` of the validation lines.
    public var validation: [MetricPoint] = []
    /// `lr` of the training lines (of the validation lines when there are no training lines).
    public var learningRate: [MetricPoint] = []
    /// Lines whose loss or rate was null or not finite (skipped).
    public var skippedValues = 0
    /// Times the run was resumed (`elapsed_s` started again from zero).
    public var resumes = 0
}

/// A metrics file that cannot be plotted: the message names the file (and line) and says what to do.
public enum MetricsPlotError: Error, CustomStringConvertible, Equatable {
    case noRunDirectory(String)
    case noMetrics(String)
    case empty(String)
    case malformed(file: String, line: Int, reason: String)
    case nothingToPlot(String)

    public var description: String {
        switch self {
        case let .noRunDirectory(path): "\(path): no such run directory (give the directory `loom train --run-dir` wrote)"
        case let .noMetrics(path): "\(path): no such file (a run directory holds metrics.jsonl once training has logged)"
        case let .empty(path): "\(path): no metrics records (the run has not logged yet)"
        case let .malformed(file, line, reason): "\(file):\(line): \(reason) (each line must be one JSON object with an integer \"step\")"
        case let .nothingToPlot(what): "nothing to plot: \(what)"
        }
    }
}

/// What the horizontal axis shows.
public enum PlotAxis: String, CaseIterable, Sendable {
    case step, tokens, time
}

/// How the loss axis is scaled.
public enum LossScale: String, CaseIterable, Sendable {
    case linear, log
}

public enum MetricsPlot {
    // MARK: Reading

    /// The metrics of the run directory at `path`, named after the directory.
    public static func read(run path: String) throws -> RunMetrics {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MetricsPlotError.noRunDirectory(path)
        }
        let file = (path.hasSuffix("/") ? String(path.dropLast()) : path) + "/metrics.jsonl"
        guard let data = FileManager.default.contents(atPath: file) else { throw MetricsPlotError.noMetrics(file) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MetricsPlotError.malformed(file: file, line: 1, reason: "not UTF-8 text")
        }
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        let name = (trimmed as NSString).lastPathComponent
        return try parse(text, file: file, name: name.isEmpty ? trimmed : name)
    }

    /// Parses metrics.jsonl text (`file` names it in errors).
    public static func parse(_ text: String, file: String, name: String) throws -> RunMetrics {
        var run = RunMetrics(name: name)
        var trainingRates: [MetricPoint] = [], validationRates: [MetricPoint] = []
        var offset = 0.0, lastElapsed: Double?
        var records = 0
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            if line.allSatisfy(\.isWhitespace) { continue }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw MetricsPlotError.malformed(file: file, line: number, reason: "not a JSON object")
            }
            guard let stepValue = object["step"] as? NSNumber, let step = Int(exactly: stepValue.doubleValue) else {
                throw MetricsPlotError.malformed(file: file, line: number, reason: "no integer \"step\"")
            }
            records += 1
            let elapsed = (object["elapsed_s"] as? NSNumber)?.doubleValue
            if let elapsed, let last = lastElapsed, elapsed < last {
                offset += last
                run.resumes += 1
            }
            if let elapsed { lastElapsed = elapsed }
            let position = MetricPoint(step: step, tokens: (object["tokens"] as? NSNumber)?.doubleValue,
                                       seconds: elapsed.map { $0 + offset }, value: 0)
            func point(_ key: String) -> MetricPoint? {
                guard let value = object[key] else { return nil }
                guard let v = (value as? NSNumber)?.doubleValue, v.isFinite else {
                    run.skippedValues += 1
                    return nil
                }
                var p = position
                p.value = v
                return p
            }
            if object["val_loss"] != nil {
                if let p = point("val_loss") { run.validation.append(p) }
                if let p = point("lr") { validationRates.append(p) }
            } else {
                if let p = point("train_loss") { run.training.append(p) }
                if let p = point("lr") { trainingRates.append(p) }
            }
        }
        guard records > 0 else { throw MetricsPlotError.empty(file) }
        run.learningRate = trainingRates.isEmpty ? validationRates : trainingRates
        return run
    }

    // MARK: Axes

    /// Round tick values covering [low, high]: about `count` of them, 1, 2, 2.5 or 5 × 10ⁿ apart.
    public static func niceTicks(low: Double, high: Double, count: Int = 6) -> [Double] {
        guard low.isFinite, high.isFinite else { return [] }
        if high <= low { return [low] }
        let step = niceStep((high - low) / Double(max(count - 1, 1)))
        let first = (low / step).rounded(.up), last = (high / step).rounded(.down)
        guard last >= first else { return [] }
        return stride(from: first, through: last, by: 1).map { ($0 * step * 1e12).rounded() / 1e12 }
    }

    /// The round step (1, 2, 2.5 or 5 × 10ⁿ) nearest above `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        for factor in [1.0, 2.0, 2.5, 5.0, 10.0] where factor * magnitude >= raw * 0.999_999 { return factor * magnitude }
        return 10 * magnitude
    }

    /// An axis domain: [low, high] widened to the ticks around it.
    static func niceDomain(low: Double, high: Double, count: Int = 6) -> (low: Double, high: Double, ticks: [Double]) {
        var lo = low, hi = high
        if hi <= lo {
            let pad = lo == 0 ? 1 : abs(lo) * 0.05
            lo -= pad; hi += pad
        }
        let step = niceStep((hi - lo) / Double(max(count - 1, 1)))
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        return (lo, hi, niceTicks(low: lo, high: hi, count: count))
    }

    /// Ticks of a log axis over [low, high] (both > 0): 1, 2, 5 × 10ⁿ, or every integer multiple
    /// of 10ⁿ when the range is under a decade and those are too few.
    public static func logTicks(low: Double, high: Double) -> [Double] {
        guard low > 0, high > low else { return low > 0 ? [low] : [] }
        let first = Int(log10(low).rounded(.down)), last = Int(log10(high).rounded(.up))
        for factors in [[1.0, 2.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
            let ticks = (first...last).flatMap { e in factors.map { $0 * pow(10, Double(e)) } }
                .filter { $0 >= low * 0.999_999 && $0 <= high * 1.000_001 }
            if ticks.count >= 3 || factors.count == 9 { return ticks.isEmpty ? [low, high] : ticks }
        }
        return [low, high]
    }

    /// A tick label: SI suffixes for large values (12k, 1.5M), exponent form for tiny ones
    /// (6e-4), else as many decimals as the tick spacing needs.
    public static func label(_ value: Double, spacing: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = abs(value)
        func trimmed(_ s: String) -> String {
            guard s.contains(".") else { return s }
            var t = s
            while t.hasSuffix("0") { t.removeLast() }
            if t.hasSuffix(".") { t.removeLast() }
            return t
        }
        if magnitude >= 10_000 {
            for (scale, suffix) in [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")] where magnitude >= scale {
                let decimals = max(0, Int((-log10(max(spacing, 1e-300) / scale)).rounded(.up)))
                return trimmed(String(format: "%.\(min(decimals, 3))f", value / scale)) + suffix
            }
        }
        if magnitude < 0.01 {
            let exponent = Int((log10(magnitude) + 1e-9).rounded(.down))
            let mantissa = value / pow(10, Double(exponent))
            let spacingDigits = max(0, Int((-log10(max(spacing, 1e-300) / pow(10, Double(exponent)))).rounded(.up)))
            return trimmed(String(format: "%.\(min(spacingDigits, 3))f", mantissa)) + "e\(exponent)"
        }
        let decimals = max(0, Int((-log10(max(spacing, 1e-300))).rounded(.up)))
        return trimmed(String(format: "%.\(min(decimals, 6))f", value))
    }

    // MARK: Drawing

    /// Line colours, one per run (Tableau 10).
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The SVG of `runs`: loss (training solid, validation dashed with dots) on the top panel,
    /// learning rate on the bottom one, both against `axis`; a legend of run names on the right;
    /// notes below on skipped values, resumed runs and positions missing from the file.
    public static func svg(runs: [RunMetrics], axis: PlotAxis = .step, title: String? = nil,
                           lossScale: LossScale = .linear) throws -> String {
        guard !runs.isEmpty else { throw MetricsPlotError.nothingToPlot("no runs given") }
        func x(_ p: MetricPoint) -> Double? {
            switch axis {
            case .step: Double(p.step)
            case .tokens: p.tokens
            case .time: p.seconds
            }
        }
        var notes: [String] = []
        for run in runs {
            if run.skippedValues > 0 { notes.append("\(run.name): \(run.skippedValues) null or non-finite value(s) skipped") }
            if run.resumes > 0 {
                notes.append("\(run.name): resumed \(run.resumes) time(s)"
                             + (axis == .time ? "; time is training time summed over its processes" : ""))
            }
            let all = run.training + run.validation + run.learningRate
            let missing = all.filter { x($0) == nil }.count
            if missing > 0 { notes.append("\(run.name): \(missing) point(s) without \(axis == .time ? "elapsed_s" : "tokens") not drawn") }
        }
        let lossPoints = runs.flatMap { $0.training + $0.validation }.filter { x($0) != nil && (lossScale == .linear || $0.value > 0) }
        let ratePoints = runs.flatMap(\.learningRate).filter { x($0) != nil }
        guard !lossPoints.isEmpty else {
            throw MetricsPlotError.nothingToPlot("no finite losses in \(runs.map(\.name).joined(separator: ", "))")
        }
        if lossScale == .log, runs.flatMap({ $0.training + $0.validation }).contains(where: { $0.value <= 0 }) {
            notes.append("losses ≤ 0 are not drawn on the log scale")
        }

        // Time in the unit its range reads best in.
        let xs = (lossPoints + ratePoints).compactMap(x)
        var xUnit = 1.0, xTitle: String
        switch axis {
        case .step: xTitle = "step"
        case .tokens: xTitle = "tokens"
        case .time:
            let span = xs.max() ?? 0
            if span >= 3 * 3600 { xUnit = 3600; xTitle = "training time (h)" }
            else if span >= 180 { xUnit = 60; xTitle = "training time (min)" }
            else { xTitle = "training time (s)" }
        }
        let xDomain = niceDomain(low: min(xs.min()! / xUnit, axis == .time ? 0 : xs.min()! / xUnit), high: xs.max()! / xUnit, count: 7)

        // Layout (SVG user units = CSS pixels at 100 %).
        let fontSize = 14.0
        let longestName = runs.map(\.name.count).max() ?? 0
        let legendWidth = max(170.0, Double(min(longestName, 40)) * fontSize * 0.62 + 60)
        let left = 90.0, plotWidth = 760.0, right = left + plotWidth
        let top = title == nil ? 30.0 : 60.0
        let lossHeight = 400.0, gap = 80.0, rateHeight = 170.0
        let rateTop = top + lossHeight + gap, rateBottom = rateTop + rateHeight
        let notesTop = rateBottom + 70
        let width = right + 30 + legendWidth
        let height = notesTop + Double(notes.count) * (fontSize + 6) + 10

        var lossLow = lossPoints.map(\.value).min()!, lossHigh = lossPoints.map(\.value).max()!
        let lossTicks: [Double], lossMap: (Double) -> Double
        switch lossScale {
        case .linear:
            let d = niceDomain(low: lossLow, high: lossHigh, count: 7)
            (lossLow, lossHigh, lossTicks) = d
            lossMap = { $0 }
        case .log:
            lossLow = pow(10, (log10(lossLow) * 20).rounded(.down) / 20)
            lossHigh = pow(10, (log10(lossHigh) * 20).rounded(.up) / 20)
            if lossHigh <= lossLow { lossLow /= 1.1; lossHigh *= 1.1 }
            // Under about half a decade 1–9 × 10ⁿ gives too few ticks: round linear steps instead.
            let decades = logTicks(low: lossLow, high: lossHigh)
            lossTicks = decades.count >= 4 ? decades : niceTicks(low: lossLow, high: lossHigh, count: 7)
            lossMap = { log10($0) }
        }
        let rateValues = ratePoints.map(\.value)
        let rateDomain = niceDomain(low: min(rateValues.min() ?? 0, 0), high: rateValues.max() ?? 1, count: 5)

        func px(_ v: Double) -> Double { left + (v / xUnit - xDomain.low) / (xDomain.high - xDomain.low) * plotWidth }
        func pyLoss(_ v: Double) -> Double {
            let lo = lossMap(lossLow), hi = lossMap(lossHigh)
            return top + lossHeight - (lossMap(v) - lo) / (hi - lo) * lossHeight
        }
        func pyRate(_ v: Double) -> Double {
            rateTop + rateHeight - (v - rateDomain.low) / (rateDomain.high - rateDomain.low) * rateHeight
        }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }

        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="\(f(fontSize))">

        """
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        // Clipped a few units outside each frame, so that a dot on the edge shows whole.
        s += "<defs><clipPath id=\"loss-area\"><rect x=\"\(f(left - 4))\" y=\"\(f(top - 4))\" width=\"\(f(plotWidth + 8))\" height=\"\(f(lossHeight + 8))\"/></clipPath>"
        s += "<clipPath id=\"rate-area\"><rect x=\"\(f(left - 4))\" y=\"\(f(rateTop - 4))\" width=\"\(f(plotWidth + 8))\" height=\"\(f(rateHeight + 8))\"/></clipPath></defs>\n"
        if let title {
            s += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top - 25))\" text-anchor=\"middle\" font-size=\"\(f(fontSize + 4))\" font-weight=\"bold\">\(escaped(title))</text>\n"
        }

        // Panels: frame, grid, ticks and labels.
        let xSpacing = xDomain.ticks.count > 1 ? xDomain.ticks[1] - xDomain.ticks[0] : 1
        for (panelTop, panelHeight) in [(top, lossHeight), (rateTop, rateHeight)] {
            s += "<g class=\"x-ticks\">\n"
            for t in xDomain.ticks {
                let xp = left + (t - xDomain.low) / (xDomain.high - xDomain.low) * plotWidth
                s += "<line x1=\"\(f(xp))\" y1=\"\(f(panelTop))\" x2=\"\(f(xp))\" y2=\"\(f(panelTop + panelHeight))\" stroke=\"#e4e4e4\"/>"
                s += "<text class=\"tick\" x=\"\(f(xp))\" y=\"\(f(panelTop + panelHeight + fontSize + 6))\" text-anchor=\"middle\">\(label(t, spacing: xSpacing))</text>\n"
            }
            s += "</g>\n"
        }
        s += "<g class=\"y-ticks\" data-panel=\"loss\">\n"
        let lossSpacing = zip(lossTicks, lossTicks.dropFirst()).map { $1 - $0 }.min() ?? 1
        for t in lossTicks {
            let yp = pyLoss(t)
            let spacing = lossSpacing
            s += "<line x1=\"\(f(left))\" y1=\"\(f(yp))\" x2=\"\(f(right))\" y2=\"\(f(yp))\" stroke=\"#e4e4e4\"/>"
            s += "<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(f(yp + fontSize * 0.35))\" text-anchor=\"end\">\(label(t, spacing: spacing))</text>\n"
        }
        s += "</g>\n<g class=\"y-ticks\" data-panel=\"lr\">\n"
        let rateSpacing = rateDomain.ticks.count > 1 ? rateDomain.ticks[1] - rateDomain.ticks[0] : 1
        for t in rateDomain.ticks {
            let yp = pyRate(t)
            s += "<line x1=\"\(f(left))\" y1=\"\(f(yp))\" x2=\"\(f(right))\" y2=\"\(f(yp))\" stroke=\"#e4e4e4\"/>"
            s += "<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(f(yp + fontSize * 0.35))\" text-anchor=\"end\">\(label(t, spacing: rateSpacing))</text>\n"
        }
        s += "</g>\n"
        for (panelTop, panelHeight) in [(top, lossHeight), (rateTop, rateHeight)] {
            s += "<rect x=\"\(f(left))\" y=\"\(f(panelTop))\" width=\"\(f(plotWidth))\" height=\"\(f(panelHeight))\" fill=\"none\" stroke=\"#555555\"/>\n"
        }
        // Axis titles.
        let lossTitle = "loss (nats per token)" + (lossScale == .log ? ", log scale" : "")
        s += "<text x=\"\(f(22))\" y=\"\(f(top + lossHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 22 \(f(top + lossHeight / 2)))\">\(lossTitle)</text>\n"
        s += "<text x=\"\(f(22))\" y=\"\(f(rateTop + rateHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 22 \(f(rateTop + rateHeight / 2)))\">learning rate</text>\n"
        s += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(rateBottom + 2 * fontSize + 16))\" text-anchor=\"middle\">\(xTitle)</text>\n"

        // Curves.
        func polyline(_ points: [MetricPoint], y: (Double) -> Double, run: Int, series: String, dashed: Bool, clip: String) -> String {
            let drawn = points.compactMap { p -> (Double, Double)? in
                guard let xv = x(p), lossScale == .linear || series == "lr" || p.value > 0 else { return nil }
                return (px(xv), y(p.value))
            }
            guard !drawn.isEmpty else { return "" }
            let color = palette[run % palette.count]
            var out = "<g clip-path=\"url(#\(clip))\">"
            out += "<polyline class=\"series\" data-run=\"\(escaped(runs[run].name))\" data-series=\"\(series)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\""
            if dashed { out += " stroke-dasharray=\"7 4\"" }
            out += " stroke-linejoin=\"round\" points=\"" + drawn.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ") + "\"/>"
            if dashed || drawn.count == 1 {
                for (xp, yp) in drawn { out += "<circle cx=\"\(f(xp))\" cy=\"\(f(yp))\" r=\"3\" fill=\"\(color)\"/>" }
            }
            return out + "</g>\n"
        }
        for (i, run) in runs.enumerated() {
            s += polyline(run.training, y: pyLoss, run: i, series: "train", dashed: false, clip: "loss-area")
            s += polyline(run.validation, y: pyLoss, run: i, series: "val", dashed: true, clip: "loss-area")
            s += polyline(run.learningRate, y: pyRate, run: i, series: "lr", dashed: false, clip: "rate-area")
        }

        // Legend: one entry per run, then the line styles.
        let legendLeft = right + 30
        s += "<g class=\"legend\">\n"
        var ly = top + 10
        for (i, run) in runs.enumerated() {
            let color = palette[i % palette.count]
            let name = run.name.count > 40 ? String(run.name.prefix(39)) + "…" : run.name
            s += "<g class=\"legend-entry\" data-run=\"\(escaped(run.name))\"><line x1=\"\(f(legendLeft))\" y1=\"\(f(ly))\" x2=\"\(f(legendLeft + 30))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"4\"/>"
            s += "<text x=\"\(f(legendLeft + 40))\" y=\"\(f(ly + fontSize * 0.35))\">\(escaped(name))</text></g>\n"
            ly += fontSize + 10
        }
        ly += 10
        s += "<line x1=\"\(f(legendLeft))\" y1=\"\(f(ly))\" x2=\"\(f(legendLeft + 30))\" y2=\"\(f(ly))\" stroke=\"#333333\" stroke-width=\"2\"/>"
        s += "<text x=\"\(f(legendLeft + 40))\" y=\"\(f(ly + fontSize * 0.35))\">training</text>\n"
        ly += fontSize + 10
        s += "<line x1=\"\(f(legendLeft))\" y1=\"\(f(ly))\" x2=\"\(f(legendLeft + 30))\" y2=\"\(f(ly))\" stroke=\"#333333\" stroke-width=\"2\" stroke-dasharray=\"7 4\"/>"
        s += "<circle cx=\"\(f(legendLeft + 15))\" cy=\"\(f(ly))\" r=\"3\" fill=\"#333333\"/>"
        s += "<text x=\"\(f(legendLeft + 40))\" y=\"\(f(ly + fontSize * 0.35))\">validation</text>\n"
        s += "</g>\n"

        for (i, note) in notes.enumerated() {
            s += "<text class=\"note\" x=\"\(f(left))\" y=\"\(f(notesTop + Double(i) * (fontSize + 6)))\" font-size=\"\(f(fontSize - 1))\" fill=\"#555555\">\(escaped(note))</text>\n"
        }
        s += "</svg>\n"
        return s
    }

    /// `text` with XML's special characters escaped.
    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// What `svg` notes about `runs`, for the command to repeat on stderr.
    public static func notes(_ runs: [RunMetrics]) -> [String] {
        runs.flatMap { run -> [String] in
            (run.skippedValues > 0 ? ["\(run.name): \(run.skippedValues) null or non-finite value(s) skipped"] : [])
                + (run.resumes > 0 ? ["\(run.name): resumed \(run.resumes) time(s)"] : [])
        }
    }
}
