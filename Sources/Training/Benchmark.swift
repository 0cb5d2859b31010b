// Benchmark: what `loom bench` measures — real training steps timed after warm-up, achieved GFLOP/s
// against the GEMM rate at the model's own shapes, the gradient all-reduce's cost and how much of
// it backward hides, heap allocations in the measured steps, the memory plan — and the alternating
// comparison of two settings in one process.
import Foundation
import Kernels
import Models
import Data
import Distributed
import Support

/// Counts heap allocations (the CLI's malloc counter; Training does not link it). `begin` marks
/// oneDNN's execute calls so their allocations count apart as foreign.
public struct AllocationCounter {
    public var begin: () -> Void
    public var count: () -> UInt64
    public var foreignCount: () -> UInt64

    public init(begin: @escaping () -> Void, count: @escaping () -> UInt64, foreignCount: @escaping () -> UInt64) {
        self.begin = begin; self.count = count; self.foreignCount = foreignCount
    }

    /// Counts nothing (tests, or a binary without the counter).
    public static let none = AllocationCounter(begin: {}, count: { 0 }, foreignCount: { 0 })
}

public struct BenchmarkOptions {
    /// Measured steps, after `warmup` unmeasured ones.
    public var steps: Int
    public var warmup: Int
    /// Time each kernel family (Profiler) during the measured steps.
    public var profile: Bool

    public init(steps: Int, warmup: Int, profile: Bool) { self.steps = steps; self.warmup = warmup; self.profile = profile }
}

/// The timed steps of one trainer.
public struct TimedSteps {
    /// Seconds of each measured step.
    public var times: [Double]
    /// Heap allocations during the measured steps, and how many of them oneDNN made inside its calls.
    public var allocations: UInt64
    public var oneDNNAllocations: UInt64
    public var median: Double { times.sorted()[times.count / 2] }
    public var total: Double { times.reduce(0, +) }
}

public enum Benchmark {
    /// The config as bench runs it: no validation, and with `batchPerRank` each rank's share of
    /// the batch stays `training.batch_size` (weak scaling).
    public static func config(_ config: LoomConfig, ranks: Int, batchPerRank: Bool) -> LoomConfig {
        var c = config
        c.evaluation.interval = 0
        if batchPerRank { c.training.batchSize *= ranks }
        return c
    }

    /// The corpus a GPT config names, or, when its corpus or tokenizer file is missing and the
    /// config gives a vocabulary size, 1 Mi random tokens of that vocabulary (and the missing file).
    public static func languageModelData(config: LoomConfig) throws -> (data: PreparedData, missing: String?) {
        if config.model.vocabularySize > 0, let missing = missingDataFile(config.data) {
            return (PreparedData.synthetic(vocabularySize: config.model.vocabularySize, tokens: 1 << 20, seed: 7), missing)
        }
        return (try PreparedData(config: config), nil)
    }

    /// The corpus or tokenizer file a GPT config names that is not there (nil when all are).
    static func missingDataFile(_ d: DataSection) -> String? {
        let files = (d.shards.isEmpty ? [d.corpus] : [d.shards]) + (d.tokenizer.path.map { [$0] } ?? [])
        return files.first { !FileManager.default.fileExists(atPath: $0) }
    }

    /// Warm-up steps `warmup ..< measured.lowerBound`, then the `measured` steps, each timed;
    /// heap allocations are counted over all measured steps.
    public static func timedSteps(_ trainer: Trainer, measured: Range<Int>, warmup first: Int, profile: Bool,
                                  counter: AllocationCounter) -> TimedSteps {
        for s in first..<measured.lowerBound { _ = trainer.trainStep(s, learningRate: 1e-4) }
        var times: [Double] = []
        times.reserveCapacity(measured.count)
        trainer.communicator.barrier()
        trainer.buckets.resetStatistics()
        Profiler.reset()
        Profiler.enabled = profile
        counter.begin()
        let before = counter.count(), foreignBefore = counter.foreignCount()
        for s in measured {
            let t0 = monotonicSeconds()
            _ = trainer.trainStep(s, learningRate: 1e-4)
            times.append(monotonicSeconds() - t0)
        }
        let allocations = counter.count() - before
        let foreign = counter.foreignCount() - foreignBefore
        Profiler.enabled = false
        return TimedSteps(times: times, allocations: allocations, oneDNNAllocations: foreign)
    }
}

