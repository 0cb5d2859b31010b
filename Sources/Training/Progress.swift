// Progress: what a person watching a run sees — one redrawn status line on a terminal, plain
// periodic lines otherwise. It is not the metrics file (RunDirectory).
import Foundation
import Distributed

public final class Progress {
    public let isTerminal: Bool
    private var drewLine = false
    private let enabled: Bool

    public init(enabled: Bool) {
        self.enabled = enabled
        // mpirun hands ranks a pseudo-terminal even when its own output goes to a file: under a
        // process manager, print plain lines.
        isTerminal = isatty(STDOUT_FILENO) == 1 && !Launch.underMPI
    }

    /// Step status: redrawn in place on a terminal, printed as a line otherwise (when `line`).
    public func status(step: Int, total: Int, loss: Double, learningRate: Double, tokensPerSecond: Double,
                       remainingSeconds: Double, line: Bool) {
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

    /// A line that stays (evaluation results, notices).
    public func message(_ text: String) {
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
