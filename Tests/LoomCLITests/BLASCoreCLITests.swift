// The start-up OpenBLAS core check end to end: `loom system --json` re-executes itself onto the
// CPU's best kernels when told to correct a weak OPENBLAS_CORETYPE, respects it (with a warning)
// otherwise, never loops, and under `mpirun -n 2` both re-executed ranks still form the job.
import Testing
import Foundation

/// The OpenBLAS 0.3.21 core a CPU with these cpuid features (as `loom system` reports them) should
/// run, worked out here from the features rather than by Loom's own function; nil: nothing past SSE.
func expectedCore(vendor: String, features: [String]) -> String? {
    let f = Set(features)
    if f.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) {
        return f.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
    }
    if f.isSuperset(of: ["avx2", "fma"]) { return vendor == "AuthenticAMD" ? "Zen" : "Haswell" }
    return f.contains("avx") ? "Sandybridge" : nil
}

/// `loom system --json` with extra environment: the exit status, stderr, and the parsed line.
func system(_ environment: [String: String]) throws -> (run: Run, fields: [String: Any], blas: [String: Any], cpu: [String: Any]) {
    let r = try runProcess(loomBinary(), ["system", "--json"], in: try scratchDirectory(), environment: environment)
    let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
    return (r, fields, fields["blas"] as? [String: Any] ?? [:], fields["cpu"] as? [String: Any] ?? [:])
}

@Suite struct BLASCoreCLITests {
    @Test func autoCorrectsPrescottToTheCPUsBestCoreByReexecuting() throws {
        let s = try system(["OPENBLAS_CORETYPE": "Prescott", "LOOM_BLAS_CORE": "auto"])
        #expect(s.run.status == 0, "\(s.run.stderr)")
        let features = try #require(s.cpu["features"] as? [String], "no cpu.features in \(s.run.stdout)")
        let best = expectedCore(vendor: s.cpu["vendor"] as? String ?? "", features: features)
        #expect(s.blas["best_core"] as? String == best)
        if let best {
            #expect((s.blas["core"] as? String)?.lowercased() == best.lowercased(), "\(s.blas)")
            #expect(s.blas["reexecuted"] as? Bool == true && s.blas["chosen_by"] as? String == "loom re-exec", "\(s.blas)")
            #expect(s.blas["openblas_coretype"] as? String == best)
            #expect(s.run.stderr.isEmpty, "a successful correction prints nothing: \(s.run.stderr)")
        } else {
            #expect(s.blas["core"] as? String == "Prescott" && s.blas["reexecuted"] as? Bool == false, "\(s.blas)")
        }
        #expect(s.fields["loom_version"] is String)
        let engines = s.fields["engines"] as? [[String: Any]] ?? []
        #expect(engines.map { $0["name"] as? String } == ["sgemm", "oneDNN matmul", "Loom fp32 GEMM", "Loom bf16 GEMM", "SmallGemm"], "\(engines)")
    }

    @Test func aUserSetWeakerCoreIsKeptWithOneWarning() throws {
        let s = try system(["OPENBLAS_CORETYPE": "Prescott", "LOOM_BLAS_CORE": ""])
        #expect(s.run.status == 0, "\(s.run.stderr)")
        #expect(s.blas["core"] as? String == "Prescott" && s.blas["reexecuted"] as? Bool == false, "\(s.blas)")
        #expect(s.blas["chosen_by"] as? String == "user OPENBLAS_CORETYPE")
        let features = s.cpu["features"] as? [String] ?? []
        if let best = expectedCore(vendor: s.cpu["vendor"] as? String ?? "", features: features) {
            let lines = s.run.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("Prescott") && lines[0].contains(best), "\(s.run.stderr)")
        }
    }

    /// A marker inherited from another process does not stop the check (it holds that one's id),
    /// and a re-execution whose core the library does not give runs on with a warning, once.
    @Test func theReexecMarkerIsPerProcessAndAFailedRequestDoesNotLoop() throws {
        let inherited = try system(["OPENBLAS_CORETYPE": "Prescott", "LOOM_BLAS_CORE": "auto", "LOOM_BLAS_REEXEC": "1"])
        let features = inherited.cpu["features"] as? [String] ?? []
        let best = expectedCore(vendor: inherited.cpu["vendor"] as? String ?? "", features: features)
        #expect(inherited.blas["reexecuted"] as? Bool == (best != nil), "\(inherited.blas)")
        // Not a core of OpenBLAS 0.3.21: the library detects one itself, and Loom keeps it.
        let unknown = try system(["LOOM_BLAS_CORE": "NoSuchCore"])
        #expect(unknown.run.status == 0, "\(unknown.run.stderr)")
        #expect(unknown.blas["reexecuted"] as? Bool == true && unknown.blas["openblas_coretype"] as? String == "NoSuchCore", "\(unknown.blas)")
        #expect(unknown.blas["chosen_by"] as? String == "library")
        let lines = unknown.run.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("NoSuchCore") && lines[0].contains(unknown.blas["core"] as? String ?? "?"),
                "\(unknown.run.stderr)")
    }
}

extension MPITests {
    /// Both ranks of `mpirun -n 2` re-execute onto the CPU's best kernels before MPI starts, then
    /// join one job: the bench's all-reduce and all-gather run across them.
    @Test func reexecutedRanksStillFormTheJobAndReportTheCorrectedCore() throws {
        let dir = try mpiScratch()
        let r = try runProcess("/bin/bash", [repositoryRoot + "/launch/mpirun", "-n", "2", "bench", "mpi.yaml", "--steps", "2", "--warmup", "1", "--json"],
                               in: dir, environment: ["LOOM_BIN": loomBinary(), "OPENBLAS_CORETYPE": "Prescott", "LOOM_BLAS_CORE": "auto"])
        #expect(r.status == 0, "\(r.stderr)")
        let line = try #require(r.stdout.split(separator: "\n").last { $0.hasPrefix("{") }, "no JSON in \(r.stdout)")
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(fields["ranks"] as? Int == 2)
        let local = try system([:])
        let best = expectedCore(vendor: local.cpu["vendor"] as? String ?? "", features: local.cpu["features"] as? [String] ?? [])
        let ranks = fields["blas_ranks"] as? [[String: Any]] ?? []
        #expect(ranks.map { $0["rank"] as? Int } == [0, 1], "\(ranks)")
        for rank in ranks {
            #expect((rank["core"] as? String)?.lowercased() == (best ?? "Prescott").lowercased(), "\(rank)")
            #expect(rank["reexecuted"] as? Bool == (best != nil), "\(rank)")
        }
        #expect((fields["system"] as? String)?.contains(best ?? "Prescott") == true, "\(fields["system"] ?? "")")
    }
}
