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

    func run() throws {
        try reportingErrors {
            guard steps > 0, warmup >= 1 else { throw ValidationError("--steps must be > 0 and --warmup ≥ 1") }
            var config = try LoomConfig.load(path: config, overrides: overrides)
            let data: PreparedData
            if config.model.vocabularySize > 0 && !FileManager.default.fileExists(atPath: config.data.corpus) {
                data = PreparedData.synthetic(vocabularySize: config.model.vocabularySize, tokens: 1 << 20, seed: 7)
            } else {
                data = try PreparedData(config: config)
            }
            config.evaluation.interval = 0
            // What the process holds before the model exists: runtime, libraries, the corpus.
            let baseline = ProcessMemory.residentBytes()
            let threads = config.training.threads > 0 ? config.training.threads : ProcessInfo.processInfo.activeProcessorCount
            ThreadPool.configure(threads: threads)
            let trainer = try Trainer(config: config, data: data, communicator: SingleProcessCommunicator(),
                                      run: nil, progress: Progress(enabled: false))
            let model = trainer.model, c = model.config
            let tokensPerStep = config.training.batchSize * c.contextLength

            for s in 0..<warmup { _ = trainer.trainStep(s, learningRate: 1e-4) }
            var times: [Double] = []
            times.reserveCapacity(steps)
            Profiler.reset()
            Profiler.enabled = profile
            let mallocsBefore = loom_malloc_count()
            for s in 0..<steps {
                let t0 = monotonicSeconds()
                _ = trainer.trainStep(warmup + s, learningRate: 1e-4)
                times.append(monotonicSeconds() - t0)
            }
            let allocations = loom_malloc_count() - mallocsBefore
            Profiler.enabled = false
            let median = times.sorted()[times.count / 2]
            let tokensPerSecond = Double(tokensPerStep) / median
            let gflops = tokensPerSecond * c.flopsPerToken / 1e9
            let peak = GemmPeak.measure(config: c, rows: config.training.microBatchSize * c.contextLength)

            let parameterBytes = model.parameters.bytes
            let plan = [("parameters", parameterBytes), ("gradients", model.gradients.bytes),
                        ("optimizer state (AdamW m, v)", trainer.optimizer.m.bytes + trainer.optimizer.v.bytes),
                        ("activations + backward scratch", model.activationBytes),
                        ("process before the model (runtime, data)", baseline)]
            let planned = plan.reduce(0) { $0 + $1.1 }
            let rss = ProcessMemory.peakResidentBytes()

            if json {
                let fields: [String: Any] = [
                    "tokens_per_s": tokensPerSecond.rounded(), "step_ms": median * 1e3, "gflops": gflops,
                    "sgemm_peak_gflops": peak.gflops, "ratio": gflops / peak.gflops, "threads": threads,
                    "flops_per_token": c.flopsPerToken, "planned_bytes": planned, "peak_rss_bytes": rss,
                    "allocations_in_measured_steps": allocations, "parameters": model.layout.count]
                let out = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
                print(String(decoding: out, as: UTF8.self))
                return
            }
            print("loom bench \(self.config): layers \(c.layers), heads \(c.heads), width \(c.width), context \(c.contextLength), "
                  + "vocabulary \(c.vocabularySize), batch \(config.training.batchSize) (micro \(config.training.microBatchSize)), \(threads) thread(s)")
            print(String(format: "  step time        %.2f ms (median of %d, after %d warm-up)", median * 1e3, steps, warmup))
            print(String(format: "  throughput       %.0f tokens/s", tokensPerSecond))
            print(String(format: "  FLOPs/token      %.4g = 6·N + 12·L·T·C (N = %d parameters without the position table)",
                         c.flopsPerToken, c.nonEmbeddingPositionParameters))
            print(String(format: "  achieved         %.1f GFLOP/s", gflops))
            print(String(format: "  sgemm at model shapes  %.1f GFLOP/s (%@)", peak.gflops, peak.detail))
            print(String(format: "  ratio            %.0f %% of the measured sgemm rate", 100 * gflops / peak.gflops))
            print("  memory plan")
            for (name, bytes) in plan { print("    " + name.padding(toLength: 42, withPad: " ", startingAt: 0) + String(format: "%8.1f MiB", Double(bytes) / 1048576)) }
            print("    " + "total".padding(toLength: 42, withPad: " ", startingAt: 0) + String(format: "%8.1f MiB", Double(planned) / 1048576))
            print(String(format: "  peak RSS         %.1f MiB (%.2f× the plan)", Double(rss) / 1048576, Double(rss) / Double(planned)))
            print("  heap allocations during the \(steps) measured steps: \(allocations)")
            if profile {
                let total = times.reduce(0, +)
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
        }
    }
}

/// The sgemm rate this machine reaches at one training step's matrix shapes (every linear
/// layer's forward and both backward products, and the LM head), through the same wrapper.
enum GemmPeak {
    static func measure(config c: GPTConfig, rows N: Int) -> (gflops: Double, detail: String) {
        let C = c.width, V = c.vocabularySize
        // (transA, transB, m, n, k, repeats per step)
        var shapes: [(Bool, Bool, Int, Int, Int, Int)] = []
        for (i, o) in [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)] {
            shapes.append((false, false, N, o, i, c.layers))   // forward
            shapes.append((false, true, N, i, o, c.layers))    // dinp
            shapes.append((true, false, i, o, N, c.layers))    // dweight
        }
        shapes.append((false, true, N, V, C, 1)); shapes.append((false, false, N, C, V, 1)); shapes.append((true, false, V, C, N, 1))
        let size = max(N, V, 4 * C) * max(4 * C, V, N)
        let a = FlatBuffer(count: size), b = FlatBuffer(count: size), out = FlatBuffer(count: size)
        for i in 0..<size { a.pointer[i] = Float(i % 7) * 0.01; b.pointer[i] = Float(i % 5) * 0.01 }
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

enum ProcessMemory {
    /// VmRSS from /proc/self/status (current resident set), in bytes.
    static func residentBytes() -> Int { field("VmRSS:") }
    /// VmHWM from /proc/self/status (peak resident set), in bytes.
    static func peakResidentBytes() -> Int { field("VmHWM:") }

    static func field(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
