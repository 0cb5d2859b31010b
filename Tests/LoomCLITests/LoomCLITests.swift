// End-to-end runs of the `loom` binary: train → files → sample, and bad input that must fail
// before anything is written.
import Testing
import Foundation
import TestSupport

/// The `loom` binary beside this test bundle (SwiftPM builds both into the same directory).
func loomBinary() -> String {
    if let path = ProcessInfo.processInfo.environment["LOOM_BINARY"] { return path }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if dir.lastPathComponent.hasSuffix(".xctest") || dir.path.contains(".xctest/") {
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
    }
    return dir.appendingPathComponent("loom").path
}

struct Run { var status: Int32; var stdout: String; var stderr: String }

func loom(_ arguments: [String], in directory: String) throws -> Run {
    try runProcess(loomBinary(), arguments, in: directory)
}

/// The JSON objects of `loom train --json`'s stdout, one a line (lines that are not JSON skipped).
func jsonEvents(_ stdout: String) -> [[String: Any]] {
    stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// The events of one kind (`log`, `validation`, `checkpoint`, `resumed`, `summary`, …).
func events(_ stdout: String, _ name: String) -> [[String: Any]] { jsonEvents(stdout).filter { $0["event"] as? String == name } }

/// The final summary of `loom train --json` (empty when there is none).
func trainSummary(_ stdout: String) -> [String: Any] { events(stdout, "summary").last ?? [:] }

func scratchDirectory() throws -> String {
    let dir = scratchPath("loom-cli-")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let tinyConfig = """
model: {layers: 1, heads: 2, width: 16, context_length: 16}
data: {corpus: corpus.txt}
training: {steps: 60, batch_size: 8, micro_batch_size: 4, threads: 2}
optimizer: {learning_rate: 1.0e-2}
schedule: {kind: cosine, warmup_steps: 5, minimum_learning_rate: 1.0e-3}
evaluation: {interval: 0, batches: 4}
logging: {interval: 10}
"""

@Suite(.serialized) struct LoomCLITests {
    @Test func trainWritesTheRunAndSampleIsReproducible() throws {
        let dir = try scratchDirectory()
        let corpus = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
        try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let train = try loom(["train", "tiny.yaml", "--run-dir", "run", "--json"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        for file in ["config.yaml", "tokenizer.json", "metrics.jsonl", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/run/" + file), "missing \(file)")
        }
        // A log event every logging.interval steps (stdout is not a terminal).
        #expect(events(train.stdout, "log").contains { $0["step"] as? Int == 10 && $0["total_steps"] as? Int == 60 }, "\(train.stdout)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for key in ["step", "train_loss", "lr", "tokens", "elapsed_s", "tokens_per_s"] {
            #expect(records.allSatisfy { $0[key] != nil }, "metrics lack \(key)")
        }
        let first = records.first!["train_loss"] as! Double
        let validation = records.last!["val_loss"] as! Double
        #expect(abs(first - log(13.0)) < 0.3, "initial loss \(first) vs ln(vocabulary 13)")
        #expect(validation < 0.5 * first, "validation loss \(validation) did not fall from \(first)")

        let a = try loom(["sample", "run", "--prompt", "the ", "--max-tokens", "40", "--seed", "5"], in: dir)
        let b = try loom(["sample", "run", "--prompt", "the ", "--max-tokens", "40", "--seed", "5"], in: dir)
        let c = try loom(["sample", "run", "--prompt", "the ", "--max-tokens", "40", "--seed", "6", "--temperature", "1.5"], in: dir)
        #expect(a.status == 0 && a.stdout == b.stdout && a.stdout.count > 40)
        #expect(c.stdout != a.stdout)
        // Training a second time into the same directory is refused.
        let again = try loom(["train", "tiny.yaml", "--run-dir", "run"], in: dir)
        #expect(again.status != 0 && again.stderr.contains("already holds a run"))
    }

    /// `bench --against` alternates two settings (here thread replicas and kernel-split threads)
    /// in one process and reports both; a different thread count is refused (one shared pool).
    /// `bench --json` says how many thread replicas ran.
    @Test func benchAgainstComparesTwoSettingsInOneProcess() throws {
        let dir = try scratchDirectory()
        try String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
            .write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let r = try loom(["bench", "tiny.yaml", "--steps", "20", "--warmup", "1", "--json",
                          "--against", "training.thread_parallelism=kernel"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(fields["blocks"] as? Int == 2 && fields["against"] as? String == "training.thread_parallelism=kernel", "\(r.stdout)")
        for key in ["tokens_per_s", "against_tokens_per_s", "ratio_median", "ratio_min", "ratio_max"] {
            #expect((fields[key] as? Double ?? 0) > 0, "\(key) in \(r.stdout)")
        }
        // `auto` makes this small model's 2 threads replicas; `kernel` does not.
        for (setting, replicas) in [("auto", 2), ("kernel", 1)] {
            let plain = try loom(["bench", "tiny.yaml", "--steps", "5", "--json", "--set", "training.thread_parallelism=\(setting)"], in: dir)
            let fields = try JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any] ?? [:]
            #expect(fields["thread_replicas"] as? Int == replicas, "\(setting): \(plain.stdout) \(plain.stderr)")
        }
        let refused = try loom(["bench", "tiny.yaml", "--steps", "10", "--against", "training.threads=1"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("share one thread pool"), "\(refused.stderr)")
    }

    /// `evaluation.at_end` decides the pass after the last step: off, the run ends cleanly with no
    /// pass there (none at all with `interval: 0`: no val_loss logged, no "best" checkpoint, and
    /// the summary says why); on, exactly one runs after the last step.
    @Test func evaluationAfterTheLastStepRunsOnlyWhenAsked() throws {
        let dir = try scratchDirectory()
        try String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
            .write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        func train(_ name: String, _ settings: [String]) throws -> (run: Run, validated: [Int]) {
            let r = try loom(["train", "tiny.yaml", "--run-dir", name, "--json", "--set", "training.steps=50"]
                             + settings.flatMap { ["--set", $0] }, in: dir)
            let lines = (try? String(contentsOfFile: dir + "/\(name)/metrics.jsonl", encoding: .utf8))?.split(separator: "\n") ?? []
            let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return (r, records.filter { $0["val_loss"] != nil }.compactMap { $0["step"] as? Int })
        }
        let none = try train("none", ["evaluation.interval=0", "evaluation.at_end=false"])
        #expect(none.run.status == 0, "\(none.run.stderr)")
        #expect(none.validated.isEmpty, "validation passes at steps \(none.validated)")
        let noneSummary = trainSummary(none.run.stdout)
        #expect(noneSummary["steps"] as? Int == 50 && noneSummary["val_loss"] is NSNull
                && noneSummary["validation"] as? String == "no validation (evaluation.interval: 0, evaluation.at_end: false)", "\(none.run.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/none/model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: dir + "/none/checkpoints/step-00000050"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/none/checkpoints/best"))

        let periodic = try train("periodic", ["evaluation.interval=20", "evaluation.at_end=false"])
        #expect(periodic.run.status == 0, "\(periodic.run.stderr)")
        #expect(periodic.validated == [20, 40])
        let periodicSummary = trainSummary(periodic.run.stdout)
        #expect(periodicSummary["val_loss"] is NSNull && periodicSummary["last_val_step"] as? Int == 40
                && periodicSummary["last_val_loss"] is Double, "\(periodic.run.stdout)")
        #expect((periodicSummary["validation"] as? String ?? "").hasPrefix("no validation after the last step (evaluation.at_end: false; val loss"),
                "\(periodic.run.stdout)")

        let short = try train("short", ["evaluation.interval=80", "evaluation.at_end=false"])
        #expect(short.run.status == 0 && short.validated.isEmpty, "\(short.run.stderr) \(short.validated)")
        #expect((trainSummary(short.run.stdout)["validation"] as? String ?? "").contains("no step of this run was a multiple of evaluation.interval 80"),
                "\(short.run.stdout)")

        let end = try train("end", ["evaluation.interval=0"])
        #expect(end.run.status == 0, "\(end.run.stderr)")
        #expect(end.validated == [50])
        let endSummary = trainSummary(end.run.stdout)
        #expect(endSummary["steps"] as? Int == 50 && endSummary["val_loss"] is Double && endSummary["stop_reason"] as? String == "completed",
                "\(end.run.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + "/end/checkpoints/best"))
        // The summary compares peak RSS with the memory plan.
        #expect((endSummary["peak_rss_bytes"] as? Int ?? 0) > 0 && (endSummary["memory_ratio"] as? Double ?? 0) > 0
                && (endSummary["planned_bytes"] as? Int ?? 0) > 0, "\(end.run.stdout)")
    }

    /// At a wide vocabulary (the LM head's operands dominate) bench's peak RSS stays within 1.25×
    /// of its memory plan, which names its rows, and the measured steps allocate nothing.
    @Test func benchStaysWithinItsMemoryPlanAtAWideVocabulary() throws {
        let dir = try scratchDirectory()
        try """
        model: {layers: 2, heads: 2, width: 64, context_length: 32, vocabulary_size: 16384}
        data: {corpus: absent.txt}
        training: {steps: 10, batch_size: 8, micro_batch_size: 8, threads: 2}
        """.write(toFile: dir + "/wide.yaml", atomically: true, encoding: .utf8)
        let r = try loom(["bench", "wide.yaml", "--steps", "3", "--warmup", "1", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        let plan = fields["memory_plan"] as? [String: Int] ?? [:]
        for row in ["parameters", "gradients", "AdamW moments (m, v)", "activations + backward scratch",
                    "GEMM rate measurement (A, B, C operands)", "process at start (binary, libraries, runtime)"] {
            #expect((plan[row] ?? 0) > 0, "\(row) in \(r.stdout)")
        }
        let planned = fields["planned_bytes"] as? Int ?? 0, peak = fields["peak_rss_bytes"] as? Int ?? 0
        #expect(planned == plan.values.reduce(0, +))
        #expect(peak > 0 && Double(peak) <= 1.25 * Double(planned), "peak \(peak) vs plan \(planned)")
        #expect(abs((fields["memory_ratio"] as? Double ?? 0) - Double(peak) / Double(planned)) < 1e-9)
        #expect(fields["allocations_in_measured_steps"] as? Int == 0, "\(r.stdout)")
    }

    /// `bench --json` reports `kernels.gemm`'s choice per product shape: with `auto` every engine's
    /// times and the fastest (oneDNN when it took under 95 % of the faster of OpenBLAS and Loom's
    /// kernel), with `onednn` every shape on oneDNN; the measured steps
    /// allocate nothing of Loom's (oneDNN's own allocations inside its calls are counted apart).
    @Test func benchReportsTheGemmEnginePerShape() throws {
        let dir = try scratchDirectory()
        try String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
            .write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        for selection in ["auto", "onednn"] {
            let r = try loom(["bench", "tiny.yaml", "--steps", "3", "--warmup", "1", "--json", "--set", "kernels.gemm=\(selection)"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            let gemm = fields["gemm"] as? [String: Any] ?? [:]
            let shapes = gemm["shapes"] as? [[String: Any]] ?? []
            #expect(gemm["selection"] as? String == selection && !shapes.isEmpty, "\(r.stdout)")
            for shape in shapes {
                let engine = shape["engine"] as? String, dnn = shape["onednn_us"] as? Double, blas = shape["openblas_us"] as? Double
                let own = shape["loom_us"] as? Double
                #expect((shape["calls"] as? Int ?? 0) > 0 && (shape["m"] as? Int ?? 0) > 0)
                if selection == "auto" {
                    // The faster of OpenBLAS and Loom's kernel (where the CPU runs it), then oneDNN only when it took under 95 % of that.
                    let (ownEngine, ownTime): (String, Double?) = if let own, let blas, own <= blas { ("loom", own) } else { ("openblas", blas) }
                    #expect(dnn != nil && ownTime != nil && engine == (dnn! < ownTime! * 0.95 ? "onednn" : ownEngine), "\(shape)")
                } else {
                    #expect(engine == "onednn" && !(shape["implementation"] as? String ?? "").isEmpty, "\(shape)")
                }
            }
            let all = fields["allocations_in_measured_steps"] as? Int, theirs = fields["onednn_allocations_in_measured_steps"] as? Int
            #expect(all != nil && theirs != nil && all == theirs, "allocations \(String(describing: all)), oneDNN's \(String(describing: theirs))")
        }
        let system = try loom(["system", "--json"], in: dir)
        let onednn = (try JSONSerialization.jsonObject(with: Data(system.stdout.utf8)) as? [String: Any])?["onednn"] as? [String: Any]
        #expect(onednn?["available"] as? Bool == true && !(onednn?["isa"] as? String ?? "").isEmpty, "\(system.stdout)")
    }

    @Test func badInputFailsBeforeAnythingIsWritten() throws {
        let dir = try scratchDirectory()
        try "abcabc".write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["--set", "model.width=15"], "'model.width'"),
            (["--set", "model.headz=2"], "'model.headz': unknown key"),
            (["--set", "training.steps=ten"], "'training.steps'"),
            (["--set", "data.corpus=missing.txt"], "missing.txt"),
            ([], "window needs"),                            // corpus shorter than one window
        ]
        for (extra, expected) in cases {
            let r = try loom(["train", "tiny.yaml", "--run-dir", "run"] + extra, in: dir)
            #expect(r.status != 0, "\(extra) should fail")
            #expect(r.stderr.contains(expected), "\(extra): stderr was \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/run"), "\(extra) left a run directory")
        }
        let sample = try loom(["sample", "nowhere"], in: dir)
        #expect(sample.status != 0 && sample.stderr.contains("nowhere"))
    }
}

/// `loom tokenizer train` → `loom tokenize` → `loom train` from shards → `loom sample`, and bad
/// shards or inputs failing with the file and offset.
@Suite(.serialized) struct LoomTokenizerCLITests {
    static let shardConfig = """
    model: {layers: 1, heads: 2, width: 16, context_length: 16}
    data: {shards: shards}
    training: {steps: 60, batch_size: 8, micro_batch_size: 4, threads: 2}
    optimizer: {learning_rate: 1.0e-2}
    schedule: {kind: cosine, warmup_steps: 5, minimum_learning_rate: 1.0e-3}
    evaluation: {interval: 0, batches: 4}
    logging: {interval: 10}
    """

    @Test func bpeShardsTrainAndSample() throws {
        let dir = try scratchDirectory()
        let corpus = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 80)
        try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try Self.shardConfig.write(toFile: dir + "/shards.yaml", atomically: true, encoding: .utf8)
        let train = try loom(["tokenizer", "train", "--vocab-size", "300", "--special", "<|endoftext|>", "--out", "tok/tok.json", "corpus.txt"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        // Merging stops early when every word of this tiny corpus is a single token.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/tok/tok.json"))) as! [String: Any]
        let vocabulary = ((json["model"] as! [String: Any])["vocab"] as! [String: Any]).count
        #expect(vocabulary > 260 && vocabulary <= 300 && train.stdout.contains("vocabulary \(vocabulary)"), "\(train.stdout)")
        let tokenize = try loom(["tokenize", "--tokenizer", "tok/tok.json", "--out", "shards", "corpus.txt"], in: dir)
        #expect(tokenize.status == 0 && tokenize.stdout.contains("MB/s"), "\(tokenize.stderr)")
        for file in ["index.json", "tokenizer.json", "shard-00000.bin"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/shards/" + file), "missing \(file)")
        }
        let run = try loom(["train", "shards.yaml", "--run-dir", "run"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let first = records.first!["train_loss"] as! Double, validation = records.last!["val_loss"] as! Double
        #expect(abs(first - log(Double(vocabulary))) < 0.5, "initial loss \(first) vs ln(vocabulary \(vocabulary))")
        #expect(validation < 0.5 * first, "validation loss \(validation) did not fall from \(first)")
        let sample = try loom(["sample", "run", "--prompt", "the ", "--max-tokens", "20", "--seed", "5"], in: dir)
        #expect(sample.status == 0 && sample.stdout.hasPrefix("the "), "\(sample.stderr)")

        // A corrupted shard stops training before a run directory is made.
        var shard = try Data(contentsOf: URL(fileURLWithPath: dir + "/shards/shard-00000.bin"))
        shard[100] ^= 0x01
        try shard.write(to: URL(fileURLWithPath: dir + "/shards/shard-00000.bin"))
        let bad = try loom(["train", "shards.yaml", "--run-dir", "run2"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("shards/shard-00000.bin: byte offset 32: checksum mismatch"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run2"))
    }

    @Test func badTokenizerInputFails() throws {
        let dir = try scratchDirectory()
        try "abc abc".write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try "".write(toFile: dir + "/empty.txt", atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["tokenizer", "train", "--vocab-size", "100", "corpus.txt"], "at least 256"),
            (["tokenizer", "train", "--vocab-size", "300", "missing.txt"], "missing.txt"),
            (["tokenizer", "train", "--vocab-size", "300", "empty.txt"], "empty.txt: the input file is empty"),
            (["tokenize", "--tokenizer", "nope.json", "--out", "s", "corpus.txt"], "nope.json"),
        ]
        for (arguments, expected) in cases {
            let r = try loom(arguments, in: dir)
            #expect(r.status != 0 && r.stderr.contains(expected), "\(arguments): \(r.stderr)")
        }
        _ = try loom(["tokenizer", "train", "--vocab-size", "260", "--out", "t.json", "corpus.txt"], in: dir)
        let missing = try loom(["tokenize", "--tokenizer", "t.json", "--out", "s", "corpus.txt", "gone.txt"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("gone.txt: input file not found"), "\(missing.stderr)")
        try "eins\nzwei\n".write(toFile: dir + "/de.txt", atomically: true, encoding: .utf8)
        try "one\ntwo\nthree\n".write(toFile: dir + "/en.txt", atomically: true, encoding: .utf8)
        let pairs = try loom(["tokenize", "--tokenizer", "t.json", "--out", "p", "--source", "de.txt", "--target", "en.txt"], in: dir)
        #expect(pairs.status != 0 && pairs.stderr.contains("de.txt: has 2 lines but en.txt has 3"), "\(pairs.stderr)")
        try "one\ntwo\n".write(toFile: dir + "/en.txt", atomically: true, encoding: .utf8)
        let aligned = try loom(["tokenize", "--tokenizer", "t.json", "--out", "p", "--source", "de.txt", "--target", "en.txt"], in: dir)
        #expect(aligned.status == 0 && FileManager.default.fileExists(atPath: dir + "/p/source-00000.bin"), "\(aligned.stderr)")
        try Self.shardConfig.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let both = try loom(["train", "c.yaml", "--set", "data.corpus=corpus.txt"], in: dir)
        #expect(both.status != 0 && both.stderr.contains("set exactly one of data.corpus"), "\(both.stderr)")
        let noShards = try loom(["train", "c.yaml"], in: dir)
        #expect(noShards.status != 0 && noShards.stderr.contains("shards/index.json"), "\(noShards.stderr)")
    }
}
