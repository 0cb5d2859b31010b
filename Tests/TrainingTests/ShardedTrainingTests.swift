// ZeRO-1 in process: runs of ranks as threads (ThreadRanks) with `distributed.shard_optimizer`
// against the same runs unsharded — the losses of every step, the gathered AdamW moments of a
// checkpoint, resumes between sharded and unsharded runs on other rank counts — and the slicing
// rule and the sliced optimizer on their own.
import Testing
import Foundation
import Distributed
import Models
import Training
import TestSupport

/// Every step's training loss of the run in `run` (metrics.jsonl at logging.interval 1).
func stepLosses(_ run: String) throws -> [Int: Double] {
    let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
    var losses: [Int: Double] = [:]
    for line in text.split(separator: "\n") {
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let step = object["step"] as? Int, let loss = object["train_loss"] as? Double, object["val_loss"] == nil else { continue }
        losses[step] = loss
    }
    return losses
}

/// The largest |a − b| / |b| over the steps both hold (and that they hold the same steps).
func largestRelativeDifference(_ a: [Int: Double], _ b: [Int: Double]) -> Double {
    #expect(Set(a.keys) == Set(b.keys), "the runs logged different steps")
    return a.keys.map { abs(a[$0]! - b[$0]!) / abs(b[$0]!) }.max() ?? .infinity
}

/// Trains `config` on `world` ranks as threads into `run`; every rank's summary.
func trainOnThreadRanks(_ world: Int, _ config: LoomConfig, _ run: String, resume: ResumeRequest? = nil,
                        stopAfter: Int? = nil) throws -> [TrainingSummary] {
    nonisolated(unsafe) let c = config
    return try ThreadRanks.run(world, timeoutSeconds: 120) { job in
        try TrainingRun(config: c, communicator: job, directory: run, resume: resume, progress: Progress(mode: .off))
            .train(stopAfter: stopAfter)
    }.map { try $0.get() }
}

@Suite(.serialized) struct ShardedTrainingTests {
    /// The tiny GPT at a batch of 8 (one example per micro-batch, so 2 and 4 ranks divide it),
    /// clipping at 0.5 (active in the early steps: the norm over every slice matters), a loss logged
    /// at every step.
    func config(_ dir: String, steps: Int, sharded: Bool, _ more: [String] = []) throws -> LoomConfig {
        try tinyRunConfig(dir, ["training.steps=\(steps)", "training.batch_size=8", "training.micro_batch_size=1",
                                "optimizer.gradient_clip=0.5", "logging.interval=1", "evaluation.interval=0",
                                "evaluation.at_end=false", "checkpoint.interval=0",
                                "distributed.shard_optimizer=\(sharded)"] + more)
    }

    func train(_ world: Int, _ config: LoomConfig, _ run: String, resume: ResumeRequest? = nil,
               stopAfter: Int? = nil) throws -> [TrainingSummary] {
        try trainOnThreadRanks(world, config, run, resume: resume, stopAfter: stopAfter)
    }

    @Test(arguments: [2, 4]) func shardedLossesEqualUnshardedOverFiftySteps(ranks: Int) throws {
        let dir = try trainingScratch()
        let plain = try train(ranks, try config(dir, steps: 50, sharded: false), dir + "/plain")
        let sharded = try train(ranks, try config(dir, steps: 50, sharded: true), dir + "/sharded")
        let difference = largestRelativeDifference(try stepLosses(dir + "/sharded"), try stepLosses(dir + "/plain"))
        #expect(difference <= 1e-5, "sharded vs unsharded at \(ranks) ranks: largest relative loss difference \(difference)")
        #expect(try stepLosses(dir + "/plain").count == 50)
        // Every rank ends with the same parameters (the all-gather reached everyone).
        #expect(Set(sharded.map(\.parameterHash)).count == 1 && sharded[0].parameterHash != nil)
        #expect(plain[0].steps == 50 && sharded[0].steps == 50)
    }

