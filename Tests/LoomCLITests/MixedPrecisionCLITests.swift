// bf16 mixed precision through the `loom` binary: 2 ranks match 1 rank, a bf16 run resumes bit for
// bit, a bf16 checkpoint continues in fp32, the encoder-decoder trains in bf16, and a bad precision
// name is refused with the key named.
import Testing
import Foundation

@Suite(.serialized) struct MixedPrecisionCLITests {
    static let bf16 = ["--set", "training.precision=bf16"]

    /// At mpi.yaml's learning rate of 1e-2 the bf16 rounding of the weights magnifies the fp32
    /// differences of summing gradients across ranks instead of micro-steps (~4e-8 in fp32) to
    /// ~1.5e-4 within 20 steps; at 3e-3 they stay ~3e-5.
    @Test func twoRanksInBF16MatchOneRankInBF16() throws {
        let dir = try mpiScratch()
        let steps = ["--set", "training.steps=20", "--set", "optimizer.learning_rate=3.0e-3"]
        let two = try mpirun(2, ["mpi.yaml", "--run-dir", "two", "--quiet"] + Self.bf16 + steps, in: dir)
        let one = try loom(["train", "mpi.yaml", "--run-dir", "one", "--quiet"] + Self.bf16 + steps, in: dir)
        let fp32 = try loom(["train", "mpi.yaml", "--run-dir", "fp32", "--quiet"] + steps, in: dir)
        #expect(two.status == 0 && one.status == 0 && fp32.status == 0, "\(two.stderr)\(one.stderr)\(fp32.stderr)")
        let a = try trainLosses(dir + "/two"), b = try trainLosses(dir + "/one"), c = try trainLosses(dir + "/fp32")
        #expect(a.count == 20 && b.count == 20)
        expectCloseCurves(a, b, "bf16: 2 ranks vs 1 rank")
        #expect(b != c, "the bf16 run must differ from fp32")
        for (x, y) in zip(b, c) { #expect(abs(x - y) <= 0.02 * y, "bf16 \(x) vs fp32 \(y)") }
    }

    @Test func bf16ResumesBitIdenticallyAndItsCheckpointContinuesInFP32() throws {
        let dir = try checkpointScratch()
        let full = try loom(["train", "ck.yaml", "--run-dir", "full", "--quiet"] + Self.bf16, in: dir)
        let first = try loom(["train", "ck.yaml", "--run-dir", "half", "--quiet", "--stop-after", "15"] + Self.bf16, in: dir)
        let second = try loom(["train", "ck.yaml", "--run-dir", "half", "--quiet", "--resume", "latest"] + Self.bf16, in: dir)
        #expect(full.status == 0 && first.status == 0 && second.status == 0, "\(full.stderr)\(first.stderr)\(second.stderr)")
        #expect(try sha256(dir + "/half/model.safetensors") == sha256(dir + "/full/model.safetensors"))
        #expect(try trainLosses(dir + "/half") == trainLosses(dir + "/full"))

        // The same bf16 checkpoint, resumed in fp32: it loads, and training goes on from there.
        let start = try loom(["train", "ck.yaml", "--run-dir", "switch", "--quiet", "--stop-after", "15"] + Self.bf16, in: dir)
        let rest = try loom(["train", "ck.yaml", "--run-dir", "switch", "--quiet", "--resume", "latest",
                             "--set", "training.precision=fp32"], in: dir)
        #expect(start.status == 0 && rest.status == 0, "\(start.stderr)\(rest.stderr)")
        let switched = try trainLosses(dir + "/switch"), reference = try trainLosses(dir + "/full")
        #expect(switched.count == reference.count)
        #expect(Array(switched.prefix(15)) == Array(reference.prefix(15)))
        for (i, (x, y)) in zip(switched, reference).enumerated().dropFirst(15) {
            #expect(abs(x - y) <= 0.02 * y, "step \(i + 1): fp32 after bf16 \(x) vs bf16 \(y)")
        }
        #expect(switched.suffix(15) != reference.suffix(15), "the resumed steps ran in fp32")
    }

    /// The encoder-decoder's batches vary in length, so bf16 products meet new shapes for many
    /// steps (each run once on its own primitive, then planned between steps): it must train as fp32 does.
    @Test func theEncoderDecoderTrainsInBF16() throws {
        let dir = try parallelScratch()
        let bf16 = try loom(["train", "mt.yaml", "--run-dir", "bf16", "--quiet"] + Self.bf16, in: dir)
        let fp32 = try loom(["train", "mt.yaml", "--run-dir", "fp32", "--quiet"], in: dir)
        #expect(bf16.status == 0 && fp32.status == 0, "\(bf16.stderr)\(fp32.stderr)")
        let a = try trainLosses(dir + "/bf16"), b = try trainLosses(dir + "/fp32")
        #expect(a.count == 20 && a != b)
        for (i, (x, y)) in zip(a, b).enumerated() { #expect(abs(x - y) <= 0.02 * y, "step \(i + 1): bf16 \(x) vs fp32 \(y)") }
        #expect(a.last! < a.first! - 0.5, "the loss did not fall: \(a.first!) → \(a.last!)")
    }

    @Test func anUnknownPrecisionNamesTheKeyAndTheChoices() throws {
        let dir = try mpiScratch()
        let r = try loom(["train", "mpi.yaml", "--set", "training.precision=fp16"], in: dir)
        #expect(r.status != 0)
        #expect(r.stderr.contains("training.precision") && r.stderr.contains("fp32 or bf16") && r.stderr.contains("fp16"),
                "\(r.stderr)")
    }
}
