// BenchCommand: `loom bench CONFIG [--steps N]` — parses the arguments, has Training's Benchmark
// time real training steps after warm-up, and prints throughput, achieved GFLOP/s against the GEMM
// rate at the model's own shapes, the memory plan next to peak RSS, and heap allocations in the
// measured steps, as a table or one JSON line.
import ArgumentParser
import Foundation
import Training
import Models
import Kernels
import Data
import Distributed
import MallocCounter
import Support

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

    @Flag(help: "Also time single all-reduces from 1 KiB up to the gradient's size (the scaling model's input; several ranks).")
    var collectives = false

    var options: BenchmarkOptions { BenchmarkOptions(steps: steps, warmup: warmup, profile: profile) }

    /// The process's malloc counter; oneDNN's execute calls are marked so their allocations count apart.
    static let counter = AllocationCounter(
        begin: { OneDNN.aroundExecute = (loom_malloc_foreign_begin, loom_malloc_foreign_end) },
        count: { loom_malloc_count() }, foreignCount: { loom_malloc_foreign_count() })

    func run() throws {
        try reportingErrors {
            // The binary, its libraries and the runtime, before anything is read: the memory plan's base.
            let start = ProcessMemory.residentBytes()
            guard steps > 0, warmup >= 1 else { throw ValidationError("--steps must be > 0 and --warmup ≥ 1") }
            let loaded = try LoomConfig.load(path: config, overrides: overrides)
            if loaded.trainsTranslation {
                guard against.isEmpty && againstKernelsISA == nil else {
                    throw ValidationError("loom bench --against: only for GPT configs (\(self.config) is a transformer)")
                }
                try benchTranslation(config: loaded, start: start)
                return
            }
            if loaded.model.kind == .bert {
                guard against.isEmpty && againstKernelsISA == nil && !collectives else {
                    throw ValidationError("loom bench --against and --collectives: only for GPT configs (\(self.config) is a bert)")
                }
                try benchMaskedLanguageModel(config: loaded, start: start)
                return
            }
            let (data, missing) = try Benchmark.languageModelData(config: loaded)
            if let missing, !json { Swift.print("loom bench: \(missing) does not exist: measuring on random tokens of the model's vocabulary") }
            let job = try joinJob()
            let config = Benchmark.config(loaded, ranks: job.worldSize, batchPerRank: batchPerRank)
            let threads = threadsPerRank(configured: config.training.threads, job: job)
            ThreadPool.configure(threads: threads)
            let trainer = try Trainer(config: config, data: data, communicator: job, run: nil, progress: Progress(enabled: false))
            if !against.isEmpty || againstKernelsISA != nil {
                try compare(trainer, with: against, data: data, job: job, threads: threads)
                return
            }
            let bench = try LanguageModelBenchmark(trainer: trainer, data: data, options: options, counter: Self.counter, start: start)
            let timings = collectives && job.worldSize > 1 ? AllReduceCost.timings(trainer: trainer, job: job, sizes: collectiveSizes(trainer)) : []
            let scatters = collectives && job.worldSize > 1
                ? AllReduceCost.reduceScatterTimings(trainer: trainer, job: job, sizes: collectiveSizes(trainer)) : []
            let kernels = BLASStartup.BenchReport(job)
            guard job.isCoordinator else { job.finish(); return }
            defer { job.finish() }
            if json {
                try printJSON(fields(bench).merging(kernels.fields) { a, _ in a }.merging(bench.memory.fields) { a, _ in a }
                    .merging(GemmReport.fields(trainer.gemm)) { a, _ in a }
                    .merging(timings.isEmpty ? [:] : ["collectives": timings.map { ["bytes": $0.bytes, "seconds": $0.seconds] },
                                                      "reduce_scatter": scatters.map { ["bytes": $0.bytes, "seconds": $0.seconds] }]) { a, _ in a }
                    .merging(profile ? ["profile_ms_per_step": profileFields()] : [:]) { a, _ in a })
                return
            }
            print(bench, kernels: kernels, threads: threads)
            let W = job.worldSize
            for t in timings {
                Swift.print(String(format: "  all-reduce     %10d bytes  %8.3f ms  bus %6.2f GB/s", t.bytes, t.seconds * 1e3,
                                   AllReduceCost.busBandwidth(bytes: t.bytes, seconds: t.seconds, ranks: W) / 1e9))
            }
            for t in scatters {
                Swift.print(String(format: "  reduce-scatter %10d bytes  %8.3f ms  bus %6.2f GB/s", t.bytes, t.seconds * 1e3,
                                   AllReduceCost.busBandwidth(bytes: t.bytes, seconds: t.seconds, ranks: W, reduceScatter: true) / 1e9))
            }
        }
    }

    /// 1 KiB, 4 KiB, … ×4 up to the gradient, and the gradient itself (in floats).
    func collectiveSizes(_ trainer: Trainer) -> [Int] {
        let total = trainer.model.gradients.count
        var sizes: [Int] = [], n = 256
        while n < total { sizes.append(n); n *= 4 }
        return sizes + [total]
    }

    /// The `--json` fields of a GPT benchmark.
    func fields(_ bench: LanguageModelBenchmark) -> [String: Any] {
        let job = bench.trainer.communicator, trainer = bench.trainer
        return [
            "ranks": job.worldSize, "allreduce_ms": bench.reduce.seconds * 1e3, "exposed_allreduce_ms": bench.exposedSeconds * 1e3,
            "wait_after_backward_ms": bench.waitSeconds * 1e3,
            "hidden_share": bench.hidden, "bus_bandwidth_gbs": bench.reduce.busBandwidth / 1e9, "buckets": trainer.buckets.buckets.count,
            "tokens_per_s": bench.tokensPerSecond.rounded(), "step_ms": bench.steps.median * 1e3, "gflops": bench.gflops,
            "sgemm_peak_gflops": bench.peak.gflops, "ratio": bench.gflops / bench.peak.gflops, "threads": ThreadPool.shared.threads,
            "vector_peak_fp32_gflops": bench.vectorPeak.fp32 ?? NSNull(), "vector_peak_bf16_gflops": bench.vectorPeak.bf16 ?? NSNull(),
            "peak_share": bench.peakShare ?? NSNull(), "peak_precision": bench.peakPrecision,
            "thread_replicas": bench.replicas, "flops_per_token": bench.model.config.flopsPerToken,
            "allocations_in_measured_steps": bench.steps.allocations, "onednn_allocations_in_measured_steps": bench.steps.oneDNNAllocations,
            "parameters": bench.model.layout.count, "precision": bench.model.precision.rawValue,
            "gradient_bytes": trainer.model.gradients.bytes]
    }

    /// The GPT benchmark's table.
    func print(_ bench: LanguageModelBenchmark, kernels: BLASStartup.BenchReport, threads: Int) {
        let c = bench.model.config, config = bench.trainer.config, job = bench.trainer.communicator
        Swift.print("loom bench \(self.config): layers \(c.layers), heads \(c.heads), width \(c.width), context \(c.contextLength), "
              + "vocabulary \(c.vocabularySize), batch \(config.training.batchSize) (micro \(config.training.microBatchSize)), "
              + "\(job.worldSize) rank(s) × \(threads) thread(s)"
              + (bench.replicas > 1 ? " as whole-model replicas (training.thread_parallelism)" : ""))
        kernels.print()
        GemmReport.print(bench.trainer.gemm)
        Swift.print(String(format: "  step time        %.2f ms (median of %d, after %d warm-up)", bench.steps.median * 1e3, steps, warmup))
        Swift.print(String(format: "  throughput       %.0f tokens/s", bench.tokensPerSecond))
        Swift.print(String(format: "  FLOPs/token      %.4g = 6·N + 12·L·T·C (N = %d parameters without the position table)",
                           c.flopsPerToken, c.nonEmbeddingPositionParameters))
        Swift.print(String(format: "  achieved         %.1f GFLOP/s", bench.gflops))
        Swift.print(String(format: "  GEMM at model shapes  %.1f GFLOP/s (%@; on the engines kernels.gemm chose)", bench.peak.gflops, bench.peak.detail))
        Swift.print(String(format: "  ratio            %.0f %% of the measured GEMM rate", 100 * bench.gflops / bench.peak.gflops))
        Swift.print("  vector peak      " + VectorPeakReport.phrase(bench.vectorPeak))
        if let share = bench.peakShare {
            Swift.print(String(format: "  of the peak      %.0f %% (achieved against the %@ ceiling%@)", 100 * share,
                               bench.peakPrecision, job.worldSize > 1 ? ", every rank's threads" : ""))
        }
        bench.memory.print()
        Swift.print(allocationLine(bench.steps, ranks: job.worldSize))
        if job.worldSize > 1 { printAllReduce(bench) }
        Swift.print(String(format: "scaling: ranks=%d threads=%d tokens_per_s=%.0f step_ms=%.2f allreduce_ms=%.2f exposed_ms=%.2f wait_ms=%.2f last_rank_wait_ms=%.2f hidden=%.3f busbw_gbs=%.2f",
                           job.worldSize, threads, bench.tokensPerSecond, bench.steps.median * 1e3, bench.reduce.seconds * 1e3,
                           bench.exposedSeconds * 1e3, bench.waitSeconds * 1e3, bench.lastRankWaitSeconds * 1e3, bench.hidden,
                           bench.reduce.busBandwidth / 1e9))
        if profile { printProfile(total: bench.steps.total) }
    }

    /// The all-reduce lines of a multi-rank GPT benchmark.
    func printAllReduce(_ bench: LanguageModelBenchmark) {
        let buckets = bench.trainer.buckets, exposed = bench.exposedSeconds, waited = bench.waitSeconds
        Swift.print(String(format: "  gradient all-reduce   %.1f MiB in %d bucket(s), %@", Double(bench.model.gradients.bytes) / 1048576,
                           buckets.buckets.count, buckets.overlap ? "overlapped with backward" : "after backward (overlap off)"))
        Swift.print(String(format: "    blocking cost       %.2f ms/step (all buckets, measured alone; bus bandwidth %.2f GB/s)",
                           bench.reduce.seconds * 1e3, bench.reduce.busBandwidth / 1e9))
        Swift.print(String(format: "    exposed in the step %.2f ms/step: %.2f in starts and tests during backward, %.2f waiting after it",
                           exposed * 1e3, (exposed - waited) * 1e3, waited * 1e3))
        Swift.print(String(format: "    wait after backward on the rank that finished it last %.2f ms/step (no skew in it)", bench.lastRankWaitSeconds * 1e3))
        Swift.print(String(format: "    hidden under backward %.0f %% (1 − exposed / blocking cost); %.0f %% counting only the last rank's wait",
                           100 * bench.hidden, 100 * max(0, 1 - bench.lastRankWaitSeconds / bench.reduce.seconds)))
    }

    /// `--against`: the same steps on a second trainer built with extra overrides, alternating
    /// blocks of 10 steps with the first; prints each one's median block throughput and the
    /// median, lowest and highest ratio of adjacent blocks (second / first).
    func compare(_ first: Trainer, with extra: [String], data: PreparedData, job: Communicator, threads: Int) throws {
        let config = Benchmark.config(try LoomConfig.load(path: self.config, overrides: overrides + extra),
                                      ranks: job.worldSize, batchPerRank: batchPerRank)
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
        let result = AlternatingComparison(first, second, isas: isas, options: options)
        let kernels = BLASStartup.BenchReport(job)
        guard job.isCoordinator else { job.finish(); return }
        defer { job.finish() }
        let extraText = (extra + (againstKernelsISA.map { _ in ["kernels ISA \(isas[1].rawValue) (first side: \(isas[0].rawValue))"] } ?? []))
            .joined(separator: " ")
        try print(result, first: first, second: second, against: extraText, kernels: kernels, threads: threads)
    }

    /// The comparison's JSON line or text.
    func print(_ r: AlternatingComparison, first: Trainer, second: Trainer, against extraText: String,
               kernels: BLASStartup.BenchReport, threads: Int) throws {
        let median = AlternatingComparison.median
        if json {
            try printJSON(["tokens_per_s": median(r.rates.first).rounded(), "against_tokens_per_s": median(r.rates.second).rounded(),
                           "ratio_median": median(r.ratios), "ratio_min": r.ratios.min()!, "ratio_max": r.ratios.max()!,
                           "blocks": r.blocks, "against": extraText, "against_gemm": GemmReport.fields(second.gemm)["gemm"]!,
                           "block_ratios": r.ratios, "block_tokens_per_s": r.rates.first.map { $0.rounded() },
                           "against_block_tokens_per_s": r.rates.second.map { $0.rounded() }]
                .merging(kernels.fields) { a, _ in a }.merging(GemmReport.fields(first.gemm)) { a, _ in a })
            return
        }
        Swift.print("loom bench \(self.config) against \(extraText): \(r.blocks) alternating blocks of \(AlternatingComparison.blockSteps) steps, \(threads) thread(s)")
        kernels.print()
        GemmReport.print(first.gemm, label: "as configured: ")
        GemmReport.print(second.gemm, label: "with \(extraText): ")
        Swift.print(String(format: "  as configured    %.0f tokens/s (median block)", median(r.rates.first)))
        Swift.print(String(format: "  with %@  %.0f tokens/s (median block)", extraText, median(r.rates.second)))
        Swift.print(String(format: "  ratio per block  median %.3f, lowest %.3f, highest %.3f", median(r.ratios), r.ratios.min()!, r.ratios.max()!))
    }

    /// The allocation line: all of the process's, and how many of them oneDNN made inside its calls.
    func allocationLine(_ t: TimedSteps, ranks: Int) -> String {
        "  heap allocations during the \(steps) measured steps: \(t.allocations)\(ranks > 1 ? " (rank 0)" : "")"
            + (t.oneDNNAllocations > 0 ? " (\(t.allocations - t.oneDNNAllocations) by Loom; \(t.oneDNNAllocations) inside oneDNN's dnnl_primitive_execute, which allocates on every call)" : "")
    }

    /// One JSON line (sorted keys), the `--json` output.
    func printJSON(_ fields: [String: Any]) throws {
        let out = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        Swift.print(String(decoding: out, as: UTF8.self))
    }

    /// The profiler's per-family sums over the measured steps, as ms/step and share of `total`.
    /// `--profile --json`: milliseconds per measured step of each kernel family that ran.
    func profileFields() -> [String: Double] {
        var fields: [String: Double] = [:]
        for section in Profiler.Section.allCases where Profiler.seconds[section.rawValue] > 0 {
            fields["\(section)"] = Profiler.seconds[section.rawValue] / Double(steps) * 1e3
        }
        return fields
    }

    func printProfile(total: Double) {
        Swift.print("  where step time goes (sum over measured steps):")
        var accounted = 0.0
        for section in Profiler.Section.allCases {
            let s = Profiler.seconds[section.rawValue]
            accounted += s
            if s > 0 { Swift.print("    " + section.name.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%7.1f ms/step  %5.1f %%", s / Double(steps) * 1e3, 100 * s / total)) }
        }
        Swift.print("    " + "other (data, bookkeeping)".padding(toLength: 32, withPad: " ", startingAt: 0)
              + String(format: "%7.1f ms/step  %5.1f %%", (total - accounted) / Double(steps) * 1e3, 100 * (total - accounted) / total))
    }

    /// The encoder-decoder: real token-count batches of the configured parallel shards, measured
    /// across an epoch boundary (Training.TranslationBenchmark).
    func benchTranslation(config loaded: LoomConfig, start: Int) throws {
        let config = Benchmark.config(loaded, ranks: 1, batchPerRank: false)
        let data = try PreparedTranslationData(config: config)
        let loadedBytes = ProcessMemory.residentBytes() - start
        let job = try joinJob()
        let threads = threadsPerRank(configured: config.training.threads, job: job)
        ThreadPool.configure(threads: threads)
        let task = try TranslationTask(config: config, train: data.train, validation: data.validation,
                                       tokenizer: data.tokenizer, begin: data.begin, end: data.end)
        let trainer = try Trainer(config: config, task: task, communicator: job, run: nil, progress: Progress(enabled: false))
        let bench = TranslationBenchmark(trainer: trainer, task: task, options: options, counter: Self.counter,
                                         start: start, loaded: loadedBytes)
        let kernels = BLASStartup.BenchReport(job)
        guard job.isCoordinator else { job.finish(); return }
        defer { job.finish() }
        if json {
            let fields: [String: Any] = [
                "ranks": job.worldSize, "threads": threads, "target_tokens_per_s": bench.targetTokensPerSecond.rounded(),
                "step_ms": bench.steps.total / Double(steps) * 1e3, "first_step": bench.firstStep, "steps_per_epoch": task.stepsPerEpoch,
                "allocations_in_measured_steps": bench.steps.allocations, "onednn_allocations_in_measured_steps": bench.steps.oneDNNAllocations,
                "parameters": task.transformer.layout.count]
            try printJSON(fields.merging(kernels.fields) { a, _ in a }.merging(bench.memory.fields) { a, _ in a }
                .merging(GemmReport.fields(trainer.gemm)) { a, _ in a })
            return
        }
        print(bench, kernels: kernels, threads: threads)
    }

    func benchMaskedLanguageModel(config loaded: LoomConfig, start: Int) throws {
        let job = try joinJob()
        let config = Benchmark.config(loaded, ranks: job.worldSize, batchPerRank: batchPerRank)
        let data = try PreparedData(config: config)
        let threads = threadsPerRank(configured: config.training.threads, job: job)
        ThreadPool.configure(threads: threads)
        let task = try MaskedLanguageModelTask(config: config, data: data, world: job.worldSize)
        let trainer = try Trainer(config: config, task: task, communicator: job, run: nil, progress: Progress(enabled: false))
        let bench = MaskedLanguageModelBenchmark(trainer: trainer, task: task, data: data, options: options, counter: Self.counter,
                                                 start: start)
        let kernels = BLASStartup.BenchReport(job)
        guard job.isCoordinator else { job.finish(); return }
        defer { job.finish() }
        let c = task.bert.config
        if json {
            let fields: [String: Any] = [
                "ranks": job.worldSize, "threads": threads, "tokens_per_s": bench.tokensPerSecond.rounded(),
                "step_ms": bench.steps.median * 1e3, "allocations_in_measured_steps": bench.steps.allocations,
                "onednn_allocations_in_measured_steps": bench.steps.oneDNNAllocations, "parameters": task.bert.layout.count]
            try printJSON(fields.merging(kernels.fields) { a, _ in a }.merging(bench.memory.fields) { a, _ in a }
                .merging(GemmReport.fields(trainer.gemm)) { a, _ in a }
                .merging(profile ? ["profile_ms_per_step": profileFields()] : [:]) { a, _ in a })
            return
        }
        Swift.print("loom bench \(self.config): bert \(c.layers) layers, heads \(c.heads), width \(c.width), ffn \(c.ffnWidth), "
              + "vocabulary \(c.vocabularySize), \(config.training.batchSize) sequences of \(c.contextLength) "
              + "(micro \(config.training.microBatchSize)), \(job.worldSize) rank(s) × \(threads) thread(s)")
        kernels.print()
        GemmReport.print(trainer.gemm)
        Swift.print(String(format: "  step time        %.2f ms (median of %d, after %d warm-up)", bench.steps.median * 1e3, steps, warmup))
        Swift.print(String(format: "  throughput       %.0f tokens/s (every position; %.0f %% of them predicted)",
                           bench.tokensPerSecond, 100 * Double(task.globalTokens(step: warmup)) / Double(bench.tokensPerStep)))
        bench.memory.print()
        Swift.print(allocationLine(bench.steps, ranks: job.worldSize))
        if profile { printProfile(total: bench.steps.total) }
    }

    /// The encoder-decoder benchmark's table.
    func print(_ bench: TranslationBenchmark, kernels: BLASStartup.BenchReport, threads: Int) {
        let c = bench.task.transformer.config, config = bench.trainer.config, job = bench.trainer.communicator
        Swift.print("loom bench \(self.config): transformer \(c.encoderLayers)+\(c.decoderLayers) layers, heads \(c.heads), width \(c.width), "
              + "ffn \(c.ffnWidth), vocabulary \(c.vocabularySize), batches of ≤ \(config.training.batchSize) pairs / "
              + "\(config.training.maxTokens) tokens (micro \(config.training.microBatchSize)), \(job.worldSize) rank(s) × \(threads) thread(s)")
        kernels.print()
        GemmReport.print(bench.trainer.gemm)
        Swift.print(String(format: "  steps            %d..%d (an epoch is %d steps: the window crosses its boundary), after %d warm-up",
                           bench.firstStep, bench.firstStep + steps - 1, bench.task.stepsPerEpoch, warmup))
        Swift.print(String(format: "  step time        %.2f ms (mean; batches differ in size)", bench.steps.total / Double(steps) * 1e3))
        Swift.print(String(format: "  throughput       %.0f target tokens/s (%d target tokens in %.2f s)",
                           bench.targetTokensPerSecond, bench.targetTokens, bench.steps.total))
        bench.memory.print()
        Swift.print(allocationLine(bench.steps, ranks: job.worldSize))
        if profile { printProfile(total: bench.steps.total) }
    }
}

/// What `kernels.gemm` chose per product shape (after the first warm-up step planned it).
enum GemmReport {
    static func print(_ plan: GemmPlan?, label: String = "") {
        guard let plan else {
            Swift.print("  \(label)kernels.gemm loom: every product on " + GemmReport.defaultEngineName)
            return
        }
        Swift.print("  \(label)\(plan.summary)")
        Swift.print("    product shape (m×n×k, form, β, ld A/B/C)            calls/step  OpenBLAS µs  oneDNN µs    Loom µs  engine")
        for c in plan.choices {
            let us = { (t: Double?) in t.map { String(format: "%11.1f", $0 * 1e6) } ?? "          –" }
            Swift.print("    " + c.shape.description.padding(toLength: 52, withPad: " ", startingAt: 0)
                        + String(format: "%10d", c.calls) + "  " + us(c.openblasSeconds) + "  " + us(c.onednnSeconds).dropFirst(2)
                        + us(c.loomSeconds) + "  " + c.engine.name + (c.implementation.isEmpty ? "" : " \(c.implementation)"))
        }
    }

    /// How a run without a plan names its engine: Loom's kernel, or OpenBLAS on a CPU without AVX-512.
    static var defaultEngineName: String {
        GemmPlan.defaultEngine == .loom ? "Loom \(F32Gemm.implementation)" : "OpenBLAS (no AVX-512 for Loom's kernel)"
    }

    /// `gemm`: the selection and, per shape, calls per step, both engines' times and the choice.
    static func fields(_ plan: GemmPlan?) -> [String: Any] {
        guard let plan else {
            return ["gemm": ["selection": GemmSelection.loom.rawValue, "fp32_fallback": GemmPlan.defaultEngine.rawValue,
                             "shapes": [Any]()] as [String: Any]]
        }
        let onednn = plan.split(on: .onednn), loom = plan.split(on: .loom)
        return ["gemm": [
            "selection": plan.selection.rawValue, "onednn_isa": OneDNN.isa, "onednn_shapes": onednn.shapes,
            "onednn_flop_share": onednn.share, "loom_shapes": loom.shapes, "loom_flop_share": loom.share,
            "fp32_fallback": plan.fp32Fallback.rawValue, "planning_s": plan.planningSeconds,
            "bf16_loom_shapes": plan.bf16Split.loomShapes, "bf16_loom_flop_share": plan.bf16Split.loomShare,
            "shapes": plan.choices.map { c -> [String: Any] in
                let s = c.shape
                return ["shape": s.description, "m": s.m, "n": s.n, "k": s.k, "trans_a": s.transA, "trans_b": s.transB,
                        "lda": s.lda, "ldb": s.ldb, "ldc": s.ldc, "alpha": Double(s.alpha), "beta": Double(s.beta), "bf16": s.bf16,
                        "calls": c.calls, "engine": c.engine.rawValue, "implementation": c.implementation,
                        "openblas_us": c.openblasSeconds.map { $0 * 1e6 } ?? NSNull(),
                        "onednn_us": c.onednnSeconds.map { $0 * 1e6 } ?? NSNull(),
                        "loom_us": c.loomSeconds.map { $0 * 1e6 } ?? NSNull()]
            }] as [String: Any]]
    }
}
