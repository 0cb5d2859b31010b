// The launch layer end to end: a stop request sent to what users start (a bare `mpirun`,
// launch/mpirun, launch/slurm.sbatch as Slurm signals it) while a long step runs ends in a
// checkpoint of that step, exit 75 and an exact resume; no rank outlives its launcher; ranks that
// read different copies of the data refuse to start; a coordinator killed while writing a
// checkpoint leaves nothing half-written after its restart.
import Testing
import Foundation

/// A GPT whose step takes several seconds on 2 ranks × 1 thread (6–12 s on the 2-core machines):
/// longer than the 1 s OpenMPI leaves between SIGTERM and SIGKILL.
let longStepConfig = """
model: {layers: 4, heads: 4, width: 512, context_length: 256, dropout: 0.0}
data: {corpus: corpus.txt}
training: {steps: 3, batch_size: 64, micro_batch_size: 16, seed: 3, threads: 1}
optimizer: {learning_rate: 1.0e-3}
schedule: {kind: constant, warmup_steps: 0}
evaluation: {interval: 0, batches: 1}
logging: {interval: 1}
checkpoint: {interval: 0}
"""

func longStepScratch() throws -> String {
    let dir = try mpiScratch()
    try longStepConfig.write(toFile: dir + "/long.yaml", atomically: true, encoding: .utf8)
    return dir
}

/// How a test starts a job, as a user would.
enum Launcher: String, CustomStringConvertible, CaseIterable {
    case bareMpirun = "mpirun", launchMpirun = "launch/mpirun", slurmBatch = "launch/slurm.sbatch (mpirun, outside Slurm)"
    var description: String { rawValue }

    /// The process to start for `loom train CONFIG arguments` on 2 ranks.
    func command(_ config: String, _ arguments: [String]) -> (String, [String], [String: String]) {
        let root = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]
        switch self {
        case .bareMpirun:
            // As docs/distributed.md documents it: with time for a step and a checkpoint after a SIGTERM.
            return ("/usr/bin/env", ["mpirun", "--mca", "odls_base_sigkill_timeout", "20", "--bind-to", "none", "-n", "2",
                                     loomBinary(), "train", config] + arguments + ["--set", "training.threads=1"], root)
        case .launchMpirun:
            return ("/bin/bash", [repositoryRoot + "/launch/mpirun", "-n", "2", config] + arguments, ["LOOM_BIN": loomBinary()])
        case .slurmBatch:
            // What sbatch runs on the first node of a 1-node, 2-task allocation, with mpirun
            // starting the ranks (LaunchSlurmTests runs the script under a real Slurm with srun).
            return ("/bin/bash", [repositoryRoot + "/launch/slurm.sbatch", config] + arguments,
                    root.merging(["LOOM_BIN": loomBinary(), "SLURM_SUBMIT_DIR": repositoryRoot, "LOOM_SLURM_LAUNCHER": "mpirun",
                                  "SLURM_NTASKS_PER_NODE": "2", "SLURM_CPUS_PER_TASK": "1"]) { a, _ in a })
        }
    }
}

/// A started job, as a shell would start it: default signal dispositions and an empty signal
/// mask (Foundation's Process hands its children blocked signals, and a launcher started with
/// SIGTERM blocked never hears it). stdout is discarded, stderr kept in a file.
final class Job {
    let pid: pid_t
    private let errorFile: String
    private var status: Int32?

    convenience init(_ launcher: Launcher, _ config: String, _ arguments: [String], in directory: String) throws {
        let (executable, args, extra) = launcher.command(config, arguments)
        try self.init(executable, args, environment: extra, in: directory)
    }

    /// Starts `executable arguments` in `directory`, with `extra` added to this environment.
    init(_ executable: String, _ args: [String], environment extra: [String: String], in directory: String) throws {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        errorFile = directory + "/job-\(UUID().uuidString).stderr"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), stops = sigset_t()
        sigemptyset(&none)
        sigemptyset(&stops)
        for s in [SIGTERM, SIGINT, SIGUSR1, SIGHUP] { sigaddset(&stops, s) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &stops)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // sh enters the directory, then becomes the launcher (same process, same signal state).
        let argv = (["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, executable] + args).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let code = posix_spawn(&child, "/bin/sh", &actions, &attributes, argv, envp)
        guard code == 0 else { throw ReferenceFailed(stderr: "posix_spawn \(executable): \(String(cString: strerror(code)))") }
        pid = child
    }

    /// Exits status when it has ended (a signal's number when one ended it).
    var hasEnded: Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return false }
        status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : raw & 0x7f
        return true
    }

    /// Waits up to `seconds` for the job to end (then kills it); its exit status and stderr.
    func finish(within seconds: Double) -> (status: Int32, stderr: String, seconds: Double) {
        let start = Date()
        while !hasEnded && Date().timeIntervalSince(start) < seconds { Thread.sleep(forTimeInterval: 0.05) }
        let took = Date().timeIntervalSince(start)
        if !hasEnded {
            kill(pid, SIGKILL)
            while !hasEnded { Thread.sleep(forTimeInterval: 0.05) }
        }
        return (status ?? -1, (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? "", took)
    }
}