/// A GPT's step figures: throughput, GFLOP/s against the GEMM rate at its shapes, the all-reduce.
public struct LanguageModelBenchmark {
    public let trainer: Trainer
    public let model: GPT
    public let steps: TimedSteps
    /// Tokens of one global step (every rank's share).
    public let tokensPerStep: Int
    public var tokensPerSecond: Double { Double(tokensPerStep) / steps.median }
    public var gflops: Double { tokensPerSecond * model.config.flopsPerToken / 1e9 }
    /// The GEMM rate at the model's product shapes in its precision (`GemmPeak`).
    public let peak: (gflops: Double, detail: String)
    /// The CPU's multiply-add ceiling on this rank's threads, measured after the steps.
    public let vectorPeak: VectorPeak
    /// The step's GFLOP/s as a share of the ceiling for its precision, all ranks' threads counted
    /// (nil on a CPU without FMA).
    public var peakShare: Double? {
        vectorPeak.gflops(bf16: model.precision == .bf16).map { gflops / ($0 * Double(trainer.communicator.worldSize)) }
    }
    /// Which ceiling `peakShare` is against: "bf16" or "fp32".
    public var peakPrecision: String { vectorPeak.precision(bf16: model.precision == .bf16) }
    /// All-reduce per step: exposed in the step, waited after backward, the last rank's wait, and
    /// the blocking cost measured alone.
    public let exposedSeconds: Double, waitSeconds: Double, lastRankWaitSeconds: Double
    public let reduce: (seconds: Double, busBandwidth: Double)
    /// The share of the blocking cost that backward hides (0 on one rank).
    public var hidden: Double { trainer.communicator.worldSize > 1 ? max(0, 1 - exposedSeconds / reduce.seconds) : 0 }
    public var replicas: Int { (trainer.task as? LanguageModelTask)?.replicas?.count ?? 1 }
    public let memory: MemoryPlan

    /// Times `options.steps` steps after `options.warmup`, then measures the all-reduce alone and
    /// the GEMM rate at the model's shapes. `start`: VmRSS when the command began.
    public init(trainer: Trainer, data: PreparedData, options o: BenchmarkOptions, counter: AllocationCounter, start: Int) throws {
        guard let model = trainer.gpt else { throw ConfigError(file: "config", key: "model.kind", message: "not a GPT config") }
        let job = trainer.communicator, config = trainer.config
        self.trainer = trainer
        self.model = model
        tokensPerStep = config.training.batchSize * model.config.contextLength
        steps = Benchmark.timedSteps(trainer, measured: o.warmup..<(o.warmup + o.steps), warmup: 0, profile: o.profile, counter: counter)
        exposedSeconds = trainer.buckets.exposedSeconds / Double(o.steps)
        waitSeconds = trainer.buckets.waitSeconds / Double(o.steps)
        lastRankWaitSeconds = AllReduceCost.lastRankWait(trainer.buckets, steps: o.steps, job: job)
        reduce = AllReduceCost.measure(trainer: trainer, job: job)
        let rows = config.training.microBatchSize * model.config.contextLength
        let bf16 = model.precision == .bf16
        peak = GemmPeak.measure(config: model.config, rows: rows, bf16: bf16)
        // Every rank at once, as in the steps: ranks sharing a machine share its cores and clock.
        vectorPeak = VectorPeak.measure()
        memory = MemoryPlan(trainer: trainer, start: start, tokens: data.tokenCount, extra: [
            ("GEMM rate measurement (A, B, C operands)", GemmPeak.operandBytes(config: model.config, rows: rows, bf16: bf16))])
    }
}

/// The encoder-decoder's figures: real token-count batches measured across an epoch boundary
/// (where the batch order is reshuffled). Batches differ in size, so throughput is Σ target
/// tokens / Σ step time rather than a median.
public struct TranslationBenchmark {
    public let trainer: Trainer
    public let task: TranslationTask
    public let steps: TimedSteps
    /// The first measured step: the window straddles the first epoch boundary.
    public let firstStep: Int
    public let targetTokens: Int
    public var targetTokensPerSecond: Double { Double(targetTokens) / steps.total }
    public let memory: MemoryPlan

