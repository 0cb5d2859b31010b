// Multi-host runs over TCP on launch/cluster's network namespaces: 2 hosts × 1 and × 2 ranks train
// the curve of one process with bit-identical replicas, a run resumes on another host count, a
// lossy, slow link changes nothing, a host whose link goes down ends the job on every rank with a
// message naming the silent rank, and a job whose host dies goes on without it (--max-restarts).
// Skipped where namespaces cannot be made (not root).
import Testing
import Foundation

/// True when this process may make network namespaces (root with CAP_NET_ADMIN and iproute2).
let namespacesAvailable: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            || FileManager.default.isExecutableFile(atPath: "/sbin/ip") else { return false }
    let name = "loom-probe-\(getpid())"
    guard let made = try? runProcess("/usr/bin/env", ["ip", "netns", "add", name], in: "/"), made.status == 0 else { return false }
    _ = try? runProcess("/usr/bin/env", ["ip", "netns", "del", name], in: "/")
    return true
}()

let launchDirectory = repositoryRoot + "/launch"

/// `launch/cluster --hosts H --slots S -- command…` with this build's binary.
func cluster(hosts: Int, slots: Int, _ command: [String], in directory: String,
             environment extra: [String: String] = [:]) throws -> Run {
    try runProcess("/usr/bin/timeout", ["300", "/bin/bash", repositoryRoot + "/launch/cluster", "--hosts", "\(hosts)", "--slots", "\(slots)", "--"]
                   + command, in: directory, environment: extra.merging(["LOOM_BIN": loomBinary()]) { a, _ in a })
}

/// launch/mpirun inside the cluster (it takes the cluster's hostfile), with the placement printed.
func clusterTrain(hosts: Int, slots: Int, _ arguments: [String], in directory: String) throws -> Run {
    try cluster(hosts: hosts, slots: slots, ["/bin/bash", repositoryRoot + "/launch/mpirun", "-n", "\(hosts * slots)", "--threads", "1"] + arguments,
                in: directory, environment: ["MPIRUN_ARGS": "--display-map"])
}

@Suite(.serialized, .enabled(if: namespacesAvailable, "needs root and network namespaces (ip netns) for launch/cluster"))
struct ClusterTests {
    @Test(arguments: [1, 2])
    func twoHostsTrainTheCurveOfOneProcess(slots: Int) throws {
        let dir = try mpiScratch()
        let one = try loom(["train", "mpi.yaml", "--run-dir", "one", "--quiet", "--set", "training.steps=20"], in: dir)
        let many = try clusterTrain(hosts: 2, slots: slots, ["mpi.yaml", "--run-dir", "many", "--json", "--set", "training.steps=20",
                                                             "--set", "training.micro_batch_size=\(4 / slots)"], in: dir)
        #expect(one.status == 0 && many.status == 0, "\(one.stderr)\(many.stderr)")
        // The map OpenMPI printed puts ranks on both hosts, which reach each other only over TCP.
        #expect(many.stdout.contains("Data for node: h0") && many.stdout.contains("Data for node: h1"), "\(many.stdout)")
        let summary = trainSummary(many.stdout)
        #expect(summary["ranks"] as? Int == 2 * slots, "\(many.stdout)")
        // The run ends with an error if the replicas' parameter hashes differ.
        #expect((summary["parameter_sha256"] as? String)?.count == 64, "\(many.stdout)")
        expectCloseCurves(try trainLosses(dir + "/many"), try trainLosses(dir + "/one"), "2 hosts × \(slots) vs 1 process")
    }

    @Test func aRunResumesOnAnotherHostCount() throws {
        let dir = try checkpointScratch()
        let full = try loom(["train", "ck.yaml", "--run-dir", "full", "--quiet"], in: dir)
        let first = try clusterTrain(hosts: 2, slots: 1, ["ck.yaml", "--run-dir", "moved", "--quiet", "--stop-after", "15"], in: dir)
        let rest = try clusterTrain(hosts: 1, slots: 2, ["ck.yaml", "--run-dir", "moved", "--quiet", "--resume", "latest"], in: dir)
        #expect(full.status == 0 && first.status == 0 && rest.status == 0, "\(full.stderr)\(first.stderr)\(rest.stderr)")
        expectCloseCurves(try trainLosses(dir + "/moved"), try trainLosses(dir + "/full"), "2 hosts → 1 host × 2 ranks")
    }

    /// 2 % of each host's TCP packets dropped, its rate limited to 100 Mbit/s and its packets
    /// delayed by 5 ms (netem where the kernel has it, otherwise nftables, tbf and launch/netdelay.c).
    @Test func aLossySlowDelayedLinkChangesNothing() throws {
        let dir = try mpiScratch()
        let clean = try clusterTrain(hosts: 2, slots: 1, ["mpi.yaml", "--run-dir", "clean", "--quiet", "--set", "training.steps=12"], in: dir)
        let shape = "--loss 2 --rate 100mbit --delay 5ms"
        // A connection refused costs one round trip: SYN out of h0, RST out of h1, each delayed
        // 5 ms. The best of 10 (no process started between the clock readings) is printed.
        let shaped = try cluster(hosts: 2, slots: 1, ["/bin/bash", "-c", """
            \(launchDirectory)/cluster shape h0 \(shape) && \(launchDirectory)/cluster shape h1 \(shape) || exit 1
            best=999999999
            for i in $(seq 10); do
                t0=$EPOCHREALTIME; { : 3<>/dev/tcp/10.213.0.2/9; } 2>/dev/null; t1=$EPOCHREALTIME
                us=$(( ${t1/./} - ${t0/./} )); [ $us -lt $best ] && best=$us
            done
            echo "round_trip_us $best"
            bash \(launchDirectory)/mpirun -n 2 --threads 1 mpi.yaml --run-dir shaped --quiet --set training.steps=12 || exit 1
            ip netns exec $LOOM_CLUSTER-h1 nft list ruleset 2>/dev/null | grep -o 'packets [0-9]*' || echo 'netem'
            """], in: dir)
        #expect(clean.status == 0 && shaped.status == 0, "\(clean.stderr)\(shaped.stderr)")
        #expect(try trainLosses(dir + "/shaped") == trainLosses(dir + "/clean"))
        let lines = shaped.stdout.split(separator: "\n")
        let roundTrip = lines.compactMap { $0.hasPrefix("round_trip_us ") ? Int($0.dropFirst(14)) : nil }.first ?? 0
        #expect(roundTrip >= 10_000, "the round trip between h0 and h1 took \(roundTrip) µs, not the 10 ms of two 5 ms delays: \(shaped.stdout)")
        // Packets were dropped indeed (nftables counts them; netem keeps no count).
        if !lines.contains("netem") {
            let dropped = lines.compactMap { $0.hasPrefix("packets ") ? Int($0.dropFirst(8)) : nil }
            #expect((dropped.first ?? 0) > 0, "no packet was dropped: \(shaped.stdout)")
        }
    }

