// ZeRO-1 end to end: the `loom` binary under launch/mpirun with `distributed.shard_optimizer` —
// the same losses as unsharded at 2 and 4 ranks (MPI's persistent reduce-scatter and in-place
// all-gather), a sharded checkpoint resumed unsharded on another rank count, and bench's memory
// plan dividing the AdamW moments by the ranks.
import Testing
import Foundation

@Suite(.serialized) struct ShardedOptimizerTests {
    /// The MPI tests' tiny GPT for 50 steps, micro-batches of 2 (2 and 4 ranks divide the batch of 8).
    let common = ["--set", "training.steps=50", "--set", "training.micro_batch_size=2", "--set", "optimizer.gradient_clip=0.5",
                  "--json"]

    func largestRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
        #expect(a.count == b.count, "the runs logged \(a.count) and \(b.count) steps")
        return zip(a, b).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
    }

    @Test(arguments: [2, 4]) func shardedLossesEqualUnshardedOverFiftySteps(ranks: Int) throws {
        let dir = try mpiScratch()
        let plain = try mpirun(ranks, ["mpi.yaml", "--run-dir", "plain"] + common, in: dir)
        let sharded = try mpirun(ranks, ["mpi.yaml", "--run-dir", "sharded", "--set", "distributed.shard_optimizer=true"] + common, in: dir)
        #expect(plain.status == 0 && sharded.status == 0, "\(plain.stderr)\(sharded.stderr)")
        let a = try trainLosses(dir + "/plain"), b = try trainLosses(dir + "/sharded")
        #expect(a.count == 50)
        let difference = largestRelativeDifference(b, a)
        #expect(difference <= 1e-5, "sharded vs unsharded at \(ranks) ranks: largest relative loss difference \(difference)")
        // The end-of-run check found every rank holding the same parameters.
        #expect((trainSummary(sharded.stdout)["parameter_sha256"] as? String ?? "").count == 64, "\(sharded.stdout)")
    }

    @Test func aShardedCheckpointResumesUnshardedOnAnotherRankCount() throws {
        let dir = try mpiScratch()
        let reference = try mpirun(2, ["mpi.yaml", "--run-dir", "reference"] + common, in: dir)
        let first = try mpirun(4, ["mpi.yaml", "--run-dir", "chain", "--stop-after", "20", "--set", "distributed.shard_optimizer=true"]
                                   + common, in: dir)
        #expect(reference.status == 0 && first.status == 0, "\(reference.stderr)\(first.stderr)")
        let rest = try mpirun(2, ["mpi.yaml", "--run-dir", "chain", "--resume", "latest"] + common, in: dir)
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(trainSummary(rest.stdout)["first_step"] as? Int == 20, "\(rest.stdout)")
        let difference = largestRelativeDifference(try trainLosses(dir + "/chain"), try trainLosses(dir + "/reference"))
        #expect(difference <= 1e-5, "sharded on 4 ranks, then unsharded on 2: largest relative difference \(difference)")
    }

    @Test func benchsMemoryPlanDividesTheMomentsByTheRanks() throws {
        let dir = try mpiScratch()
        func moments(_ ranks: Int, _ sharded: Bool) throws -> (Int, [String: Int]) {
            let run = try mpirun(ranks, ["bench", "mpi.yaml", "--steps", "2", "--warmup", "1", "--json", "--batch-per-rank",
                                         "--set", "distributed.shard_optimizer=\(sharded)"], in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            let line = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
            let fields = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
            let plan = fields["memory_plan"] as? [String: Int] ?? [:]
            let row = plan.first { $0.key.hasPrefix("AdamW moments") }?.value ?? -1
            return (row, plan)
        }
        let (whole, plan) = try moments(2, false)
        let (half, shardedPlan) = try moments(2, true)
        let parameters = plan["parameters"] ?? -1
        #expect(whole == 2 * parameters, "\(plan)")
        // Rank 0's slice: half the parameters, rounded up to 16 floats.
        #expect(half >= parameters && half <= parameters + 2 * 64, "\(shardedPlan)")
        #expect(shardedPlan["gradient slice (reduce-scatter target)"] == half / 2, "\(shardedPlan)")
    }
}