    /// `loaded`: the resident bytes the parallel corpora and tokenizer added (measured, not planned).
    public init(trainer: Trainer, task: TranslationTask, options o: BenchmarkOptions, counter: AllocationCounter,
                start: Int, loaded: Int) {
        self.trainer = trainer
        self.task = task
        let first = max(o.warmup, task.stepsPerEpoch - o.steps / 2)
        firstStep = first
        steps = Benchmark.timedSteps(trainer, measured: first..<(first + o.steps), warmup: first - o.warmup,
                                     profile: o.profile, counter: counter)
        targetTokens = (first..<(first + o.steps)).reduce(0) { $0 + task.globalTokens(step: $1) }
        memory = MemoryPlan(trainer: trainer, start: start, tokens: 0,
                            extra: [("parallel corpora and tokenizer (resident after loading)", loaded)])
    }
}

/// BERT's figures: masked sequences of the real corpus, every position of every sequence counted
/// as a token (the MLM head runs only on the chosen ones).
public struct MaskedLanguageModelBenchmark {
    public let trainer: Trainer
    public let task: MaskedLanguageModelTask
    public let steps: TimedSteps
    public let tokensPerStep: Int
    public var tokensPerSecond: Double { Double(tokensPerStep) / steps.median }
    public let memory: MemoryPlan

    public init(trainer: Trainer, task: MaskedLanguageModelTask, data: PreparedData, options o: BenchmarkOptions,
                counter: AllocationCounter, start: Int) {
        self.trainer = trainer
        self.task = task
        tokensPerStep = task.inputTokens(step: 0)
        steps = Benchmark.timedSteps(trainer, measured: o.warmup..<(o.warmup + o.steps), warmup: 0, profile: o.profile, counter: counter)
        memory = MemoryPlan(trainer: trainer, start: start, tokens: data.tokenCount)
    }
}

/// `bench --against`: the same steps on two trainers, alternating blocks of 10 steps so a noisy
/// machine's speed swings hit both alike; each side's block throughputs and the ratio of
/// adjacent blocks (second / first).
public struct AlternatingComparison {
    public static let blockSteps = 10
    public let blocks: Int
    public let rates: (first: [Double], second: [Double])
    public let ratios: [Double]

    /// `isas`: the kernel ISA each side runs (`KernelISA.selected` is set before each block and
    /// restored to the first side's after).
    public init(_ first: Trainer, _ second: Trainer, isas: [KernelISA], options o: BenchmarkOptions) {
        let job = first.communicator, block = Self.blockSteps
        blocks = max(1, (o.steps + block - 1) / block)
        for s in 0..<o.warmup {
            KernelISA.selected = isas[0]; _ = first.trainStep(s, learningRate: 1e-4)
            KernelISA.selected = isas[1]; _ = second.trainStep(s, learningRate: 1e-4)
        }
        var rates: ([Double], [Double]) = ([], []), ratios: [Double] = []
        for b in 0..<blocks {
            var pair = [0.0, 0.0]
            for (side, trainer) in (b % 2 == 0 ? [(0, first), (1, second)] : [(1, second), (0, first)]) {
                KernelISA.selected = isas[side]
                job.barrier()
                let t0 = monotonicSeconds()
                for s in 0..<block { _ = trainer.trainStep(o.warmup + b * block + s, learningRate: 1e-4) }
                let tokens = trainer.config.training.batchSize * trainer.config.model.contextLength
                pair[side] = Double(tokens * block) / (monotonicSeconds() - t0)
            }
            rates.0.append(pair[0]); rates.1.append(pair[1]); ratios.append(pair[1] / pair[0])
        }
        KernelISA.selected = isas[0]
        self.rates = (rates.0, rates.1)
        self.ratios = ratios
    }

    public static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
}

/// The GEMM rate this machine reaches at one training step's matrix shapes (every linear
/// layer's forward and both backward products, and the LM head), in the step's precision (bf16
/// operands with fp32 sums for a bf16 model), through the same wrapper and so on the engines the
/// plan in force chose (OpenBLAS, or Loom's bf16 kernel, for shapes it does not route).
public enum GemmPeak {
    /// (transA, transB, m, n, k, repeats per step)
    typealias Shape = (Bool, Bool, Int, Int, Int, Int)

    /// Elements of the A, B and C operand buffers `measure` allocates for `shapes`.
    static func operandSizes(_ shapes: [Shape]) -> (a: Int, b: Int, c: Int) {
        shapes.reduce((1, 1, 1)) { s, x in (max(s.0, x.2 * x.4), max(s.1, x.4 * x.3), max(s.2, x.2 * x.3)) }
    }

