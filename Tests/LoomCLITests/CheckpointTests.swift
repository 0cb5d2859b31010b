// Checkpoints and resume through the `loom` binary: bit-identical resume on 1 and 2 ranks, resume
// on a different number of ranks, recovery after kill -9, preemption by SIGTERM, damaged
// checkpoints, a full disk, and non-finite steps.
import Testing
import Foundation

let checkpointConfig = """
model: {layers: 2, heads: 2, width: 32, context_length: 32, dropout: 0.1}
data: {corpus: corpus.txt}
training: {steps: 30, batch_size: 8, micro_batch_size: 4, seed: 11, threads: 1}
optimizer: {learning_rate: 1.0e-2}
schedule: {kind: cosine, warmup_steps: 4, minimum_learning_rate: 1.0e-3}
evaluation: {interval: 10, batches: 4}
logging: {interval: 1}
checkpoint: {interval: 10, keep: 2}
"""

func checkpointScratch() throws -> String {
    let dir = try mpiScratch()
    try checkpointConfig.write(toFile: dir + "/ck.yaml", atomically: true, encoding: .utf8)
    return dir
}

func sha256(_ path: String) throws -> String {
    try runProcess("/usr/bin/sha256sum", [path], in: "/").stdout.split(separator: " ").first.map(String.init) ?? ""
}

func checkpoints(_ run: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")) ?? []).filter { $0.hasPrefix("step-") }.sorted()
}

func expectCloseCurves(_ a: [Double], _ b: [Double], _ label: String) {
    #expect(a.count == b.count, "\(label): \(a.count) vs \(b.count) steps")
    for (i, (x, y)) in zip(a, b).enumerated() {
        #expect(abs(x - y) <= 1e-4 * abs(y), "\(label) step \(i + 1): \(x) vs \(y)")
    }
}

@Suite(.serialized) struct CheckpointTests {
    @Test func resumeIsBitIdenticalOnOneRank() throws {
        let dir = try checkpointScratch()
        let full = try loom(["train", "ck.yaml", "--run-dir", "full", "--quiet"], in: dir)
        let first = try loom(["train", "ck.yaml", "--run-dir", "half", "--quiet", "--stop-after", "15"], in: dir)
        #expect(full.status == 0 && first.status == 0, "\(full.stderr)\(first.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/half/model.safetensors"), "a paused run wrote a final model")
        #expect(checkpoints(dir + "/half") == ["step-00000010", "step-00000015"])
        let second = try loom(["train", "ck.yaml", "--run-dir", "half", "--quiet", "--resume", "latest"], in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try sha256(dir + "/half/model.safetensors") == sha256(dir + "/full/model.safetensors"))
        #expect(try trainLosses(dir + "/half") == trainLosses(dir + "/full"))
        // keep: 2 newest, plus the best by validation loss.
        let kept = checkpoints(dir + "/half")
        #expect(kept.suffix(2) == ["step-00000020", "step-00000030"] && kept.count <= 3, "\(kept)")
        let inspect = try loom(["inspect", "half/checkpoints/step-00000030"], in: dir)
        #expect(inspect.status == 0 && inspect.stdout.contains("SHA-256 match") && inspect.stdout.contains("h.1.mlp.c_fc.weight"))
        #expect(inspect.stdout.contains("step                30"))
    }

    @Test func resumeIsBitIdenticalOnTwoRanksAndContinuesOnOtherRankCounts() throws {
        let dir = try checkpointScratch()
        let full2 = try mpirun(2, ["ck.yaml", "--run-dir", "full2", "--quiet"], in: dir)
        let half2 = try mpirun(2, ["ck.yaml", "--run-dir", "half2", "--quiet", "--stop-after", "15"], in: dir)
        let rest2 = try mpirun(2, ["ck.yaml", "--run-dir", "half2", "--quiet", "--resume", "latest"], in: dir)
        #expect(full2.status == 0 && half2.status == 0 && rest2.status == 0, "\(full2.stderr)\(half2.stderr)\(rest2.stderr)")
        #expect(try sha256(dir + "/half2/model.safetensors") == sha256(dir + "/full2/model.safetensors"))
        // 2 ranks → 1 rank, and 1 rank → 2 ranks: the same global data order, so the same curve.
        let a = try mpirun(2, ["ck.yaml", "--run-dir", "two-one", "--quiet", "--stop-after", "15"], in: dir)
        let b = try loom(["train", "ck.yaml", "--run-dir", "two-one", "--quiet", "--resume", "latest"], in: dir)
        let c = try loom(["train", "ck.yaml", "--run-dir", "one-two", "--quiet", "--stop-after", "15"], in: dir)
        let d = try mpirun(2, ["ck.yaml", "--run-dir", "one-two", "--quiet", "--resume", "latest"], in: dir)
        #expect([a, b, c, d].allSatisfy { $0.status == 0 }, "\(a.stderr)\(b.stderr)\(c.stderr)\(d.stderr)")
        let reference = try trainLosses(dir + "/full2")
        expectCloseCurves(try trainLosses(dir + "/two-one"), reference, "2 → 1 ranks")
        expectCloseCurves(try trainLosses(dir + "/one-two"), reference, "1 → 2 ranks")
    }

