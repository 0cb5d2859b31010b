// End-to-end runs of the `loom` binary: train → files → sample, and bad input that must fail
// before anything is written.
import Testing
import Foundation

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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: loomBinary())
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func scratchDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "loom-cli-\(UUID().uuidString)"
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
        let train = try loom(["train", "tiny.yaml", "--run-dir", "run"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        for file in ["config.yaml", "tokenizer.json", "metrics.jsonl", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/run/" + file), "missing \(file)")
        }
        // Plain periodic lines when stdout is not a terminal.
        #expect(train.stdout.contains("step 10/60"))
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
