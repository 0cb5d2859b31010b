// Multi-rank runs of the `loom` binary under `mpirun -np 2` (through launch/mpirun, as users run
// it): data-parallel training equals single-process accumulation; replicas stay bit-identical;
// mismatched ranks refuse to start; a killed rank ends the whole job.
import Testing
import Foundation

/// The repository root (this file is Tests/LoomCLITests/MPITests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Runs an executable to completion, capturing its output.
func runProcess(_ executable: String, _ arguments: [String], in directory: String,
                environment extra: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in extra { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// `launch/mpirun -n ranks …` with this build's binary.
func mpirun(_ ranks: Int, _ arguments: [String], in directory: String) throws -> Run {
    try runProcess("/bin/bash", [repositoryRoot + "/launch/mpirun", "-n", "\(ranks)"] + arguments, in: directory,
                   environment: ["LOOM_BIN": loomBinary()])
}

/// Per-step training losses of a run directory's metrics.jsonl.
func trainLosses(_ run: String) throws -> [Double] {
    try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        .filter { $0["val_loss"] == nil }
        .map { $0["train_loss"] as! Double }
}

let mpiConfig = """
model: {layers: 2, heads: 2, width: 32, context_length: 32, dropout: 0.1}
data: {corpus: corpus.txt}
training: {steps: 24, batch_size: 8, micro_batch_size: 4, seed: 11, threads: 1}
optimizer: {learning_rate: 1.0e-2}
schedule: {kind: cosine, warmup_steps: 4, minimum_learning_rate: 3.0e-4}
evaluation: {interval: 0, batches: 4}
logging: {interval: 1}
"""

func mpiScratch() throws -> String {
    let dir = try scratchDirectory()
    var text = ""
    var x: UInt64 = 12345
    let words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ate", "log", "."]
    while text.count < 30000 {   // deterministic pseudo-sentences: learnable within words
        x = x &* 6364136223846793005 &+ 1442695040888963407
        text += words[Int((x >> 33) % UInt64(words.count))] + ((x >> 20) % 8 == 0 ? "\n" : " ")
    }
    try text.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    try mpiConfig.write(toFile: dir + "/mpi.yaml", atomically: true, encoding: .utf8)
    return dir
}

@Suite(.serialized) struct MPITests {
    @Test func twoRanksEqualOneRankAccumulatingAndOneRankWithTheWholeBatch() throws {
        let dir = try mpiScratch()
        let B = 4
        let two = try mpirun(2, ["mpi.yaml", "--run-dir", "two", "--json", "--set", "training.micro_batch_size=\(B)"], in: dir)
        #expect(two.status == 0, "\(two.stderr)")
        // Rank 0 alone writes; the end-of-run check all-gathers each rank's parameter hash.
        let summary = trainSummary(two.stdout)
        #expect(summary["ranks"] as? Int == 2 && (summary["parameter_sha256"] as? String ?? "").count == 64, "\(two.stdout)")
        #expect(events(two.stdout, "summary").count == 1, "only rank 0 prints the summary")
        let accumulate = try loom(["train", "mpi.yaml", "--run-dir", "accumulate", "--quiet", "--set", "training.micro_batch_size=\(B)"], in: dir)
        let whole = try loom(["train", "mpi.yaml", "--run-dir", "whole", "--quiet", "--set", "training.micro_batch_size=\(2 * B)"], in: dir)
        #expect(accumulate.status == 0 && whole.status == 0, "\(accumulate.stderr)\(whole.stderr)")
        let a = try trainLosses(dir + "/two"), b = try trainLosses(dir + "/accumulate"), c = try trainLosses(dir + "/whole")
        #expect(a.count == 24 && b.count == 24 && c.count == 24)
        for (i, (x, (y, z))) in zip(a, zip(b, c)).enumerated() {
            #expect(abs(x - y) <= 1e-4 * abs(y), "step \(i + 1): 2 ranks \(x) vs 1 rank × 2 micro-steps \(y)")
            #expect(abs(z - y) <= 1e-4 * abs(y), "step \(i + 1): batch 2B \(z) vs 2 micro-steps \(y)")
        }
        #expect(a.last! < a.first! - 0.1, "training did not reduce the loss: \(a.first!) → \(a.last!)")
    }

    @Test func overlapOffAndSmallBucketsGiveTheSameLosses() throws {
        let dir = try mpiScratch()
        let base = try mpirun(2, ["mpi.yaml", "--run-dir", "base", "--set", "training.steps=8"], in: dir)
        let off = try mpirun(2, ["mpi.yaml", "--run-dir", "off", "--set", "training.steps=8", "--set", "distributed.overlap=false"], in: dir)
        let small = try mpirun(2, ["mpi.yaml", "--run-dir", "small", "--set", "training.steps=8", "--set", "distributed.bucket_megabytes=0.01"], in: dir)
        #expect(base.status == 0 && off.status == 0 && small.status == 0, "\(base.stderr)\(off.stderr)\(small.stderr)")
        let a = try trainLosses(dir + "/base")
        #expect(try trainLosses(dir + "/off") == a)
        #expect(try trainLosses(dir + "/small") == a)
    }

    @Test func ranksWithDifferentConfigsRefuseToStart() throws {
        let dir = try mpiScratch()
        // MPMD launch: rank 1 gets a different learning rate.
        let r = try runProcess("/usr/bin/env", ["mpirun", "--oversubscribe", "-n", "1", loomBinary(), "train", "mpi.yaml", "--run-dir", "bad",
                                                ":", "-n", "1", loomBinary(), "train", "mpi.yaml", "--run-dir", "bad",
                                                "--set", "optimizer.learning_rate=0.1"],
                               in: dir, environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("the resolved config differs between ranks: rank(s) 1 disagree with rank 0"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad"), "a refused job wrote a run directory")
    }

    @Test func killingOneRankEndsTheJobWithinThirtySeconds() throws {
        let dir = try mpiScratch()
        let tag = "killtest-\(UUID().uuidString)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repositoryRoot + "/launch/mpirun", "-n", "2", "mpi.yaml", "--run-dir", tag,
                             "--set", "training.steps=1000000", "--set", "logging.interval=10"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["LOOM_BIN"] = loomBinary()
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // Wait until training is under way (rank 0 has logged steps).
        let metrics = dir + "/" + tag + "/metrics.jsonl"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: metrics, encoding: .utf8), text.split(separator: "\n").count >= 3 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let ranks = loomProcesses(tag: tag)
        #expect(ranks.count == 2, "expected 2 rank processes, found \(ranks)")
        guard let victim = ranks.first(where: { $0.rank == 1 }) else { return }
        kill(victim.pid, SIGKILL)
        let killed = Date()
        while process.isRunning && Date().timeIntervalSince(killed) < 30 { Thread.sleep(forTimeInterval: 0.1) }
        let seconds = Date().timeIntervalSince(killed)
        #expect(!process.isRunning, "mpirun still running \(seconds) s after kill -9 of rank 1")
        if !process.isRunning { #expect(process.terminationStatus != 0) }
        Thread.sleep(forTimeInterval: 0.5)
        let left = loomProcesses(tag: tag)
        #expect(left.isEmpty, "ranks left running: \(left)")
        for p in left { kill(p.pid, SIGKILL) }
    }
}

/// `loom` processes whose command line contains `tag`, with their MPI rank.
func loomProcesses(tag: String) -> [(pid: Int32, rank: Int)] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    var found: [(Int32, Int)] = []
    for entry in entries {
        guard let pid = Int32(entry),
              let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/exe"),
              exe.hasSuffix("/loom"),
              let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
              String(decoding: cmdline, as: UTF8.self).contains(tag) else { continue }
        let environ = String(decoding: FileManager.default.contents(atPath: "/proc/\(entry)/environ") ?? Data(), as: UTF8.self)
        let rank = environ.split(separator: "\0").first { $0.hasPrefix("OMPI_COMM_WORLD_RANK=") }
            .flatMap { Int($0.dropFirst("OMPI_COMM_WORLD_RANK=".count)) } ?? -1
        found.append((pid, rank))
    }
    return found
}
