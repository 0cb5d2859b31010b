// TrainingEvent: what a run reports while it trains — a log line, a validation pass, a checkpoint,
// a skipped step, a resume — each as the text line a person reads and the JSON object `loom train
// --json` prints.
import Foundation

public enum TrainingEvent {
    /// Every `logging.interval` steps: the mean loss over the steps since the last log line.
    case log(step: Int, totalSteps: Int, loss: Double, learningRate: Double, tokensPerSecond: Double, remainingSeconds: Double)
    /// A validation pass: the loss, and the accuracy for tasks that measure one (BERT's masked tokens).
    case validation(step: Int, loss: Double, accuracy: Double?, covers: String)
    case checkpoint(step: Int, path: String)
    /// A step whose loss or gradient was not finite: its update was skipped.
    case skipped(step: Int, inARow: Int)
    /// Reduce-on-plateau lowered the learning rate to `scale` × the schedule's.
    case plateau(step: Int, scale: Double)
    case resumed(step: Int, checkpoint: String)
    /// A temporary left half-written by a Loom process that died, removed at start.
    case removedTemporary(path: String)
    /// --stop-after: stopped with a checkpoint and no final model.
    case paused(step: Int)
    /// Under a bare mpirun a SIGTERM leaves the ranks too little time for a step and its checkpoint.
    case killDeadline(stepSeconds: Double, deadlineSeconds: Double, suggestedTimeout: Int)
    case notice(String)

    /// The line a person reads.
    public var text: String {
        switch self {
        case let .log(step, total, loss, rate, perSecond, remaining):
            return String(format: "step %d/%d | loss %.4f | lr %.2e | %.0f tok/s | ETA %@",
                          step, total, loss, rate, perSecond, Progress.duration(remaining))
        case let .validation(step, loss, accuracy?, covers):
            return String(format: "step %d: val loss %.4f, masked accuracy %.2f %% (%@)", step, loss, 100 * accuracy, covers)
        case let .validation(step, loss, nil, covers): return String(format: "step %d: val loss %.4f (%@)", step, loss, covers)
        case let .checkpoint(_, path): return "checkpoint: \(path)"
        case let .skipped(step, inARow): return "step \(step): non-finite loss or gradient, update skipped (\(inARow) in a row)"
        case let .plateau(_, scale): return String(format: "validation loss stopped improving: learning rate × %.3g", scale)
        case let .resumed(step, checkpoint): return "loom train: resuming from \(checkpoint) at step \(step)"
        case let .removedTemporary(path): return "loom train: removed \(path), left half-written by a Loom process that died"
        case let .paused(step): return "loom train: paused after step \(step) as asked (--stop-after); continue with --resume latest"
        case let .killDeadline(stepSeconds, deadline, suggested):
            return String(format: "note: a step takes %.1f s, but after a SIGTERM to mpirun the ranks have %.0f s "
                          + "(odls_base_sigkill_timeout) before SIGKILL: too little to finish the step and checkpoint. "
                          + "To stop with a checkpoint, send mpirun SIGUSR1, launch with launch/mpirun, or add "
                          + "--mca odls_base_sigkill_timeout %d.", stepSeconds, deadline, suggested)
        case let .notice(text): return text
        }
    }

    /// The `--json` object: `event` names the kind; numbers stay numbers.
    public var fields: [String: Any] {
        func finite(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        switch self {
        case let .log(step, total, loss, rate, perSecond, remaining):
            return ["event": "log", "step": step, "total_steps": total, "train_loss": finite(loss), "lr": rate,
                    "tokens_per_s": finite(perSecond), "remaining_s": finite(remaining)]
        case let .validation(step, loss, accuracy, covers):
            var fields: [String: Any] = ["event": "validation", "step": step, "val_loss": finite(loss), "covers": covers]
            if let accuracy { fields["val_accuracy"] = accuracy }
            return fields
        case let .checkpoint(step, path): return ["event": "checkpoint", "step": step, "path": path]
        case let .skipped(step, inARow): return ["event": "skipped", "step": step, "nonfinite_in_a_row": inARow]
        case let .plateau(step, scale): return ["event": "plateau", "step": step, "lr_scale": scale]
        case let .resumed(step, checkpoint): return ["event": "resumed", "step": step, "checkpoint": checkpoint]
        case let .removedTemporary(path): return ["event": "removed_temporary", "path": path]
        case let .paused(step): return ["event": "paused", "step": step]
        case let .killDeadline(stepSeconds, deadline, suggested):
            return ["event": "kill_deadline", "step_s": stepSeconds, "sigkill_timeout_s": deadline,
                    "suggested_sigkill_timeout_s": suggested, "text": text]
        case let .notice(text): return ["event": "notice", "text": text]
        }
    }
}