    /// Bytes of the operand buffers `measure(config:rows:bf16:)` holds while it runs: A and B as
    /// fp32, or as bf16 with `bf16`; C fp32.
    public static func operandBytes(config c: GPTConfig, rows N: Int, bf16: Bool = false) -> Int {
        let s = operandSizes(shapes(config: c, rows: N))
        return (s.a + s.b) * (bf16 ? MemoryLayout<UInt16>.stride : MemoryLayout<Float>.stride) + s.c * MemoryLayout<Float>.stride
    }

    /// Every linear layer's forward and both backward products, and the LM head's three.
    static func shapes(config c: GPTConfig, rows N: Int) -> [Shape] {
        let C = c.width, V = c.vocabularySize
        var shapes: [Shape] = []
        for (i, o) in [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)] {
            shapes.append((false, false, N, o, i, c.layers))   // forward
            shapes.append((false, true, N, i, o, c.layers))    // dinp
            shapes.append((true, false, i, o, N, c.layers))    // dweight
        }
        shapes.append((false, true, N, V, C, 1)); shapes.append((false, false, N, C, V, 1)); shapes.append((true, false, V, C, N, 1))
        return shapes
    }

    /// The FLOP-weighted rate over `shapes(config:rows:)`, best of 5 each, on operand buffers of
    /// `operandBytes(config:rows:bf16:)` in all; with `bf16`, `Gemm.parallelBF16` on bf16 operands.
    public static func measure(config c: GPTConfig, rows N: Int, bf16: Bool = false) -> (gflops: Double, detail: String) {
        let shapes = shapes(config: c, rows: N)
        // Each operand buffer holds the largest of its kind (A m×k, B k×n, C m×n) over the shapes.
        let sizes = operandSizes(shapes)
        let out = FlatBuffer(count: sizes.c)
        // Element i of an operand: a small repeating pattern (no denormals, nothing grows).
        let value = { (i: Int, period: Int) in Float(i % period) * 0.01 }
        let product: (_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ lda: Int, _ ldb: Int) -> Void
        if bf16 {
            let a = (0..<sizes.a).map { BFloat16.round(value($0, 7)) }, b = (0..<sizes.b).map { BFloat16.round(value($0, 5)) }
            product = { ta, tb, m, n, k, lda, ldb in
                Gemm.parallelBF16(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                  beta: 0, c: out.pointer, ldc: n)
            }
        } else {
            let a = (0..<sizes.a).map { value($0, 7) }, b = (0..<sizes.b).map { value($0, 5) }
            product = { ta, tb, m, n, k, lda, ldb in
                Gemm.parallel(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                              beta: 0, c: out.pointer, ldc: n)
            }
        }
        var flops = 0.0, seconds = 0.0
        for (ta, tb, m, n, k, repeats) in shapes {
            let lda = ta ? m : k, ldb = tb ? k : n
            product(ta, tb, m, n, k, lda, ldb)
            var best = Double.infinity
            for _ in 0..<5 {
                let t0 = monotonicSeconds()
                product(ta, tb, m, n, k, lda, ldb)
                best = min(best, monotonicSeconds() - t0)
            }
            flops += 2 * Double(m * n * k * repeats)
            seconds += best * Double(repeats)
        }
        return (flops / seconds / 1e9, "\(shapes.count) \(bf16 ? "bf16" : "fp32") shapes of one step, best of 5 each, FLOP-weighted")
    }
}

/// What the gradient all-reduce costs when nothing else runs: every bucket reduced blocking,
/// best of several rounds; bus bandwidth = 2(W−1)/W · bytes / time (the NCCL convention).
public enum AllReduceCost {
    public static func measure(trainer: Trainer, job: Communicator) -> (seconds: Double, busBandwidth: Double) {
        guard job.worldSize > 1 else { return (0, 0) }
        let g = trainer.model.gradients
        var best = Double.infinity
        for _ in 0..<7 {
            job.barrier()
            let t0 = monotonicSeconds()
            for range in trainer.buckets.buckets { job.allReduceSum(g.pointer + range.lowerBound, count: range.count) }
            best = min(best, monotonicSeconds() - t0)
        }
        // Every rank reports rank 0's view: take the slowest rank's best.
        var worst = [best]
        worst.withUnsafeMutableBufferPointer { p in
            var all = [Double](repeating: 0, count: job.worldSize)
            all.withUnsafeMutableBytes { job.allGather(p.baseAddress!, bytes: 8, into: $0.baseAddress!) }
            p[0] = all.max()!
        }
        let W = Double(job.worldSize)
        return (worst[0], 2 * (W - 1) / W * Double(g.bytes) / worst[0])
    }

