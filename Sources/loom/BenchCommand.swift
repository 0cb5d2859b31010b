// BenchCommand: `loom bench CONFIG [--steps N]` — times real training steps after warm-up and
// prints throughput, achieved GFLOP/s against the sgemm rate measured at the model's own shapes,
// the memory plan next to peak RSS, and heap allocations in the measured steps. It is not a test.
import ArgumentParser
import Foundation
import Training
import Models
import Kernels
import Data
import Distributed
import MallocCounter

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Measure training-step throughput.")

    @Argument(help: "The YAML config whose model and batch to measure.") var config: String
    @Option(name: .customLong("set"), help: "Override a config key, e.g. training.threads=1.") var overrides: [String] = []
    @Option(help: "Measured steps (after warm-up).") var steps: Int = 20
    @Option(name: .customLong("warmup"), help: "Unmeasured steps first.") var warmup: Int = 3
    @Flag(help: "Also print where step time goes, per kernel family.") var profile = false
    @Flag(help: "Print one JSON line instead of the table.") var json = false
    @Flag(name: .customLong("batch-per-rank"),
          help: "Treat training.batch_size as each rank's share: the global batch grows with the ranks (weak scaling).")
    var batchPerRank = false
    @Option(name: .customLong("against"), parsing: .singleValue,
            help: "Also build the config with this override (repeatable) and alternate blocks of 10 steps between the two in this process: prints both throughputs and the ratio per block, so a noisy machine's speed swings hit both alike.")
    var against: [String] = []
    @Option(name: .customLong("against-kernels-isa"),
            help: "Alternate blocks as --against does, the second side running Loom's own kernels at this ISA (avx2 or avx512; see LOOM_KERNELS_ISA) instead of the start-up choice.")
    var againstKernelsISA: String?

    func run() throws {
        try reportingErrors {
            // The binary, its libraries and the runtime, before anything is read: the memory plan's base.
            let start = ProcessMemory.residentBytes()
            guard steps > 0, warmup >= 1 else { throw ValidationError("--steps must be > 0 and --warmup ≥ 1") }
            var config = try LoomConfig.load(path: config, overrides: overrides)
            config.evaluation.interval = 0
            if config.model.kind == .transformer {
                guard against.isEmpty && againstKernelsISA == nil else {
                    throw ValidationError("loom bench --against: only for GPT configs (\(self.config) is a transformer)")
                }
                try benchTranslation(config: config, start: start)
                return
            }
            let data: PreparedData
            if config.model.vocabularySize > 0, let missing = missingDataFile(config.data) {
                data = PreparedData.synthetic(vocabularySize: config.model.vocabularySize, tokens: 1 << 20, seed: 7)
                if !json { print("loom bench: \(missing) does not exist: measuring on random tokens of the model's vocabulary") }
            } else {
                data = try PreparedData(config: config)
            }
            let job = try joinJob()
            if batchPerRank { config.training.batchSize *= job.worldSize }
            let threads = threadsPerRank(configured: config.training.threads, job: job)
            ThreadPool.configure(threads: threads)
            let trainer = try Trainer(config: config, data: data, communicator: job,
                                      run: nil, progress: Progress(enabled: false))
            guard let model = trainer.gpt else { throw ValidationError("loom bench: \(self.config) is not a GPT config") }
            if !against.isEmpty || againstKernelsISA != nil {
                try compare(trainer, with: against, data: data, job: job, threads: threads)
                return
            }
            let c = model.config
            // The global batch: every rank's share of it.
            let tokensPerStep = config.training.batchSize * c.contextLength

            let (times, allocations) = timedSteps(trainer, job: job, measured: warmup..<(warmup + steps))
            let exposed = trainer.buckets.exposedSeconds / Double(steps)
            let waited = trainer.buckets.waitSeconds / Double(steps)
            let lastRankWait = AllReduceCost.lastRankWait(trainer.buckets, steps: steps, job: job)
            let reduce = AllReduceCost.measure(trainer: trainer, job: job)
            let median = times.sorted()[times.count / 2]
            let tokensPerSecond = Double(tokensPerStep) / median
            let gflops = tokensPerSecond * c.flopsPerToken / 1e9
            let peak = GemmPeak.measure(config: c, rows: config.training.microBatchSize * c.contextLength)

            let memory = MemoryPlan(trainer: trainer, start: start, tokens: data.tokenCount, extra: [
                ("sgemm rate measurement (A, B, C operands)", GemmPeak.operandBytes(config: c, rows: config.training.microBatchSize * c.contextLength))])
            let replicas = (trainer.task as? LanguageModelTask)?.replicas?.count ?? 1

            let overlap = trainer.buckets.overlap
            let hidden = job.worldSize > 1 ? max(0, 1 - exposed / reduce.seconds) : 0
            let kernels = BLASStartup.BenchReport(job)
            guard job.isCoordinator else { job.finish(); return }
            defer { job.finish() }
            if json {
                let fields: [String: Any] = [
                    "ranks": job.worldSize, "allreduce_ms": reduce.seconds * 1e3, "exposed_allreduce_ms": exposed * 1e3, "wait_after_backward_ms": waited * 1e3,
                    "hidden_share": hidden, "bus_bandwidth_gbs": reduce.busBandwidth / 1e9, "buckets": trainer.buckets.buckets.count,
                    "tokens_per_s": tokensPerSecond.rounded(), "step_ms": median * 1e3, "gflops": gflops,
                    "sgemm_peak_gflops": peak.gflops, "ratio": gflops / peak.gflops, "threads": threads, "thread_replicas": replicas,
                    "flops_per_token": c.flopsPerToken,
                    "allocations_in_measured_steps": allocations, "onednn_allocations_in_measured_steps": oneDNNAllocations,
                    "parameters": model.layout.count, "precision": model.precision.rawValue]
                try printJSON(fields.merging(kernels.fields) { a, _ in a }.merging(memory.fields) { a, _ in a }
                    .merging(GemmReport.fields(trainer.gemm)) { a, _ in a })
                return
            }
            print("loom bench \(self.config): layers \(c.layers), heads \(c.heads), width \(c.width), context \(c.contextLength), "
                  + "vocabulary \(c.vocabularySize), batch \(config.training.batchSize) (micro \(config.training.microBatchSize)), "
                  + "\(job.worldSize) rank(s) × \(threads) thread(s)"
                  + (replicas > 1 ? " as whole-model replicas (training.thread_parallelism)" : ""))
            kernels.print()
            GemmReport.print(trainer.gemm)
            print(String(format: "  step time        %.2f ms (median of %d, after %d warm-up)", median * 1e3, steps, warmup))
            print(String(format: "  throughput       %.0f tokens/s", tokensPerSecond))
            print(String(format: "  FLOPs/token      %.4g = 6·N + 12·L·T·C (N = %d parameters without the position table)",
                         c.flopsPerToken, c.nonEmbeddingPositionParameters))
            print(String(format: "  achieved         %.1f GFLOP/s", gflops))
            print(String(format: "  GEMM at model shapes  %.1f GFLOP/s (%@; on the engines kernels.gemm chose)", peak.gflops, peak.detail))
            print(String(format: "  ratio            %.0f %% of the measured GEMM rate", 100 * gflops / peak.gflops))
            memory.print()
            print(allocationLine(allocations, ranks: job.worldSize))
            if job.worldSize > 1 {
                print(String(format: "  gradient all-reduce   %.1f MiB in %d bucket(s), %@", Double(model.gradients.bytes) / 1048576,
                             trainer.buckets.buckets.count, overlap ? "overlapped with backward" : "after backward (overlap off)"))
                print(String(format: "    blocking cost       %.2f ms/step (all buckets, measured alone; bus bandwidth %.2f GB/s)",
                             reduce.seconds * 1e3, reduce.busBandwidth / 1e9))
                print(String(format: "    exposed in the step %.2f ms/step: %.2f in starts and tests during backward, %.2f waiting after it",
                             exposed * 1e3, (exposed - waited) * 1e3, waited * 1e3))
                print(String(format: "    wait after backward on the rank that finished it last %.2f ms/step (no skew in it)", lastRankWait * 1e3))
                print(String(format: "    hidden under backward %.0f %% (1 − exposed / blocking cost); %.0f %% counting only the last rank's wait",
                             100 * hidden, 100 * max(0, 1 - lastRankWait / reduce.seconds)))
            }
            print(String(format: "scaling: ranks=%d threads=%d tokens_per_s=%.0f step_ms=%.2f allreduce_ms=%.2f exposed_ms=%.2f wait_ms=%.2f last_rank_wait_ms=%.2f hidden=%.3f busbw_gbs=%.2f",
                         job.worldSize, threads, tokensPerSecond, median * 1e3, reduce.seconds * 1e3, exposed * 1e3, waited * 1e3,
                         lastRankWait * 1e3, hidden,
                         reduce.busBandwidth / 1e9))
            if profile { printProfile(total: times.reduce(0, +)) }
        }
    }

    /// `--against`: the same steps on a second trainer built with extra overrides, alternating
    /// blocks of 10 steps with the first; prints each one's median block throughput and the
    /// median, lowest and highest ratio of adjacent blocks (second / first).
    func compare(_ first: Trainer, with extra: [String], data: PreparedData, job: Communicator, threads: Int) throws {
        var config = try LoomConfig.load(path: self.config, overrides: overrides + extra)
        config.evaluation.interval = 0
        if batchPerRank { config.training.batchSize *= job.worldSize }
        guard threadsPerRank(configured: config.training.threads, job: job) == threads else {
            throw ValidationError("loom bench --against: both sides share one thread pool; compare thread counts in separate runs")
        }
        // The kernel ISA of each side: the start-up choice, or --against-kernels-isa for the second.
        let isas: [KernelISA] = try {
            let startup = KernelISA.selected
            guard let text = againstKernelsISA else { return [startup, startup] }
            guard let isa = KernelISA(rawValue: text.lowercased()), KernelISA.available.contains(isa) else {
                throw ValidationError("loom bench --against-kernels-isa \(text): this CPU runs \(KernelISA.available.map(\.rawValue).joined(separator: " or "))")
            }
            return [startup, isa]
        }()
        let second = try Trainer(config: config, data: data, communicator: job, run: nil, progress: Progress(enabled: false))
        let block = 10, blocks = max(1, (steps + block - 1) / block)
        for s in 0..<warmup {
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
                for s in 0..<block { _ = trainer.trainStep(warmup + b * block + s, learningRate: 1e-4) }
                let tokens = trainer.config.training.batchSize * trainer.config.model.contextLength
                pair[side] = Double(tokens * block) / (monotonicSeconds() - t0)
            }
            rates.0.append(pair[0]); rates.1.append(pair[1]); ratios.append(pair[1] / pair[0])
        }
        KernelISA.selected = isas[0]
        let kernels = BLASStartup.BenchReport(job)
        guard job.isCoordinator else { job.finish(); return }
        defer { job.finish() }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let extraText = (extra + (againstKernelsISA.map { _ in ["kernels ISA \(isas[1].rawValue) (first side: \(isas[0].rawValue))"] } ?? []))
            .joined(separator: " ")
        if json {
            try printJSON(["tokens_per_s": median(rates.0).rounded(), "against_tokens_per_s": median(rates.1).rounded(),
                           "ratio_median": median(ratios), "ratio_min": ratios.min()!, "ratio_max": ratios.max()!,
                           "blocks": blocks, "against": extraText, "against_gemm": GemmReport.fields(second.gemm)["gemm"]!,
                           "block_ratios": ratios, "block_tokens_per_s": rates.0.map { $0.rounded() },
                           "against_block_tokens_per_s": rates.1.map { $0.rounded() }]
                .merging(kernels.fields) { a, _ in a }.merging(GemmReport.fields(first.gemm)) { a, _ in a })
            return
        }
        print("loom bench \(self.config) against \(extraText): \(blocks) alternating blocks of \(block) steps, \(threads) thread(s)")
        kernels.print()
        GemmReport.print(first.gemm, label: "as configured: ")
        GemmReport.print(second.gemm, label: "with \(extraText): ")
        print(String(format: "  as configured    %.0f tokens/s (median block)", median(rates.0)))
        print(String(format: "  with %@  %.0f tokens/s (median block)", extraText, median(rates.1)))
        print(String(format: "  ratio per block  median %.3f, lowest %.3f, highest %.3f", median(ratios), ratios.min()!, ratios.max()!))
    }

    /// Warm-up steps `warmup ..< measured.lowerBound` (default: the `warmup` steps just before),
    /// then the `measured` steps, each timed; heap allocations are counted over all measured steps.
    func timedSteps(_ trainer: Trainer, job: Communicator, measured: Range<Int>, warmup first: Int? = nil) -> (times: [Double], allocations: UInt64) {
        for s in (first ?? measured.lowerBound - warmup)..<measured.lowerBound { _ = trainer.trainStep(s, learningRate: 1e-4) }
        var times: [Double] = []
        times.reserveCapacity(measured.count)
        job.barrier()
        trainer.buckets.resetStatistics()
        Profiler.reset()
        Profiler.enabled = profile
        OneDNN.aroundExecute = (loom_malloc_foreign_begin, loom_malloc_foreign_end)
        let before = loom_malloc_count(), foreignBefore = loom_malloc_foreign_count()
        for s in measured {
            let t0 = monotonicSeconds()
            _ = trainer.trainStep(s, learningRate: 1e-4)
            times.append(monotonicSeconds() - t0)
        }
        let allocations = loom_malloc_count() - before
        oneDNNAllocations = loom_malloc_foreign_count() - foreignBefore
        Profiler.enabled = false
        return (times, allocations)
    }

    /// The corpus or tokenizer file a GPT config names that is not there (nil when all are), so
    /// bench can measure a config whose data is not prepared yet on random tokens instead.
    func missingDataFile(_ d: DataSection) -> String? {
        let files = (d.shards.isEmpty ? [d.corpus] : [d.shards]) + (d.tokenizer.path.map { [$0] } ?? [])
        return files.first { !FileManager.default.fileExists(atPath: $0) }
    }

    /// Of the last `timedSteps`' allocations, those made inside oneDNN's dnnl_primitive_execute.
    nonisolated(unsafe) static var lastOneDNNAllocations: UInt64 = 0
    var oneDNNAllocations: UInt64 {
        get { BenchCommand.lastOneDNNAllocations }
        nonmutating set { BenchCommand.lastOneDNNAllocations = newValue }
    }

    /// The allocation line: all of the process's, and how many of them oneDNN made inside its calls.
    func allocationLine(_ allocations: UInt64, ranks: Int) -> String {
        "  heap allocations during the \(steps) measured steps: \(allocations)\(ranks > 1 ? " (rank 0)" : "")"
            + (oneDNNAllocations > 0 ? " (\(allocations - oneDNNAllocations) by Loom; \(oneDNNAllocations) inside oneDNN's dnnl_primitive_execute, which allocates on every call)" : "")
    }

    /// One JSON line (sorted keys), the `--json` output.
    func printJSON(_ fields: [String: Any]) throws {
        let out = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        print(String(decoding: out, as: UTF8.self))
    }

    /// The profiler's per-family sums over the measured steps, as ms/step and share of `total`.
    func printProfile(total: Double) {
        print("  where step time goes (sum over measured steps):")
        var accounted = 0.0
        for section in Profiler.Section.allCases {
            let s = Profiler.seconds[section.rawValue]
            accounted += s
            if s > 0 { print("    " + section.name.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%7.1f ms/step  %5.1f %%", s / Double(steps) * 1e3, 100 * s / total)) }
        }
        print("    " + "other (data, bookkeeping)".padding(toLength: 32, withPad: " ", startingAt: 0)
              + String(format: "%7.1f ms/step  %5.1f %%", (total - accounted) / Double(steps) * 1e3, 100 * (total - accounted) / total))
    }

    /// The encoder-decoder: real token-count batches of the configured parallel shards, measured
    /// across an epoch boundary (where the batch order is reshuffled). Batches differ in size, so
    /// throughput is Σ target tokens / Σ step time rather than a median.
    func benchTranslation(config: LoomConfig, start: Int) throws {
        let data = try PreparedTranslationData(config: config)
        let loaded = ProcessMemory.residentBytes() - start
        let job = try joinJob()
        let threads = threadsPerRank(configured: config.training.threads, job: job)
        ThreadPool.configure(threads: threads)
        let task = try TranslationTask(config: config, train: data.train, validation: data.validation,
                                       tokenizer: data.tokenizer, begin: data.begin, end: data.end)
        let trainer = try Trainer(config: config, task: task, communicator: job, run: nil, progress: Progress(enabled: false))
        let model = task.transformer
        // Start so that the measured steps straddle the first epoch boundary.
        let first = max(warmup, task.stepsPerEpoch - steps / 2)
        let (times, allocations) = timedSteps(trainer, job: job, measured: first..<(first + steps), warmup: first - warmup)
        let seconds = times.reduce(0, +)
        let tokens = (first..<(first + steps)).reduce(0) { $0 + task.globalTokens(step: $1) }
        // The parallel corpora are measured (resident set after loading them), not planned.
        let memory = MemoryPlan(trainer: trainer, start: start, tokens: 0,
                                extra: [("parallel corpora and tokenizer (resident after loading)", loaded)])
        let kernels = BLASStartup.BenchReport(job)
        guard job.isCoordinator else { job.finish(); return }
        defer { job.finish() }
        let c = model.config
        let perSecond = Double(tokens) / seconds
        if json {
            let fields: [String: Any] = [
                "ranks": job.worldSize, "threads": threads, "target_tokens_per_s": perSecond.rounded(),
                "step_ms": seconds / Double(steps) * 1e3, "first_step": first, "steps_per_epoch": task.stepsPerEpoch,
                "allocations_in_measured_steps": allocations, "onednn_allocations_in_measured_steps": oneDNNAllocations,
                "parameters": model.layout.count]
            try printJSON(fields.merging(kernels.fields) { a, _ in a }.merging(memory.fields) { a, _ in a }
                .merging(GemmReport.fields(trainer.gemm)) { a, _ in a })
            return
        }
        print("loom bench \(self.config): transformer \(c.encoderLayers)+\(c.decoderLayers) layers, heads \(c.heads), width \(c.width), "
              + "ffn \(c.ffnWidth), vocabulary \(c.vocabularySize), batches of ≤ \(config.training.batchSize) pairs / "
              + "\(config.training.maxTokens) tokens (micro \(config.training.microBatchSize)), \(job.worldSize) rank(s) × \(threads) thread(s)")
        kernels.print()
        GemmReport.print(trainer.gemm)
        print(String(format: "  steps            %d..%d (an epoch is %d steps: the window crosses its boundary), after %d warm-up",
                     first, first + steps - 1, task.stepsPerEpoch, warmup))
        print(String(format: "  step time        %.2f ms (mean; batches differ in size)", seconds / Double(steps) * 1e3))
        print(String(format: "  throughput       %.0f target tokens/s (%d target tokens in %.2f s)", perSecond, tokens, seconds))
        memory.print()
        print(allocationLine(allocations, ranks: job.worldSize))
        if profile { printProfile(total: seconds) }
    }
}

/// What `kernels.gemm` chose per product shape (after the first warm-up step planned it).
enum GemmReport {
    static func print(_ plan: GemmPlan?, label: String = "") {
        guard let plan else {
            Swift.print("  \(label)kernels.gemm openblas: every product on OpenBLAS")
            return
        }
        Swift.print("  \(label)\(plan.summary)")
        Swift.print("    product shape (m×n×k, form, β, ld A/B/C)            calls/step  OpenBLAS µs  oneDNN µs  engine")
        for c in plan.choices {
            let us = { (t: Double?) in t.map { String(format: "%11.1f", $0 * 1e6) } ?? "          –" }
            Swift.print("    " + c.shape.description.padding(toLength: 52, withPad: " ", startingAt: 0)
                        + String(format: "%10d", c.calls) + "  " + us(c.openblasSeconds) + "  " + us(c.onednnSeconds).dropFirst(2)
                        + "  " + (c.engine == .onednn ? "oneDNN \(c.implementation)" : "OpenBLAS"))
        }
    }

    /// `gemm`: the selection and, per shape, calls per step, both engines' times and the choice.
    static func fields(_ plan: GemmPlan?) -> [String: Any] {
        guard let plan else { return ["gemm": ["selection": GemmSelection.openblas.rawValue, "shapes": [Any]()] as [String: Any]] }
        let split = plan.split
        return ["gemm": [
            "selection": plan.selection.rawValue, "onednn_isa": OneDNN.isa, "onednn_shapes": split.onednnShapes,
            "onednn_flop_share": split.onednnShare, "planning_s": plan.planningSeconds,
            "shapes": plan.choices.map { c -> [String: Any] in
                let s = c.shape
                return ["shape": s.description, "m": s.m, "n": s.n, "k": s.k, "trans_a": s.transA, "trans_b": s.transB,
                        "lda": s.lda, "ldb": s.ldb, "ldc": s.ldc, "alpha": Double(s.alpha), "beta": Double(s.beta), "bf16": s.bf16,
                        "calls": c.calls, "engine": c.engine.rawValue, "implementation": c.implementation,
                        "openblas_us": c.openblasSeconds.map { $0 * 1e6 } ?? NSNull(),
                        "onednn_us": c.onednnSeconds.map { $0 * 1e6 } ?? NSNull()]
            }] as [String: Any]]
    }
}

/// The GEMM rate this machine reaches at one training step's matrix shapes (every linear
/// layer's forward and both backward products, and the LM head), through the same wrapper and so
/// on the engines the plan in force chose (OpenBLAS for shapes it does not route).
enum GemmPeak {
    /// (transA, transB, m, n, k, repeats per step)
    typealias Shape = (Bool, Bool, Int, Int, Int, Int)

    /// Floats of the A, B and C operand buffers `measure` allocates for `shapes`.
    static func operandSizes(_ shapes: [Shape]) -> (a: Int, b: Int, c: Int) {
        shapes.reduce((1, 1, 1)) { s, x in (max(s.0, x.2 * x.4), max(s.1, x.4 * x.3), max(s.2, x.2 * x.3)) }
    }

    /// Bytes of the operand buffers `measure(config:rows:)` holds while it runs.
    static func operandBytes(config c: GPTConfig, rows N: Int) -> Int {
        let s = operandSizes(shapes(config: c, rows: N))
        return (s.a + s.b + s.c) * MemoryLayout<Float>.stride
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
    /// `operandBytes(config:rows:)` in all.
    static func measure(config c: GPTConfig, rows N: Int) -> (gflops: Double, detail: String) {
        let shapes = shapes(config: c, rows: N)
        // Each operand buffer holds the largest of its kind (A m×k, B k×n, C m×n) over the shapes.
        let sizes = operandSizes(shapes)
        let a = FlatBuffer(count: sizes.a), b = FlatBuffer(count: sizes.b), out = FlatBuffer(count: sizes.c)
        for i in 0..<sizes.a { a.pointer[i] = Float(i % 7) * 0.01 }
        for i in 0..<sizes.b { b.pointer[i] = Float(i % 5) * 0.01 }
        var flops = 0.0, seconds = 0.0
        for (ta, tb, m, n, k, repeats) in shapes {
            let lda = ta ? m : k, ldb = tb ? k : n
            Gemm.parallel(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: 0, c: out.pointer, ldc: n)
            var best = Double.infinity
            for _ in 0..<5 {
                let t0 = monotonicSeconds()
                Gemm.parallel(transA: ta, transB: tb, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, beta: 0, c: out.pointer, ldc: n)
                best = min(best, monotonicSeconds() - t0)
            }
            flops += 2 * Double(m * n * k * repeats)
            seconds += best * Double(repeats)
        }
        return (flops / seconds / 1e9, "\(shapes.count) shapes of one step, best of 5 each, FLOP-weighted")
    }
}

/// What the gradient all-reduce costs when nothing else runs: every bucket reduced blocking,
/// best of several rounds; bus bandwidth = 2(W−1)/W · bytes / time (the NCCL convention).
enum AllReduceCost {
    static func measure(trainer: Trainer, job: Communicator) -> (seconds: Double, busBandwidth: Double) {
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

    /// Mean over the last `steps` rounds of the wait after backward of whichever rank ended
    /// backward last (ranks on one node share the monotonic clock).
    static func lastRankWait(_ buckets: GradientBuckets, steps: Int, job: Communicator) -> Double {
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
