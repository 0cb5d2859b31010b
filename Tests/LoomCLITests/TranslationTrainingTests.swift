// The encoder-decoder through the one trainer: BPE tokenizer → parallel shards → `loom train` with
// model.kind transformer, and 2 ranks matching 1 rank (as for the GPT).
import Testing
import Foundation

/// A tiny parallel corpus: the target is the source's words reversed.
func parallelScratch() throws -> String {
    let dir = try scratchDirectory()
    let words = ["red", "blue", "cat", "dog", "runs", "sleeps", "a", "the", "big", "small"]
    var x: UInt64 = 99
    func sentence() -> [String] {
        x = x &* 6364136223846793005 &+ 1442695040888963407
        let n = 3 + Int((x >> 40) % 5)
        return (0..<n).map { i in words[Int((x >> UInt64(3 * i + 7)) % UInt64(words.count))] }
    }
    for (name, count) in [("train", 200), ("val", 40)] {
        var source = "", target = ""
        for _ in 0..<count {
            let s = sentence()
            source += s.joined(separator: " ") + "\n"; target += s.reversed().joined(separator: " ") + "\n"
        }
        try source.write(toFile: "\(dir)/\(name).src", atomically: true, encoding: .utf8)
        try target.write(toFile: "\(dir)/\(name).tgt", atomically: true, encoding: .utf8)
    }
    let steps: [[String]] = [
        ["tokenizer", "train", "--vocab-size", "300", "--special", "<|endoftext|>", "--out", "tok.json", "train.src", "train.tgt"],
        ["tokenize", "--tokenizer", "tok.json", "--source", "train.src", "--target", "train.tgt", "--out", "train"],
        ["tokenize", "--tokenizer", "tok.json", "--source", "val.src", "--target", "val.tgt", "--out", "val"],
    ]
    for args in steps {
        let r = try loom(args, in: dir)
        #expect(r.status == 0, "\(args): \(r.stderr)")
    }
    try """
    model: {kind: transformer, encoder_layers: 1, layers: 1, heads: 2, width: 32, ffn_width: 64, context_length: 32, dropout: 0.1}
    data: {shards: train, validation_shards: val}
    training: {steps: 20, batch_size: 32, max_tokens: 600, micro_batch_size: 16, label_smoothing: 0.1, seed: 3, threads: 1}
    optimizer: {learning_rate: 2.0, beta1: 0.9, beta2: 0.98, epsilon: 1.0e-9, weight_decay: 0}
    schedule: {kind: inverse_sqrt, warmup_steps: 10, minimum_learning_rate: 0}
    evaluation: {interval: 10}
    logging: {interval: 1}
    checkpoint: {interval: 10}
    """.write(toFile: dir + "/mt.yaml", atomically: true, encoding: .utf8)
    return dir
}

