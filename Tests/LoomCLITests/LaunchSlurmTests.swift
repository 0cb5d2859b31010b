// Loom under a real Slurm: each test starts a private one-node cluster (launch/slurm-cluster),
// submits launch/slurm.sbatch or runs `srun -n 2 --mpi=pmix loom train`, stops the job during a
// long step the ways Slurm and its users do, and checks the checkpoint of that step, exit 75 from
// every rank and from the job, and an exact resume; the cluster is torn down even when a check fails.
import Testing
import Foundation

/// A private one-node Slurm cluster for one test: munged, slurmctld and slurmd with their state in
/// a scratch directory. Started by `init`, stopped by `stop()` (call it in a `defer`).
final class SlurmCluster {
    /// The cluster's state, logs, munge key and slurm.conf (`directory`), in a scratch directory.
    let scratch: String, directory: String
    /// KillWait: seconds between the SIGTERM of a cancelled or timed-out step and its SIGKILL.
    /// Longer than a long step plus a checkpoint on a busy 2-core machine.
    static let killWait = 120

    init() throws {
        scratch = try scratchDirectory()
        directory = scratch + "/slurm"
        // Started with an empty signal mask (see Job): slurmd hands its own to the jobs it starts.
        let start = try Job("/bin/bash", [repositoryRoot + "/launch/slurm-cluster", "start", directory],
                            environment: ["SLURM_KILL_WAIT": "\(SlurmCluster.killWait)"], in: scratch).finish(within: 120)
        guard start.status == 0 else {
            stop()
            throw ClusterFailed(message: "launch/slurm-cluster start exited \(start.status): \(start.stderr)")
        }
    }

    struct ClusterFailed: Error { let message: String }

    func stop() {
        _ = try? Job("/bin/bash", [repositoryRoot + "/launch/slurm-cluster", "stop", directory], environment: [:], in: scratch)
            .finish(within: 60)
    }

    var environment: [String: String] { ["SLURM_CONF": directory + "/slurm.conf", "LOOM_BIN": loomBinary()] }

    /// Runs a Slurm client command (sbatch, scancel, squeue, scontrol) against this cluster.
    func command(_ arguments: [String], in dir: String = "/tmp") throws -> Run {
        try runProcess("/usr/bin/env", arguments, in: dir, environment: environment)
    }