    @Test func killedRankIsRecoveredFromTheNewestCheckpoint() throws {
        let dir = try checkpointScratch()
        let args = ["ck.yaml", "--quiet", "--set", "training.steps=3000", "--set", "checkpoint.interval=200",
                    "--set", "evaluation.interval=0", "--set", "logging.interval=100"]
        let reference = try mpirun(2, args + ["--run-dir", "reference"], in: dir)
        #expect(reference.status == 0, "\(reference.stderr)")
        let tag = "recover-\(UUID().uuidString)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [repositoryRoot + "/launch/mpirun", "--max-restarts", "2", "-n", "2"] + args + ["--run-dir", tag]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        var env = ProcessInfo.processInfo.environment
        env["LOOM_BIN"] = loomBinary()
        process.environment = env
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && checkpoints(dir + "/" + tag).count < 1 { Thread.sleep(forTimeInterval: 0.05) }
        let victim = loomProcesses(tag: tag).first { $0.rank == 1 }
        #expect(victim != nil)
        if let victim { kill(victim.pid, SIGKILL) }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("restart 1 of 2"), "the job was not restarted: \(stderr)")
        #expect(try sha256(dir + "/" + tag + "/model.safetensors") == sha256(dir + "/reference/model.safetensors"))
    }

    @Test(arguments: [1, 2])
    func sigtermCheckpointsAtTheNextStepExits75AndResumesExactly(ranks: Int) throws {
        let dir = try checkpointScratch()
        let tag = "sigterm-\(UUID().uuidString)"
        let args = ["ck.yaml", "--quiet", "--set", "training.steps=600", "--set", "checkpoint.interval=0",
                    "--set", "evaluation.interval=0", "--set", "logging.interval=1"]
        let process = Process()
        var env = ProcessInfo.processInfo.environment
        env["LOOM_BIN"] = loomBinary()
        process.environment = env
        if ranks == 1 {
            process.executableURL = URL(fileURLWithPath: loomBinary())
            process.arguments = ["train"] + args + ["--run-dir", tag]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [repositoryRoot + "/launch/mpirun", "-n", "\(ranks)"] + args + ["--run-dir", tag]
        }
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        try process.run()
        let metrics = dir + "/" + tag + "/metrics.jsonl"
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.count ?? 0) < 1500 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        // Signal one process: the single one, or rank 1 (the coordinator must still checkpoint).
        let target = ranks == 1 ? process.processIdentifier : (loomProcesses(tag: tag).first { $0.rank == 1 }?.pid ?? 0)
        #expect(target > 0)
        kill(target, SIGTERM)
        let signalled = Date()
        while process.isRunning && Date().timeIntervalSince(signalled) < 30 { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 75, "\(stderr)")
        #expect(stderr.contains("stopped by a signal after step"), "\(stderr)")
        let saved = checkpoints(dir + "/" + tag)
        #expect(saved.count == 1, "\(saved)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks left running")
        // Continue from the preemption checkpoint: the result equals an uninterrupted run.
        let resumed = ranks == 1 ? try loom(["train"] + args + ["--run-dir", tag, "--resume", "latest"], in: dir)
                                 : try mpirun(ranks, args + ["--run-dir", tag, "--resume", "latest"], in: dir)
        let full = ranks == 1 ? try loom(["train"] + args + ["--run-dir", "full"], in: dir)
                              : try mpirun(ranks, args + ["--run-dir", "full"], in: dir)
        #expect(resumed.status == 0 && full.status == 0, "\(resumed.stderr)\(full.stderr)")
        #expect(try sha256(dir + "/" + tag + "/model.safetensors") == sha256(dir + "/full/model.safetensors"))
    }

    @Test func damagedCheckpointsAreNeverLoaded() throws {
        let dir = try checkpointScratch()
        let run = try loom(["train", "ck.yaml", "--run-dir", "run", "--quiet", "--stop-after", "25"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(checkpoints(dir + "/run") == ["step-00000020", "step-00000025"])
        // One flipped byte in the newest model: --resume latest warns and falls back to step 20.
        let newest = dir + "/run/checkpoints/step-00000025"
        let handle = try #require(FileHandle(forUpdatingAtPath: newest + "/model.safetensors"))
        try handle.seek(toOffset: 4000)
        let byte = try handle.read(upToCount: 1)!
        try handle.seek(toOffset: 4000)
        try handle.write(contentsOf: Data([byte[0] ^ 0x40]))
        try handle.close()
        let explicit = try loom(["train", "ck.yaml", "--run-dir", "run", "--quiet", "--resume", newest], in: dir)
        #expect(explicit.status != 0 && explicit.stderr.contains("model.safetensors") && explicit.stderr.contains("does not match the manifest"),
                "\(explicit.stderr)")
        let inspect = try loom(["inspect", newest], in: dir)
        #expect(inspect.status != 0 && inspect.stdout.contains("FAILED"))
        // Truncate the optimizer state of the older one as a copy: both damages are named.
        let copy = dir + "/copy"
        try FileManager.default.copyItem(atPath: dir + "/run/checkpoints/step-00000020", toPath: copy)
        let optimizer = try FileHandle(forWritingTo: URL(fileURLWithPath: copy + "/optimizer.safetensors"))
        try optimizer.truncate(atOffset: 1000)
        try optimizer.close()
        let truncated = try loom(["inspect", copy], in: dir)
        #expect(truncated.status != 0 && truncated.stderr.contains("optimizer.safetensors") && truncated.stderr.contains("truncated"),
                "\(truncated.stderr)")
        // A shape mismatch names the tensor.
        let wider = try loom(["train", "ck.yaml", "--run-dir", "run", "--quiet", "--resume", dir + "/run/checkpoints/step-00000020",
                              "--set", "model.width=48"], in: dir)
        #expect(wider.status != 0 && wider.stderr.contains("tensor 'wte.weight' has shape [10, 32], the config needs [10, 48]") ||
                wider.stderr.contains("has shape"), "\(wider.stderr)")
        // latest: falls back to step 20 with a warning and finishes.
        let resumed = try loom(["train", "ck.yaml", "--run-dir", "run", "--resume", "latest", "--json"], in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("warning: skipping checkpoint") && resumed.stderr.contains("step-00000025"), "\(resumed.stderr)")
        let from = events(resumed.stdout, "resumed").first
        #expect(from?["step"] as? Int == 20 && (from?["checkpoint"] as? String ?? "").hasSuffix("step-00000020"), "\(resumed.stdout)")
        let full = try loom(["train", "ck.yaml", "--run-dir", "full", "--quiet"], in: dir)
        #expect(full.status == 0)
        #expect(try sha256(dir + "/run/model.safetensors") == sha256(dir + "/full/model.safetensors"))
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskKeepsThePreviousCheckpoint() throws {
        let dir = try checkpointScratch()
        let disk = dir + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        // One checkpoint of this model is ~330 kB (weights + AdamW moments): room for one, not two.
        let mount = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=520k", "tmpfs", disk], in: dir)
        try #require(mount.status == 0, "cannot mount a tmpfs here: \(mount.stderr)")
        defer { _ = try? runProcess("/bin/umount", [disk], in: dir) }
        let run = try loom(["train", "ck.yaml", "--run-dir", "disk/run", "--quiet"], in: dir)
        #expect(run.status != 0)
        #expect(run.stderr.contains("cannot write") && run.stderr.contains("No space left on device"), "\(run.stderr)")
        #expect(checkpoints(disk + "/run") == ["step-00000010"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: disk + "/run/checkpoints").filter { $0.hasPrefix(".tmp") }
        #expect(leftovers.isEmpty, "half-written checkpoint left: \(leftovers)")
        let inspect = try loom(["inspect", "disk/run/checkpoints/step-00000010"], in: dir)
        #expect(inspect.status == 0, "the previous checkpoint was damaged: \(inspect.stdout)\(inspect.stderr)")
    }

    @Test func nonFiniteStepsAreSkippedAndTooManyStopTheRun() throws {
        let dir = try checkpointScratch()
        let run = try loom(["train", "ck.yaml", "--run-dir", "run", "--quiet", "--set", "optimizer.learning_rate=1e30",
                            "--set", "schedule.minimum_learning_rate=0", "--set", "schedule.warmup_steps=0",
                            "--set", "optimizer.gradient_clip=0", "--set", "checkpoint.interval=1",
                            "--set", "training.maximum_nonfinite_steps=3", "--set", "model.dropout=0", "--json"], in: dir)
        #expect(run.status != 0)
        #expect(run.stderr.contains("3 steps in a row") && run.stderr.contains("non-finite"), "\(run.stderr)")
        let summary = trainSummary(run.stdout)
        #expect(summary["stop_reason"] as? String == "nonfinite" && summary["nonfinite_in_a_row"] as? Int == 3, "\(run.stdout)")
        // The checkpoints stop before the first skipped step.
        let lastStep = try #require(summary["steps"] as? Int, "\(run.stdout)")
        let saved = checkpoints(dir + "/run").compactMap { Int($0.dropFirst(5)) }
        #expect(!saved.isEmpty && saved.allSatisfy { $0 <= lastStep - 3 }, "checkpoints \(saved), stopped at step \(lastStep)")
    }
}
