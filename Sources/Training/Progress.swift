// Progress: what a person or a program watching a run sees — one redrawn status line on a
// terminal, plain periodic lines otherwise, or one JSON object a line per event (`--json`). It
// is not the metrics file (RunDirectory).
import Foundation
import Distributed

public final class Progress {
    public enum Mode: Sendable { case off, text, json }
    public let mode: Mode
    public let isTerminal: Bool
    private var drewLine = false
    private var enabled: Bool { mode == .text }

    public init(mode: Mode) {
        self.mode = mode
        // mpirun hands ranks a pseudo-terminal even when its own output goes to a file: under a
        // process manager, print plain lines.
        isTerminal = mode == .text && isatty(STDOUT_FILENO) == 1 && !Launch.underMPI
    }

    public convenience init(enabled: Bool) { self.init(mode: enabled ? .text : .off) }

    /// An event: its line in text mode, its JSON object in json mode.
    public func report(_ event: TrainingEvent) {
        switch mode {
        case .off: return
        case .text: message(event.text)
        case .json: Progress.printJSON(event.fields)
        }
    }

    /// One JSON object on a line of stdout, keys sorted (the `--json` output).
    public static func printJSON(_ fields: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
        fflush(stdout)
    }

    /// Step status: redrawn in place on a terminal, printed as a line otherwise (when `line`).
    public func status(step: Int, total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double,
                       remainingSeconds: Double, line: Bool) {
        if mode == .json, line {
            report(.log(step: step, totalSteps: total, loss: loss, learningRate: learningRate,
                        tokensPerSecond: tokensPerSecond, remainingSeconds: remainingSeconds))
        }
        guard enabled else { return }
        let text = String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | ETA %@",
                          step, total, loss, learningRate, tokensPerSecond, Progress.duration(remainingSeconds))
        if isTerminal {
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(stdout)
            drewLine = true
        } else if line {
            print(text)
            fflush(stdout)
        }
    }

    /// A line that stays (evaluation results, notices); a `notice` event in json mode.
    public func message(_ text: String) {
        if mode == .json { report(.notice(text)) }
        guard enabled else { return }
        if drewLine { print("\r\u{1B}[2K", terminator: ""); drewLine = false }
        print(text)
        fflush(stdout)
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }
}
