// `loom eval loss` and `loom eval bleu` end to end, and the reading commands' message for a run
// directory that is not there (a reader's message: nothing was to be written).
import Testing
import Foundation
import TestSupport

@Suite(.serialized) struct EvalCLITests {
    @Test func readersSayTheRunIsMissing() throws {
        let dir = try scratchDirectory()
        let missing = dir + "/no-such-run"
        for arguments in [["sample", missing], ["inspect", missing], ["eval", "loss", missing, "--text", "x"],
                          ["eval", "loss", missing, "--validation-windows"]] {
            let run = try loom(arguments, in: dir)
            #expect(run.status == 1, "\(arguments)")
            #expect(run.stderr.contains("no such ") && run.stderr.contains(missing + "; train one with `loom train`"), "\(arguments): \(run.stderr)")
            #expect(!run.stderr.contains("cannot write") && !run.stderr.contains("previous file"), "\(arguments): \(run.stderr)")
        }
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        try String(repeating: "abc abc abc abc abc abc abc abc\n", count: 40).write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        let resume = try loom(["train", "tiny.yaml", "--run-dir", missing, "--resume", "latest"], in: dir)
        // Resuming already says what it read and found: no checkpoint to continue from.
        #expect(resume.status == 1 && resume.stderr.contains("no valid checkpoint to resume from") && !resume.stderr.contains("cannot write"), "\(resume.stderr)")
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func evalLossPrintsJSONAndTheValidationLoss() throws {
        let dir = try scratchDirectory()
        let corpus = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 30)
        try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.replacingOccurrences(of: "steps: 60", with: "steps: 20")
            .replacingOccurrences(of: "interval: 0, batches: 4", with: "interval: 10, batches: 4")
            .write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let train = try loom(["train", "tiny.yaml", "--run-dir", "run"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        let logged = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["val_loss"] as? Double }.last!
        let validation = try loom(["eval", "loss", "run", "--validation-windows", "--json"], in: dir)
        #expect(validation.status == 0, "\(validation.stderr)")
        let v = try JSONSerialization.jsonObject(with: Data(validation.stdout.utf8)) as! [String: Any]
        #expect(abs(v["mean_nll"] as! Double - logged) <= 1e-6 * logged, "\(validation.stdout) vs \(logged)")
        let whole = try loom(["eval", "loss", "run", "--text", "corpus.txt", "--stride", "8", "--json"], in: dir)
        let w = try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8)) as! [String: Any]
        // Character tokens of ASCII text: every byte but the first is scored.
        #expect(w["tokens"] as? Int == corpus.utf8.count - 1 && w["bytes"] as? Int == corpus.utf8.count - 1, "\(whole.stdout)")
        let nll = w["mean_nll"] as! Double, total = w["total_nll"] as! Double
        #expect(abs(w["perplexity"] as! Double - exp(nll)) < 1e-9 * exp(nll))
        #expect(abs(w["bits_per_byte"] as! Double - total / log(2.0) / Double(corpus.utf8.count - 1)) < 1e-9)
        let prose = try loom(["eval", "loss", "run", "--text", "corpus.txt"], in: dir)
        #expect(prose.status == 0 && prose.stdout.contains("stride 16") && prose.stdout.contains("bits per byte"), "\(prose.stdout)\(prose.stderr)")
    }

    @Test func bleuPrintsSacreBLEUsSignatureAndJSON() throws {
        let dir = try scratchDirectory()
        try "the cat sat on the mat\n".write(toFile: dir + "/hyp", atomically: true, encoding: .utf8)
        try "the cat is on the mat\n".write(toFile: dir + "/ref", atomically: true, encoding: .utf8)
        let run = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "ref"], in: dir)
        // exp smoothing by default: the zero 4-gram count gives 1/(2·3).
        #expect(run.stdout == String(format: "BLEU = %.2f 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)\n",
                                     100 * pow(1.0 / 48, 0.25)), "\(run.stdout)")
        #expect(run.stderr.contains("signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2."), "\(run.stderr)")
        let none = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "ref", "--references", "ref", "--smooth", "none", "--json"], in: dir)
        let object = try JSONSerialization.jsonObject(with: Data(none.stdout.utf8)) as! [String: Any]
        #expect(object["score"] as? Double == 0 && object["smooth"] as? String == "none" && object["nrefs"] as? String == "2")
        #expect((object["signature"] as? String)?.hasPrefix("nrefs:2|case:mixed|eff:no|tok:13a|smooth:none|version:") == true)
        #expect(object["verbose_score"] as? String == "83.3/60.0/25.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)")
        let floor = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "ref", "--smooth", "floor", "--smooth-value", "0.2"], in: dir)
        #expect(floor.stderr.contains("|smooth:floor[0.20]|"), "\(floor.stderr)")
        let bad = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "ref", "--smooth", "exp", "--smooth-value", "1"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("--smooth-value goes with --smooth floor or add-k"), "\(bad.stderr)")
    }
}