    @Test func aShardedCheckpointHoldsTheWholeOptimizerState() throws {
        let dir = try trainingScratch()
        _ = try train(2, try config(dir, steps: 12, sharded: false), dir + "/plain", stopAfter: 7)
        _ = try train(4, try config(dir, steps: 12, sharded: true), dir + "/sharded", stopAfter: 7)
        let config = try self.config(dir, steps: 12, sharded: false)
        let layout = try LanguageModelTask(config: config, data: try PreparedData(config: config), world: 1).model.layout
        func moments(_ run: String) throws -> (FlatBuffer, FlatBuffer, [String: String]) {
            let m = FlatBuffer(count: layout.count), v = FlatBuffer(count: layout.count)
            let metadata = try Safetensors.read(run + "/checkpoints/step-00000007/optimizer.safetensors", layout: layout,
                                                buffers: [("exp_avg.", m), ("exp_avg_sq.", v)])
            return (m, v, metadata)
        }
        let (pm, pv, pmeta) = try moments(dir + "/plain"), (sm, sv, smeta) = try moments(dir + "/sharded")
        #expect(pmeta["step"] == "7" && smeta["step"] == "7")
        var largestM = 0.0, largestV = 0.0, scaleM = 0.0, scaleV = 0.0
        for i in 0..<layout.count {
            largestM = max(largestM, Double(abs(pm.pointer[i] - sm.pointer[i]))); scaleM = max(scaleM, Double(abs(pm.pointer[i])))
            largestV = max(largestV, Double(abs(pv.pointer[i] - sv.pointer[i]))); scaleV = max(scaleV, Double(abs(pv.pointer[i])))
        }
        #expect(scaleM > 0 && scaleV > 0, "the moments are all zero")
        #expect(largestM <= 1e-4 * scaleM && largestV <= 1e-4 * scaleV,
                "moments differ: m by \(largestM) (of \(scaleM)), v by \(largestV) (of \(scaleV))")
        // The last rank's slice is in the file too (not left at zero).
        let slices = ParameterSlices(count: layout.count, world: 4)
        let last = slices.range(3)
        #expect((last.lowerBound..<last.upperBound).contains { sv.pointer[$0] != 0 })
    }

    @Test func resumesBetweenShardedAndUnshardedContinueTheCurve() throws {
        let dir = try trainingScratch()
        _ = try train(2, try config(dir, steps: 15, sharded: false), dir + "/reference")
        let reference = try stepLosses(dir + "/reference")
        // Sharded on 2 ranks to step 5, unsharded on 1 to step 10, sharded on 4 to the end.
        _ = try train(2, try config(dir, steps: 15, sharded: true), dir + "/chain", stopAfter: 5)
        let middle = try train(1, try config(dir, steps: 15, sharded: false), dir + "/chain", resume: .latest, stopAfter: 10)
        #expect(middle[0].firstStep == 5 && middle[0].steps == 10)
        let last = try train(4, try config(dir, steps: 15, sharded: true), dir + "/chain", resume: .latest)
        #expect(last[0].firstStep == 10 && last[0].steps == 15 && last[0].stopReason == .completed)
        let chain = try stepLosses(dir + "/chain")
        let difference = largestRelativeDifference(chain, reference)
        #expect(difference <= 1e-5, "the resumed chain left the reference curve: largest relative difference \(difference)")
    }

    @Test func theKeyDefaultsToUnshardedAndNamesItselfWhenMistyped() throws {
        let dir = try trainingScratch()
        #expect(try tinyRunConfig(dir).distributed.shardOptimizer == false)
        #expect(try tinyRunConfig(dir, ["distributed.shard_optimizer=true"]).distributed.shardOptimizer == true)
        do {
            _ = try tinyRunConfig(dir, ["distributed.shard_optimizer=maybe"])
            Issue.record("distributed.shard_optimizer=maybe was accepted")
        } catch {
            #expect("\(error)".contains("distributed.shard_optimizer"), "\(error)")
        }
        // One rank: nothing is sharded (the optimizer holds every parameter's moments).
        let config = try tinyRunConfig(dir, ["distributed.shard_optimizer=true"])
        let trainer = try Trainer(config: config, data: try PreparedData(config: config), communicator: SingleProcessCommunicator(),
                                  run: nil, progress: Progress(mode: .off))
        #expect(trainer.slices == nil && !trainer.optimizer.isSharded && trainer.optimizer.m.count == trainer.model.layout.count)
    }

    @Test func slicesAreAlignedAndTileTheBuffer() {
        for (count, world) in [(1000, 3), (16, 4), (5, 4), (124_475_904, 4), (0, 2)] {
            let s = ParameterSlices(count: count, world: world)
            #expect(s.counts.reduce(0, +) == count)
            #expect(s.sliceSize % ParameterSlices.alignment == 0 && s.sliceSize * world >= count)
            for r in 0..<world {
                #expect(s.range(r).count == s.counts[r])
                if r > 0 { #expect(s.range(r).lowerBound == s.range(r - 1).upperBound) }
                #expect(s.range(r).lowerBound % ParameterSlices.alignment == 0 || s.range(r).isEmpty)
            }
            // A bucket's parts fall into the slices in rank order and add up to the bucket.
            let hi = min(count, 2 * count / 3 + 1), bucket = min(count / 3, hi)..<hi
            #expect(s.counts(of: bucket).reduce(0, +) == bucket.count)
        }
    }

    @Test func aSlicedOptimizerUpdatesItsSliceWithTheWholeOnesBits() {
        let config = GPTConfig(vocabularySize: 11, contextLength: 8, layers: 1, heads: 2, width: 16)
        let layout = GPT.layout(config)
        let count = layout.count
        let parameters = FlatBuffer(count: count), gradients = FlatBuffer(count: count)
        for i in 0..<count { parameters.pointer[i] = Float(i % 13) / 13 - 0.5; gradients.pointer[i] = Float(i % 7) / 7 - 0.4 }
        let whole = AdamW(layout: layout, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        let reference = FlatBuffer(count: count)
        reference.copy(from: parameters)
        let slices = ParameterSlices(count: count, world: 3)
        let parts = (0..<3).map { AdamW(layout: layout, slice: slices.range($0), beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1) }
        for _ in 0..<3 {
            whole.step(parameters: reference, gradients: gradients, learningRate: 1e-2, gradientScale: 0.7)
            for part in parts {
                part.step(parameters: parameters, sliceGradients: gradients.pointer + part.range.lowerBound, learningRate: 1e-2,
                          gradientScale: 0.7)
            }
        }
        #expect(parts.map(\.m.count) == slices.counts)
        #expect((0..<count).allSatisfy { parameters.pointer[$0] == reference.pointer[$0] })
        for part in parts {
            #expect(part.isSharded)
            #expect((0..<part.range.count).allSatisfy { part.m.pointer[$0] == whole.m.pointer[part.range.lowerBound + $0] })
            #expect((0..<part.range.count).allSatisfy { part.v.pointer[$0] == whole.v.pointer[part.range.lowerBound + $0] })
        }
    }
}