@Suite(.serialized) struct TranslationTrainingTests {
    /// `loom bench` on an encoder-decoder config times real batches across an epoch boundary
    /// (where the batch order is reshuffled) and counts heap allocations there: none.
    @Test func benchCrossesAnEpochWithoutAllocating() throws {
        let dir = try parallelScratch()
        let r = try loom(["bench", "mt.yaml", "--steps", "6", "--warmup", "1", "--profile"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("the window crosses its boundary"), "\(r.stdout)")
        #expect(r.stdout.contains("heap allocations during the 6 measured steps: 0"), "\(r.stdout)")
        #expect(r.stdout.contains("target tokens/s") && r.stdout.contains("linear (sgemm)"), "\(r.stdout)")
    }

    @Test func twoRanksMatchOneRankAndResumeIsExact() throws {
        let dir = try parallelScratch()
        let one = try loom(["train", "mt.yaml", "--run-dir", "one"], in: dir)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("val loss") && one.stdout.contains("validation pairs"), "\(one.stdout)")
        let whole = try loom(["train", "mt.yaml", "--run-dir", "whole", "--quiet", "--set", "training.micro_batch_size=32"], in: dir)
        let two = try mpirun(2, ["mt.yaml", "--run-dir", "two", "--quiet"], in: dir)
        #expect(whole.status == 0 && two.status == 0, "\(whole.stderr)\(two.stderr)")
        #expect(two.stdout.contains("replicas: 2 ranks hold bit-identical parameters"))
        let a = try trainLosses(dir + "/one"), b = try trainLosses(dir + "/two"), c = try trainLosses(dir + "/whole")
        #expect(a.count == 20)
        expectCloseCurves(b, a, "2 ranks vs 1 rank")
        expectCloseCurves(c, a, "one micro-batch vs two")
        #expect(a.last! < a.first! - 0.5, "the loss did not fall: \(a.first!) → \(a.last!)")
        // The run directory (and any checkpoint of it) translates: config and tokenizer come from the run,
        // also when named relative to the current directory ("." and a bare checkpoint name).
        for (model, cwd) in [("one", dir), ("one/checkpoints/step-00000020", dir), (".", dir + "/one"),
                             ("step-00000020", dir + "/one/checkpoints")] {
            let translate = Process()
            translate.executableURL = URL(fileURLWithPath: loomBinary())
            translate.arguments = ["translate", model, "--beam", "2"]
            translate.currentDirectoryURL = URL(fileURLWithPath: cwd)
            translate.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: dir + "/val.src"))
            let out = Pipe(), err = Pipe()
            translate.standardOutput = out; translate.standardError = err
            try translate.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let problems = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            translate.waitUntilExit()
            #expect(translate.terminationStatus == 0, "translate \(model) in \(cwd): \(problems)")
            #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 41, "one line per source line")
            try text.write(toFile: dir + "/hyp.txt", atomically: true, encoding: .utf8)
            let bleu = try loom(["eval", "bleu", "--hypotheses", "hyp.txt", "--references", "val.tgt"], in: dir)
            #expect(bleu.status == 0 && bleu.stdout.contains("BLEU"), "\(bleu.stdout)\(bleu.stderr)")
        }
        // Resume of a translation run is bit-identical too.
        let half = try loom(["train", "mt.yaml", "--run-dir", "half", "--quiet", "--stop-after", "15"], in: dir)
        let rest = try loom(["train", "mt.yaml", "--run-dir", "half", "--quiet", "--resume", "latest"], in: dir)
        #expect(half.status == 0 && rest.status == 0, "\(half.stderr)\(rest.stderr)")
        #expect(try sha256(dir + "/half/model.safetensors") == sha256(dir + "/one/model.safetensors"))
    }

    /// `loom export --format hf` of a trained post-LN encoder-decoder run and of one of its
    /// checkpoints: a MarianMTModel directory (config, weights, tokenizer, the export marker);
    /// a pre-LN run is refused and leaves nothing.
    @Test func exportWritesAMarianDirectoryAndRefusesPreNorm() throws {
        let dir = try parallelScratch()
        let train = try loom(["train", "mt.yaml", "--run-dir", "post", "--quiet", "--set", "training.steps=10"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        for source in ["post", "post/checkpoints/step-00000010"] {
            let out = "hf-" + source.replacingOccurrences(of: "/", with: "-")
            let r = try loom(["export", source, "--format", "hf", "--out", out], in: dir)
            #expect(r.status == 0, "\(source): \(r.stderr)")
            let files = Set((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + out)) ?? [])
            #expect(files.isSuperset(of: ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "loom-export.json"]), "\(files)")
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + out + "/config.json"))) as? [String: Any]
            #expect(config?["model_type"] as? String == "marian" && config?["d_model"] as? Int == 32, "\(String(describing: config))")
        }
        let pre = try loom(["train", "mt.yaml", "--run-dir", "pre", "--quiet", "--set", "training.steps=2", "--set", "model.norm_placement=pre"], in: dir)
        #expect(pre.status == 0, "\(pre.stderr)")
        let refused = try loom(["export", "pre", "--format", "hf", "--out", "hf-pre"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("Marian has no pre-LN"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/hf-pre"))
    }
}
