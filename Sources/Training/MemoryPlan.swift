// MemoryPlan: what a `bench` or `train` process should hold, buffer by buffer, next to the peak
// resident set the kernel measured (VmHWM), so a buffer that grows past its plan shows.
import Foundation
import Data

/// The plan is every large buffer the process allocates (parameters, gradients, AdamW moments,
/// activations, thread replicas, the tokens, and any buffer the command adds, such as bench's
/// sgemm operands) plus the process's resident set at start-up, before the config was read: the
/// binary, the shared libraries (Swift runtime, Foundation, OpenBLAS, OpenMPI) and what they
/// map. Small allocations (thread stacks, OpenBLAS's packing buffers, tokenizer tables) are not
/// planned and show up as the part of the ratio above 1.
public struct MemoryPlan {
    public let rows: [(String, Int)]
    public let peakRSS = ProcessMemory.peakResidentBytes()
    public var planned: Int { rows.reduce(0) { $0 + $1.1 } }
    public var ratio: Double { Double(peakRSS) / Double(max(planned, 1)) }

    /// `start`: VmRSS when the command began; `tokens`: training + validation tokens held;
    /// `extra`: further buffers the command holds at its peak, by name.
    public init(trainer: Trainer, start: Int, tokens: Int, extra: [(String, Int)] = []) {
        let model = trainer.model
        let moments = trainer.optimizer.m.bytes + trainer.optimizer.v.bytes
        // Sharded (ZeRO-1), the moments are this rank's slice's and the reduce-scatter's target
        // (the slice's summed gradients) is a buffer of its own.
        let optimizerRows: [(String, Int)] = trainer.slices.map { slices in
            [("AdamW moments (m, v; 1/\(slices.world) slice, ZeRO-1)", moments),
             ("gradient slice (reduce-scatter target)", trainer.sliceGradients?.bytes ?? 0)]
        } ?? [("AdamW moments (m, v)", moments)]
        rows = [("parameters", model.parameters.bytes), ("gradients", model.gradients.bytes)]
            + optimizerRows
            + [("activations + backward scratch", model.activationBytes),
                ("thread replicas (gradients, activations)", trainer.task.replicaBytes)]
            + extra
            + [("tokens (training + validation, 4 bytes each)", 4 * tokens),
               ("process at start (binary, libraries, runtime)", start)]
    }

    /// The rows, total, peak RSS and ratio, as `bench` and `train` print them.
    public func print(indent: String = "  ") {
        Swift.print(indent + "memory plan")
        for (name, bytes) in rows + [("total", planned)] {
            Swift.print(indent + "  " + name.padding(toLength: 46, withPad: " ", startingAt: 0) + String(format: "%8.1f MiB", Double(bytes) / 1048576))
        }
        Swift.print(indent + String(format: "peak RSS         %.1f MiB (%.2f× the plan; VmHWM)", Double(peakRSS) / 1048576, ratio))
    }

    /// The `--json` fields: planned_bytes, peak_rss_bytes, memory_ratio and memory_plan (row name → bytes).
    public var fields: [String: Any] {
        ["planned_bytes": planned, "peak_rss_bytes": peakRSS, "memory_ratio": ratio,
         "memory_plan": Dictionary(rows, uniquingKeysWith: +)]
    }
}

extension PreparedData {
    /// Tokens the corpus holds for training and validation.
    public var tokenCount: Int { corpus.train.count + corpus.validation.count }
}

public enum ProcessMemory {
    /// VmRSS from /proc/self/status (current resident set), in bytes.
    public static func residentBytes() -> Int { field("VmRSS:") }
    /// VmHWM from /proc/self/status (peak resident set), in bytes.
    public static func peakResidentBytes() -> Int { field("VmHWM:") }

    static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
