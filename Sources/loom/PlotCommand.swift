// PlotCommand: `loom plot RUN… --out FILE.svg` — the runs' loss and learning-rate curves as one
// SVG (MetricsPlot), written atomically.
import ArgumentParser
import Foundation
import Training
import Support

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw runs' training and validation loss and learning rate as an SVG.",
        discussion: "Reads each run directory's metrics.jsonl; each run gets one colour, named after its directory.")

    @Argument(help: "Run directories written by `loom train`.") var runs: [String]
    @Option(help: "The SVG file to write.") var out: String
    @Option(help: "Horizontal axis: step, tokens or time (training time).") var x: String = "step"
    @Option(help: "A title above the curves.") var title: String?
    @Option(name: .customLong("loss-scale"), help: "Loss axis: linear or log.") var lossScale: String = "linear"

    func run() throws {
        try reportingErrors {
            guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
            guard let axis = PlotAxis(rawValue: x) else {
                throw ValidationError("--x must be one of \(PlotAxis.allCases.map(\.rawValue).joined(separator: ", ")); got '\(x)'")
            }
            guard let scale = LossScale(rawValue: lossScale) else {
                throw ValidationError("--loss-scale must be one of \(LossScale.allCases.map(\.rawValue).joined(separator: ", ")); got '\(lossScale)'")
            }
            var metrics = try runs.map { try MetricsPlot.read(run: $0) }
            // Runs whose directories share a name are told apart by the path as given.
            let names = metrics.map(\.name)
            for i in metrics.indices where names.filter({ $0 == names[i] }).count > 1 { metrics[i].name = runs[i] }
            let svg = try MetricsPlot.svg(runs: metrics, axis: axis, title: title, lossScale: scale)
            try AtomicFile.write(out, text: svg)
            for note in MetricsPlot.notes(metrics) { FileHandle.standardError.write(Data("loom plot: \(note)\n".utf8)) }
            print("loom plot: \(metrics.count) run(s) → \(out)")
        }
    }
}
