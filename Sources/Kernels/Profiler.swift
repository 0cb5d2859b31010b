// Profiler: optional wall-clock accounting per kernel family, for `loom bench --profile`. It is
// not a sampling profiler; when disabled each kernel pays one branch.
import Support
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum Profiler {
    public enum Section: Int, CaseIterable {
        case linear, attention, layerNorm, gelu, crossEntropy, lmHead, embedding, elementwise, optimizer, conversion
        case communication
        public var name: String {
            switch self {
            case .linear: return "linear (sgemm)"
            case .attention: return "attention"
            case .layerNorm: return "layernorm"
            case .gelu: return "activation (GELU/ReLU)"
            case .crossEntropy: return "softmax+cross-entropy"
            case .lmHead: return "lm head (sgemm)"
            case .embedding: return "embedding"
            case .elementwise: return "residual/dropout/zero/scale"
            case .optimizer: return "optimizer (AdamW)"
            case .conversion: return "bf16 rounding (weights, backward operands)"
            case .communication: return "communication"
            }
        }
    }

    /// Turning it on makes the current thread the one whose kernels are timed: kernels that run
    /// on other threads at the same time (GPT thread replicas) are not added in.
    nonisolated(unsafe) public static var enabled = false { didSet { owner = pthread_self() } }
    nonisolated(unsafe) static var owner = pthread_self()
    nonisolated(unsafe) public static var seconds = [Double](repeating: 0, count: Section.allCases.count)

    public static func reset() { for i in seconds.indices { seconds[i] = 0 } }

    /// Runs `body`, adding its wall time to `section` when enabled and called on the thread that
    /// enabled it.
    @inline(__always)
    public static func measure<R>(_ section: Section, _ body: () throws -> R) rethrows -> R {
        if !enabled || pthread_equal(pthread_self(), owner) == 0 { return try body() }
        let start = monotonicNanoseconds()
        let result = try body()
        seconds[section.rawValue] += Double(monotonicNanoseconds() - start) * 1e-9
        return result
    }
}
