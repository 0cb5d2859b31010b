// The run-time kernel ISA end to end: `loom system --json` names the choice cpuid made (worked out
// here from the reported features), LOOM_KERNELS_ISA forces the 8-lane path or stops Loom with an
// error naming the variable, and `bench --against-kernels-isa` alternates both paths in one process.
import Testing
import Foundation

@Suite struct KernelISACLITests {
    func isa(_ fields: [String: Any]) -> [String: Any] { fields["kernels_isa"] as? [String: Any] ?? [:] }

    @Test func systemNamesTheRunTimeChoice() throws {
        let s = try system(["LOOM_KERNELS_ISA": ""])
        #expect(s.run.status == 0, "\(s.run.stderr)")
        let features = Set(s.cpu["features"] as? [String] ?? [])
        let wide = features.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"])
        #expect(isa(s.fields)["isa"] as? String == (wide ? "avx512" : "avx2"), "\(s.fields)")
        #expect(isa(s.fields)["lanes"] as? Int == (wide ? 16 : 8) && isa(s.fields)["chosen_by"] as? String == "cpuid")
        let engines = s.fields["engines"] as? [[String: Any]] ?? []
        let smallGemm = engines.first { $0["name"] as? String == "SmallGemm" } ?? [:]
        #expect((smallGemm["kernel"] as? String ?? "").contains(wide ? "AVX-512" : "SIMD8"), "\(smallGemm)")
        let f32Gemm = engines.first { $0["name"] as? String == "Loom fp32 GEMM" } ?? [:]
        #expect((f32Gemm["kernel"] as? String ?? "").hasPrefix(wide ? "avx512" : "none"), "\(f32Gemm)")

        let forced = try system(["LOOM_KERNELS_ISA": "avx2"])
        #expect(forced.run.status == 0, "\(forced.run.stderr)")
        #expect(isa(forced.fields)["isa"] as? String == "avx2" && isa(forced.fields)["chosen_by"] as? String == "LOOM_KERNELS_ISA")
        let forcedEngines = forced.fields["engines"] as? [[String: Any]] ?? []
        let forcedF32 = forcedEngines.first { $0["name"] as? String == "Loom fp32 GEMM" } ?? [:]
        #expect((forcedF32["kernel"] as? String ?? "").hasPrefix("none"), "8 lanes forced: no AVX-512 fp32 GEMM \(forcedF32)")
    }

    /// `loom system` with LOOM_KERNELS_ISA set to `value`, not parsed (a refusal prints no JSON).
    func systemRun(_ value: String) throws -> Run {
        try runProcess(loomBinary(), ["system", "--json"], in: try scratchDirectory(), environment: ["LOOM_KERNELS_ISA": value])
    }

    @Test func aBadOverrideStopsLoomNamingTheVariable() throws {
        let unknown = try systemRun("sse9")
        #expect(unknown.status != 0 && unknown.stdout.isEmpty && unknown.stderr.contains("LOOM_KERNELS_ISA=sse9"), "\(unknown.stderr)")
        let features = Set(try system(["LOOM_KERNELS_ISA": ""]).cpu["features"] as? [String] ?? [])
        let avx512 = try systemRun("avx512")
        if features.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            #expect(avx512.status == 0, "\(avx512.stderr)")
        } else {
            #expect(avx512.status != 0 && avx512.stderr.contains("LOOM_KERNELS_ISA=avx512"), "\(avx512.stderr)")
        }
    }

    @Test func benchAlternatesBothKernelPathsInOneProcess() throws {
        let dir = try scratchDirectory()
        try String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
            .write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let r = try runProcess(loomBinary(), ["bench", "tiny.yaml", "--steps", "20", "--warmup", "1", "--json", "--against-kernels-isa", "avx2"],
                               in: dir, environment: ["LOOM_KERNELS_ISA": ""])
        #expect(r.status == 0, "\(r.stderr)")
        let fields = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect((fields["against"] as? String ?? "").contains("kernels ISA avx2"), "\(r.stdout)")
        #expect((fields["block_ratios"] as? [Double])?.count == 2, "\(r.stdout)")
        // The header names the start-up choice, not the side that ran last (avx2, on an AVX-512 CPU).
        let startup = isa(try system(["LOOM_KERNELS_ISA": ""]).fields)["isa"] as? String
        let header = fields["system"] as? String ?? ""
        #expect(header.contains(startup == "avx512" ? "own kernels: AVX-512" : "own kernels: AVX2"), "\(header)")
        let refused = try loom(["bench", "tiny.yaml", "--steps", "10", "--against-kernels-isa", "neon"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("--against-kernels-isa neon"), "\(refused.stderr)")
    }
}