/// Waits until `run`'s metrics.jsonl has `lines` lines (steps logged).
func waitForMetrics(_ run: String, lines: Int, seconds: Double = 120) {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let text = try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8),
           text.split(separator: "\n").count >= lines { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
}

/// Seconds between the logged ends of steps `step - 1` and `step`.
func stepSeconds(_ run: String, step: Int) throws -> Double {
    let records = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        .filter { $0["val_loss"] == nil }
    let elapsed = Dictionary(records.map { ($0["step"] as! Int, $0["elapsed_s"] as! Double) }) { a, _ in a }
    return (elapsed[step] ?? .nan) - (elapsed[step - 1] ?? 0)
}

struct ReferenceFailed: Error { let stderr: String }

@Suite(.serialized) struct LaunchTests {
    /// The uninterrupted 3-step run every preempted run must end equal to (computed once).
    static let reference: Result<String, Error> = Result {
        let dir = try longStepScratch()
        let full = try mpirun(2, ["long.yaml", "--run-dir", "full", "--quiet"], in: dir)
        guard full.status == 0 else { throw ReferenceFailed(stderr: full.stderr) }
        return try sha256(dir + "/full/model.safetensors")
    }

    @Test(arguments: [Launcher.launchMpirun, .slurmBatch])
    func sigtermToTheLauncherDuringALongStepCheckpointsThatStepAndResumesExactly(_ launcher: Launcher) throws {
        let dir = try longStepScratch()
        let tag = "preempt-\(UUID().uuidString)"
        let job = try Job(launcher, "long.yaml", ["--run-dir", tag], in: dir)
        waitForMetrics(dir + "/" + tag, lines: 1)   // step 1 is logged: step 2 is under way
        kill(job.pid, SIGTERM)
        let end = job.finish(within: 150)
        let step2 = try stepSeconds(dir + "/" + tag, step: 2)
        #expect(step2 > 2, "step 2 took \(step2) s: too short to show the launcher waits for it")
        #expect(checkpoints(dir + "/" + tag) == ["step-00000002"], "\(end.stderr)")
        #expect(end.stderr.contains("stopped by a signal after step 2"), "\(end.stderr)")
        #expect(end.status == 75, "\(launcher) exited \(end.status): \(end.stderr)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived \(launcher)")
        let resumed = try Job(launcher, "long.yaml", ["--run-dir", tag, "--resume", "latest"], in: dir).finish(within: 150)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try sha256(dir + "/" + tag + "/model.safetensors") == LaunchTests.reference.get(),
                "resumed after preemption through \(launcher) differs from the uninterrupted run")
    }

    /// A bare mpirun run as docs/distributed.md documents it (`--mca odls_base_sigkill_timeout 20`): OpenMPI
    /// passes the SIGTERM on to the ranks only after that timeout and SIGKILLs them after twice
    /// it, so they stop at the end of whichever step is running then, with a checkpoint; mpirun
    /// itself reports 1.
    @Test func sigtermToABareMpirunLeavesTheRanksTimeToCheckpoint() throws {
        let dir = try longStepScratch()
        let tag = "bare-\(UUID().uuidString)"
        let job = try Job(.bareMpirun, "long.yaml", ["--run-dir", tag, "--set", "training.steps=1000"], in: dir)
        waitForMetrics(dir + "/" + tag, lines: 1)
        kill(job.pid, SIGTERM)
        let end = job.finish(within: 150)
        #expect(end.status != 0, "\(end.stderr)")
        let saved = checkpoints(dir + "/" + tag)
        #expect(saved.count == 1 && saved[0] >= "step-00000002", "\(saved) \(end.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + tag + "/model.safetensors"), "the run was not stopped")
        let inspect = try loom(["inspect", tag + "/checkpoints/" + (saved.first ?? "none")], in: dir)
        #expect(inspect.status == 0 && inspect.stdout.contains("SHA-256 match"), "\(inspect.stdout)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived mpirun")
    }

    @Test func rankZeroSaysWhenABareMpirunWouldKillTheRanksBeforeACheckpoint() throws {
        let dir = try longStepScratch()
        let shorter = ["--set", "training.steps=1", "--set", "training.batch_size=16", "--set", "training.micro_batch_size=8"]
        let bare = try runProcess("/usr/bin/env", ["mpirun", "--bind-to", "none", "-n", "2", loomBinary(), "train", "long.yaml",
                                                   "--run-dir", "bare", "--json", "--set", "training.threads=1"] + shorter,
                                  in: dir, environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
        #expect(bare.status == 0, "\(bare.stderr)")
        // The note: 1 s (odls_base_sigkill_timeout) between a SIGTERM to mpirun and SIGKILL, less than a step.
        let note = events(bare.stdout, "kill_deadline").first
        #expect(note?["sigkill_timeout_s"] as? Double == 1 && (note?["step_s"] as? Double ?? 0) > 0.5, "\(bare.stdout)")
        let wrapped = try mpirun(2, ["long.yaml", "--run-dir", "wrapped", "--json"] + shorter, in: dir)
        #expect(wrapped.status == 0, "\(wrapped.stderr)")
        #expect(events(wrapped.stdout, "kill_deadline").isEmpty && trainSummary(wrapped.stdout)["steps"] as? Int == 1,
                "launch/mpirun forwards stops as SIGUSR1: no deadline")
    }

    @Test(arguments: [Launcher.launchMpirun, .slurmBatch], [SIGTERM, SIGINT, SIGUSR1])
    func theLauncherPassesStopSignalsOnAndNoRankOutlivesIt(_ launcher: Launcher, _ signal: Int32) throws {
        let dir = try checkpointScratch()
        let tag = "signal-\(signal)-\(UUID().uuidString)"
        let job = try Job(launcher, "ck.yaml", ["--run-dir", tag, "--set", "training.steps=100000",
                                               "--set", "checkpoint.interval=0", "--set", "evaluation.interval=0"], in: dir)
        waitForMetrics(dir + "/" + tag, lines: 3)
        #expect(loomProcesses(tag: tag).count == 2)
        kill(job.pid, signal)
        let end = job.finish(within: 60)
        #expect(end.status == 75, "\(launcher) after signal \(signal): exit \(end.status), \(end.stderr)")
        #expect(checkpoints(dir + "/" + tag).count == 1, "\(end.stderr)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived \(launcher) after signal \(signal)")
    }

    /// Runs rank 1 in its own mount namespace with `replacement` mounted over `path` (a stale copy
    /// on another node), rank 0 as usual.
    func trainWithRankOneSeeing(_ replacement: String, at path: String, config: String, in dir: String) throws -> Run {
        let loom = loomBinary()
        return try runProcess("/usr/bin/env", ["mpirun", "--oversubscribe", "-n", "1", loom, "train", config, "--run-dir", "mismatch",
                                               ":", "-n", "1", "unshare", "-m", "sh", "-c",
                                               "mount --bind \"$0\" \"$1\" && exec \"$2\" train \"$3\" --run-dir mismatch",
                                               replacement, path, loom, config],
                              in: dir, environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"])
    }

    /// The job refused to start, naming rank 1 and `file`, and wrote nothing.
    func expectRefusal(_ r: Run, naming file: String, in dir: String) {
        #expect(r.status != 0)
        #expect(r.stderr.contains("the data differs between ranks: rank(s) 1 disagree with rank 0"), "\(r.stderr)")
        #expect(r.stderr.contains("rank 1 reads another \(file)"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/mismatch"), "a refused job wrote a run directory")
    }

    static var canMakeMountNamespaces: Bool {
        (try? runProcess("/usr/bin/unshare", ["-m", "true"], in: "/").status) == 0
    }

    @Test(.enabled(if: canMakeMountNamespaces, "needs `unshare -m` (root) to give one rank another copy of a file"))
    func ranksReadingAnotherCopyOfTheCorpusRefuseToStart() throws {
        let dir = try checkpointScratch()
        var other = try String(contentsOfFile: dir + "/corpus.txt", encoding: .utf8)
        other = other.replacingOccurrences(of: "cat", with: "cot")   // same length, same characters but one
        try other.write(toFile: dir + "/stale-corpus.txt", atomically: true, encoding: .utf8)
        let r = try trainWithRankOneSeeing(dir + "/stale-corpus.txt", at: dir + "/corpus.txt", config: "ck.yaml", in: dir)
        expectRefusal(r, naming: "corpus.txt", in: dir)
        // The same file on both ranks starts as before.
        let same = try trainWithRankOneSeeing(dir + "/corpus.txt", at: dir + "/corpus.txt", config: "ck.yaml", in: dir)
        #expect(same.status == 0, "\(same.stderr)")
    }

    @Test(.enabled(if: canMakeMountNamespaces, "needs `unshare -m` (root) to give one rank another copy of a file"))
    func ranksReadingAnotherCopyOfOneShardRefuseToStart() throws {
        let dir = try checkpointScratch()
        let corpus = try String(contentsOfFile: dir + "/corpus.txt", encoding: .utf8)
        try corpus.replacingOccurrences(of: "dog", with: "log").write(toFile: dir + "/other.txt", atomically: true, encoding: .utf8)
        let tokenizer = try loom(["tokenizer", "train", "--vocab-size", "300", "--out", "tok.json", "corpus.txt"], in: dir)
        let a = try loom(["tokenize", "--tokenizer", "tok.json", "--out", "shards", "--shard-tokens", "2000", "corpus.txt"], in: dir)
        let b = try loom(["tokenize", "--tokenizer", "tok.json", "--out", "stale", "--shard-tokens", "2000", "other.txt"], in: dir)
        #expect(tokenizer.status == 0 && a.status == 0 && b.status == 0, "\(tokenizer.stderr)\(a.stderr)\(b.stderr)")
        let shardConfig = checkpointConfig.replacingOccurrences(of: "data: {corpus: corpus.txt}", with: "data: {shards: shards}")
        try shardConfig.write(toFile: dir + "/shards.yaml", atomically: true, encoding: .utf8)
        let r = try trainWithRankOneSeeing(dir + "/stale/shard-00002.bin", at: dir + "/shards/shard-00002.bin", config: "shards.yaml", in: dir)
        expectRefusal(r, naming: "shards/shard-00002.bin", in: dir)
    }

    @Test func aCoordinatorKilledWhileWritingACheckpointLeavesNothingHalfWrittenAfterItsRestart() throws {
        let dir = try longStepScratch()
        // Small steps, a checkpoint after each: most of the time goes into writing checkpoints.
        let args = ["train", "long.yaml", "--run-dir", "run", "--quiet", "--set", "training.steps=1000",
                    "--set", "training.batch_size=1", "--set", "training.micro_batch_size=1",
                    "--set", "checkpoint.interval=1", "--set", "checkpoint.keep=1"]
        var partial: String?
        for _ in 0..<5 where partial == nil {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: loomBinary())
            process.arguments = args + ["--resume", "auto"]
            process.currentDirectoryURL = URL(fileURLWithPath: dir)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning && Date() < deadline {
                let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/checkpoints")) ?? []
                if let temporary = entries.first(where: { $0.contains(".loomtmp-") }) {
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                    if FileManager.default.fileExists(atPath: dir + "/run/checkpoints/" + temporary) { partial = temporary }
                    break
                }
                usleep(2000)
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        let left = try #require(partial, "never caught the coordinator inside a checkpoint write")
        // Another host's temporary in the same directory is not this coordinator's to remove.
        let foreign = ".step-00000999.loomtmp-some-other-host-4242"
        try FileManager.default.createDirectory(atPath: dir + "/run/checkpoints/" + foreign, withIntermediateDirectories: false)
        let latest = (try? String(contentsOfFile: dir + "/run/checkpoints/latest", encoding: .utf8)) ?? "step-0"
        let step = try #require(Int(latest.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("step-".count)))
        let restart = try loom(args.filter { $0 != "--quiet" } + ["--resume", "auto", "--stop-after", "\(step + 1)", "--json"], in: dir)
        #expect(restart.status == 0, "\(restart.stderr)")
        #expect(events(restart.stdout, "removed_temporary").contains { ($0["path"] as? String ?? "").contains(left) }, "\(restart.stdout)")
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/checkpoints")
        #expect(!entries.contains(left), "the partial checkpoint \(left) is still there: \(entries)")
        #expect(entries.contains(foreign), "another host's temporary was removed")
    }
}
