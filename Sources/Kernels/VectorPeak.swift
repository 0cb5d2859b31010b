// VectorPeak: the CPU's arithmetic ceiling — the rate of back-to-back independent multiply-adds
// (CVectorKernels' VectorPeak.c) on every pool thread at once — which no matrix product can beat
// at this clock; `loom bench` states a step's GFLOP/s as a share of it.
import CVectorKernels
import Support

/// Multiply-add ceilings of this CPU in GFLOP/s, all pool threads running together (so at the
/// all-core clock): fp32 on the widest FMA the CPU has, bf16 on AVX512_BF16's pair dot product.
/// AMX tiles are not measured: on a CPU with AMX the bf16 figure is the vector unit's, not the
/// tile unit's.
public struct VectorPeak: Sendable, Equatable {
    /// fp32 GFLOP/s (nil on a CPU without FMA) and the instruction measured.
    public let fp32: Double?
    public let fp32Instruction: String
    /// bf16 GFLOP/s with fp32 sums (nil without AVX512_BF16).
    public let bf16: Double?
    public var bf16Instruction: String { "vdpbf16ps zmm" }
    /// Threads that ran the loops at the same time.
    public let threads: Int

    public init(fp32: Double?, fp32Instruction: String, bf16: Double?, threads: Int) {
        self.fp32 = fp32; self.fp32Instruction = fp32Instruction; self.bf16 = bf16; self.threads = threads
    }

    /// Rounds of 12 multiply-adds each thread runs per timing: ~50 M instructions, 15–60 ms.
    static let rounds = 1 << 22

    /// Each loop on every pool thread at once, best of nine timings per thread (three jobs of
    /// three); the figure is the sum over threads of FLOPs over each thread's best time.
    public static func measure(cpu: CPUFeatures = .current(), pool: ThreadPool = .shared) -> VectorPeak {
        let wide = cpu.has(.avx512f), fma = wide || cpu.has(.avx2, .fma)
        let fp32 = fma ? rate(pool, flopsPerRound: wide ? 384 : 192, wide ? loom_peak_fma512 : loom_peak_fma256) : nil
        let bf16 = BF16Gemm.available ? rate(pool, flopsPerRound: 768, loom_peak_dot_bf16) : nil
        return VectorPeak(fp32: fp32, fp32Instruction: wide ? "vfmadd231ps zmm" : "vfmadd231ps ymm", bf16: bf16,
                          threads: pool.threads)
    }

    /// The ceiling a precision is measured against: "bf16" where asked for and measured, else "fp32".
    public func precision(bf16 wantsBF16: Bool) -> String { wantsBF16 && bf16 != nil ? "bf16" : "fp32" }

    /// That ceiling's GFLOP/s.
    public func gflops(bf16 wantsBF16: Bool) -> Double? { precision(bf16: wantsBF16) == "bf16" ? bf16 : fp32 }

    static func rate(_ pool: ThreadPool, flopsPerRound: Double, _ loop: @convention(c) (Int) -> Void) -> Double {
        let seconds = UnsafeMutablePointer<Double>.allocate(capacity: pool.threads)
        defer { seconds.deallocate() }
        seconds.initialize(repeating: .infinity, count: pool.threads)
        // Three jobs, not one: a thread just started may share a core with another until the
        // scheduler moves it (tens of milliseconds), which would halve all of one job's timings.
        for _ in 0..<3 { pool.parallelFor(pool.threads, Timing(loop: loop, seconds: seconds)) }
        return (0..<pool.threads).reduce(0) { $0 + flopsPerRound * Double(rounds) / seconds[$1] } / 1e9
    }

    /// One thread's best of three timings of `loop`, kept in seconds[part] when better than it.
    struct Timing: ParallelLoop {
        let loop: @convention(c) (Int) -> Void
        let seconds: UnsafeMutablePointer<Double>
        func run(_ parts: Range<Int>) {
            for part in parts {
                loop(VectorPeak.rounds / 16)   // wakes the vector unit to its full clock
                var best = seconds[part]
                for _ in 0..<3 {
                    let t0 = monotonicSeconds()
                    loop(VectorPeak.rounds)
                    best = min(best, monotonicSeconds() - t0)
                }
                seconds[part] = best
            }
        }
    }
}