    /// One all-reduce of each size (floats, at most the gradient's) on the gradient buffer, best
    /// of 5 after a warm-up, the slowest rank's best: what the scaling model fits. Overwrites the
    /// gradients (the benchmark has finished with them).
    public static func timings(trainer: Trainer, job: Communicator, sizes: [Int]) -> [CollectiveTiming] {
        let g = trainer.model.gradients
        return sizes.map { size in
            let count = min(size, g.count)
            var best = Double.infinity
            for round in 0..<6 {
                job.barrier()
                let t0 = monotonicSeconds()
                job.allReduceSum(g.pointer, count: count)
                if round > 0 { best = min(best, monotonicSeconds() - t0) }
            }
            var all = [Double](repeating: 0, count: job.worldSize)
            withUnsafeBytes(of: &best) { b in all.withUnsafeMutableBytes { job.allGather(b.baseAddress!, bytes: 8, into: $0.baseAddress!) } }
            return CollectiveTiming(bytes: count * 4, seconds: all.max()!)
        }
    }

    /// One reduce-scatter of each size (floats, at most the gradient's, rounded down to a multiple
    /// of the ranks) from the gradient buffer, each rank receiving an equal part (ZeRO-1's gradient
    /// step), best of 5 after a warm-up, the slowest rank's best. Uses the last request slot, which
    /// the gradient buckets never take.
    public static func reduceScatterTimings(trainer: Trainer, job: Communicator, sizes: [Int]) -> [CollectiveTiming] {
        let g = trainer.model.gradients, W = job.worldSize
        let part = FlatBuffer(count: max(g.count / W, 1))     // (n / W) this rank's summed part
        return sizes.map { size in
            let count = max(min(size, g.count) / W, 1)
            let counts = [Int](repeating: count, count: W)
            var best = Double.infinity
            for round in 0..<6 {
                job.barrier()
                let t0 = monotonicSeconds()
                job.startReduceScatterSum(g.pointer, counts: counts, into: part.pointer, slot: maxPending - 1)
                job.wait(slot: maxPending - 1)
                if round > 0 { best = min(best, monotonicSeconds() - t0) }
            }
            var all = [Double](repeating: 0, count: W)
            withUnsafeBytes(of: &best) { b in all.withUnsafeMutableBytes { job.allGather(b.baseAddress!, bytes: 8, into: $0.baseAddress!) } }
            return CollectiveTiming(bytes: count * W * 4, seconds: all.max()!)
        }
    }

    /// Bus bandwidth of an all-reduce of `bytes` in `seconds` on `ranks` ranks: 2(W−1)/W · bytes / time
    /// (NCCL's convention: what each link carries); a reduce-scatter's is half of that traffic.
    public static func busBandwidth(bytes: Int, seconds: Double, ranks: Int, reduceScatter: Bool = false) -> Double {
        let W = Double(ranks)
        return (reduceScatter ? 1 : 2) * (W - 1) / W * Double(bytes) / seconds
    }

    /// Mean over the last `steps` rounds of the wait after backward of whichever rank ended
    /// backward last (ranks on one node share the monotonic clock).
    public static func lastRankWait(_ buckets: GradientBuckets, steps: Int, job: Communicator) -> Double {
        guard job.worldSize > 1, buckets.rounds >= steps, steps <= buckets.recordCapacity else { return 0 }
        var mine = [Double](), total = 0.0
        for i in (buckets.rounds - steps)..<buckets.rounds {
            let k = i % buckets.recordCapacity
            mine += [buckets.backwardEnds[k], buckets.waits[k]]
        }
        var all = [Double](repeating: 0, count: mine.count * job.worldSize)
        mine.withUnsafeBytes { m in all.withUnsafeMutableBytes { job.allGather(m.baseAddress!, bytes: m.count, into: $0.baseAddress!) } }
        for s in 0..<steps {
            let last = (0..<job.worldSize).max { all[$0 * mine.count + 2 * s] < all[$1 * mine.count + 2 * s] }!
            total += all[last * mine.count + 2 * s + 1]
        }
        return total / Double(steps)
    }
}