    @Test func aHostWhoseLinkGoesDownEndsTheJobOnEveryRank() throws {
        let dir = try mpiScratch()
        let timeout = 10
        // Training runs on h0 and h1; once it has logged steps, h1's cable is pulled. Then the
        // script waits for the job and reports, before the cluster is torn down, which Loom
        // processes are left on either host.
        let script = """
            bash \(launchDirectory)/mpirun -n 2 --threads 1 mpi.yaml --run-dir down --set training.steps=1000000 \
                --set distributed.timeout_seconds=\(timeout) & job=$!
            until [ "$(wc -l < down/metrics.jsonl 2>/dev/null || echo 0)" -ge 5 ]; do sleep 0.2; done
            \(launchDirectory)/cluster link h1 down; down=$(date +%s)
            wait $job; status=$?
            echo "status $status after $(( $(date +%s) - down )) s"
            for h in h0 h1; do echo "left on $h: $(ip netns pids $LOOM_CLUSTER-$h | xargs -r ps -o comm= -p | grep -c loom)"; done
            """
        let r = try cluster(hosts: 2, slots: 1, ["/bin/bash", "-c", script], in: dir)
        let report = r.stdout.split(separator: "\n").filter { $0.hasPrefix("status ") || $0.hasPrefix("left on ") }
        #expect(report.count == 3, "\(r.stdout)\(r.stderr)")
        if let line = report.first, let status = Int(line.split(separator: " ")[1]), let seconds = Int(line.split(separator: " ")[3]) {
            #expect(status != 0, "the job exited 0 although a host was lost")
            #expect(seconds <= timeout + 30, "the job took \(seconds) s to end after the link went down")
        }
        #expect(report.dropFirst().allSatisfy { $0.hasSuffix(": 0") }, "ranks outlived the job: \(report)")
        #expect(r.stderr.contains("still waiting for rank 1"), "\(r.stderr)")
        #expect(r.stderr.contains("distributed.timeout_seconds = \(timeout)"), "\(r.stderr)")
    }

    @Test func aJobWhoseHostDiesGoesOnWithoutIt() throws {
        let dir = try mpiScratch()
        let settings = "--set training.steps=300 --set checkpoint.interval=40 --set checkpoint.keep=100 --set logging.interval=1"
        // Once training is past a checkpoint, the rank on h1 is killed.
        let script = """
            bash \(launchDirectory)/mpirun -n 2 --threads 1 --max-restarts 1 mpi.yaml --run-dir elastic --json \(settings) > elastic.out & job=$!
            until [ "$(wc -l < elastic/metrics.jsonl 2>/dev/null || echo 0)" -ge 60 ]; do sleep 0.05; done
            ip netns pids $LOOM_CLUSTER-h1 | xargs -r ps -o pid=,comm= -p | awk '$2 == "loom" {print $1}' | xargs -r kill -9
            wait $job; echo "status $?"
            """
        let r = try cluster(hosts: 2, slots: 1, ["/bin/bash", "-c", script], in: dir)
        #expect(r.stdout.contains("status 0"), "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("leaving out host h1 (its ranks died)"), "\(r.stderr)")
        #expect(r.stderr.contains("continuing on 1 host(s), 1 rank(s) instead of 2"), "\(r.stderr)")
        let out = try String(contentsOfFile: dir + "/elastic.out", encoding: .utf8)
        let resumed = events(out, "resumed").first?["step"] as? Int
        #expect(trainSummary(out)["ranks"] as? Int == 1, "\(out)")
        // The checkpoint the restart resumed from, resumed again by one process without the
        // failure (in a copy of the run): the same model, bit for bit.
        try FileManager.default.copyItem(atPath: dir + "/elastic", toPath: dir + "/reference")
        let checkpoint = String(format: "reference/checkpoints/step-%08d", resumed ?? -1)
        let reference = try loom(["train", "mpi.yaml", "--run-dir", "reference", "--json", "--resume", checkpoint,
                                  "--set", "training.steps=300", "--set", "checkpoint.interval=40", "--set", "checkpoint.keep=100",
                                  "--set", "logging.interval=1", "--set", "training.threads=1"], in: dir)
        #expect(reference.status == 0, "\(reference.stderr)")
        #expect(events(reference.stdout, "resumed").first?["step"] as? Int == resumed && resumed != nil, "\(reference.stdout)")
        #expect(try sha256(dir + "/elastic/model.safetensors") == sha256(dir + "/reference/model.safetensors"))
    }
}