    /// Submits launch/slurm.sbatch from the repository (its submit directory) to run in `dir`;
    /// the job id.
    func submit(_ options: [String], _ trainArguments: [String], in dir: String, output: String) throws -> String {
        let r = try command(["sbatch", "--parsable", "--chdir=" + dir, "--output=" + output] + options
                            + [repositoryRoot + "/launch/slurm.sbatch"] + trainArguments, in: repositoryRoot)
        guard r.status == 0 else { throw ClusterFailed(message: "sbatch: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The only job in the queue (the one an `srun` started).
    func onlyJob(within seconds: Double = 30) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let ids = try command(["squeue", "-h", "-o", "%i"]).stdout.split(separator: "\n")
            if ids.count == 1 { return String(ids[0]) }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw ClusterFailed(message: "no single job in the queue")
    }

    /// Waits up to `seconds` for job `id` to leave the queue; its JobState and ExitCode ("75:0").
    func finish(_ id: String, within seconds: Double) throws -> (state: String, exitCode: String) {
        let deadline = Date().addingTimeInterval(seconds)
        func queued() throws -> Bool {
            let q = try command(["squeue", "-h", "-j", id])
            return q.status != 0 || !q.stdout.isEmpty
        }
        while Date() < deadline, try queued() {
            Thread.sleep(forTimeInterval: 0.3)
        }
        let show = try command(["scontrol", "show", "job", id]).stdout
        func field(_ name: String) -> String {
            show.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix(name + "=") }
                .map { String($0.dropFirst(name.count + 1)) } ?? "?"
        }
        return (field("JobState"), field("ExitCode"))
    }
}

/// How a job is stopped under Slurm.
enum SlurmStop: String, CustomStringConvertible, CaseIterable {
    /// What `--signal=B:TERM@N` delivers before the time limit: SIGTERM to the batch script alone.
    case batchTerm = "scancel --batch --signal=TERM"
    /// SIGTERM to the batch script's process group and to every step's tasks.
    case fullTerm = "scancel --full --signal=TERM"
    /// SIGTERM to every step's tasks, not to the batch script.
    case stepsTerm = "scancel --signal=TERM"
    /// What the time limit and a plain cancel do: SIGCONT and SIGTERM to every process of the job,
    /// SIGKILL after KillWait.
    case cancel = "scancel"
    var description: String { rawValue }
    var arguments: [String] { rawValue.split(separator: " ").map(String.init) }
}

/// Every rank's exit code 75, as srun reports it ("tasks 0-1: Exited with exit code 75", or one line per task).
func everyRankExited75(_ output: String) -> Bool {
    output.contains("tasks 0-1: Exited with exit code 75")
        || (output.contains("task 0: Exited with exit code 75") && output.contains("task 1: Exited with exit code 75"))
}

@Suite(.serialized) struct LaunchSlurmTests {
    @Test(arguments: SlurmStop.allCases)
    func aBatchJobStoppedDuringALongStepCheckpointsThatStepAndExits75(_ stop: SlurmStop) throws {
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let dir = try longStepScratch()
        let tag = "sbatch-\(UUID().uuidString)"
        let job = try cluster.submit([], ["long.yaml", "--run-dir", tag], in: dir, output: dir + "/stopped.out")
        waitForMetrics(dir + "/" + tag, lines: 1, seconds: 300)   // step 1 is logged: step 2 is under way
        let signal = try cluster.command(stop.arguments + [job])
        #expect(signal.status == 0, "\(stop): \(signal.stderr)")
        let end = try cluster.finish(job, within: 400)
        let output = (try? String(contentsOfFile: dir + "/stopped.out", encoding: .utf8)) ?? ""
        let step2 = try stepSeconds(dir + "/" + tag, step: 2)
        #expect(step2 > 2, "step 2 took \(step2) s: too short to show the ranks get the time for it")
        #expect(checkpoints(dir + "/" + tag) == ["step-00000002"], "\(output)")
        #expect(output.contains("stopped by a signal after step 2"), "\(output)")
        #expect(everyRankExited75(output), "\(output)")
        #expect(end.exitCode == "75:0", "after \(stop) the job ended \(end.state) with \(end.exitCode): \(output)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived the job")
        // The checkpoint of step 2 is the same however the job was stopped: two of the ways
        // resume from it (what --signal=B:TERM and the time limit send), the others verify it.
        guard stop == .batchTerm || stop == .cancel else {
            let inspect = try loom(["inspect", tag + "/checkpoints/step-00000002"], in: dir)
            #expect(inspect.status == 0 && inspect.stdout.contains("SHA-256 match"), "\(inspect.stdout)")
            return
        }
        let resumed = try cluster.submit([], ["long.yaml", "--run-dir", tag, "--resume", "latest"], in: dir, output: dir + "/resumed.out")
        let again = try cluster.finish(resumed, within: 400)
        #expect(again.state == "COMPLETED" && again.exitCode == "0:0",
                "\(again): \((try? String(contentsOfFile: dir + "/resumed.out", encoding: .utf8)) ?? "")")
        #expect(try sha256(dir + "/" + tag + "/model.safetensors") == LaunchTests.reference.get(),
                "resumed after \(stop) differs from the uninterrupted run")
    }

    /// The batch script's `--signal=B:TERM@N` before a short time limit (Slurm sends it up to a
    /// minute early): the job ends itself, with a checkpoint and 75, before the limit.
    @Test func aTimeLimitWithTheBatchScriptsSignalEndsInACheckpointAnd75() throws {
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let dir = try longStepScratch()
        let tag = "limit-\(UUID().uuidString)"
        let job = try cluster.submit(["--time=3", "--signal=B:TERM@120"], ["long.yaml", "--run-dir", tag, "--set", "training.steps=1000"],
                                     in: dir, output: dir + "/limit.out")
        let end = try cluster.finish(job, within: 3 * 60 + Double(SlurmCluster.killWait) + 30)
        let output = (try? String(contentsOfFile: dir + "/limit.out", encoding: .utf8)) ?? ""
        #expect(end.state == "FAILED" && end.exitCode == "75:0", "the job ended \(end.state) with \(end.exitCode): \(output)")
        #expect(everyRankExited75(output), "\(output)")
        let saved = checkpoints(dir + "/" + tag)
        let logged = try trainLosses(dir + "/" + tag).count
        #expect(saved == [String(format: "step-%08d", logged)], "\(saved) after \(logged) steps: \(output)")
        let inspect = try loom(["inspect", tag + "/checkpoints/" + (saved.first ?? "none")], in: dir)
        #expect(inspect.status == 0 && inspect.stdout.contains("SHA-256 match"), "\(inspect.stdout)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived the job")
    }

    /// `srun -n 2 --mpi=pmix loom train` stopped by SIGUSR1 to srun (which forwards it), a plain
    /// scancel (SIGTERM to the tasks, SIGKILL after KillWait) or `scancel --signal=TERM`; the
    /// plain scancel's checkpoint resumes to the uninterrupted run's weights.
    @Test(arguments: ["SIGUSR1 to srun", "scancel", "scancel --signal=TERM"])
    func srunStoppedDuringALongStepCheckpointsThatStepAndExits75(_ stop: String) throws {
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let dir = try longStepScratch()
        let tag = "srun-\(UUID().uuidString)"
        func srun(_ extra: [String]) throws -> Job {
            try Job("/usr/bin/env", ["srun", "-n", "2", "--mpi=pmix", loomBinary(), "train", "long.yaml", "--run-dir", tag,
                                     "--set", "training.threads=1"] + extra, environment: cluster.environment, in: dir)
        }
        let job = try srun([])
        waitForMetrics(dir + "/" + tag, lines: 1, seconds: 300)
        if stop == "SIGUSR1 to srun" {
            kill(job.pid, SIGUSR1)
        } else {
            let signal = try cluster.command(stop.split(separator: " ").map(String.init) + [try cluster.onlyJob()])
            #expect(signal.status == 0, "\(stop): \(signal.stderr)")
        }
        let end = job.finish(within: 400)
        #expect(checkpoints(dir + "/" + tag) == ["step-00000002"], "\(end.stderr)")
        #expect(everyRankExited75(end.stderr), "\(end.stderr)")
        #expect(end.status == 75, "srun after \(stop) exited \(end.status): \(end.stderr)")
        #expect(loomProcesses(tag: tag).isEmpty, "ranks outlived srun")
        guard stop == "scancel" else {
            let inspect = try loom(["inspect", tag + "/checkpoints/step-00000002"], in: dir)
            #expect(inspect.status == 0 && inspect.stdout.contains("SHA-256 match"), "\(inspect.stdout)")
            return
        }
        let resumed = try srun(["--resume", "latest"]).finish(within: 400)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try sha256(dir + "/" + tag + "/model.safetensors") == LaunchTests.reference.get(),
                "resumed after \(stop) differs from the uninterrupted run")
    }

    /// Tasks that srun started without a process manager would each train alone into the same run
    /// directory: they refuse, saying which `--mpi` to use.
    @Test func srunWithoutAProcessManagerRefusesToStart() throws {
        let cluster = try SlurmCluster()
        defer { cluster.stop() }
        let dir = try checkpointScratch()
        let r = try cluster.command(["srun", "-n", "2", "--mpi=none", loomBinary(), "train", "ck.yaml", "--run-dir", "alone"], in: dir)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("srun started 2 tasks (this is task 0)") && r.stderr.contains("srun started 2 tasks (this is task 1)"),
                "\(r.stderr)")
        #expect(r.stderr.contains("srun --mpi=pmix"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/alone"), "a refused task wrote a run directory")
        let joined = try cluster.command(["srun", "-n", "2", "--mpi=pmix", loomBinary(), "train", "ck.yaml", "--run-dir", "joined",
                                          "--set", "training.steps=2"], in: dir)
        #expect(joined.status == 0 && joined.stdout.contains("replicas: 2 ranks hold bit-identical parameters"), "\(joined.stderr)")
    }
}
