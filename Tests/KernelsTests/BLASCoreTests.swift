// BLASCore's decision (CPU features + the library's core + OPENBLAS_CORETYPE + re-exec marker in,
// keep / re-execute / warn out) on the CPUs it was written for, and the cpuid read against Linux's
// own view of this CPU (/proc/cpuinfo).
import Testing
import Foundation
import Kernels

let sse: Set<ISAExtension> = [.sse3, .ssse3, .sse4_1, .sse4_2]
let avx2: Set<ISAExtension> = sse.union([.avx, .avx2, .fma])
let avx512: Set<ISAExtension> = avx2.union([.avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512cd])

/// Intel Xeon Emerald Rapids (family 6 model 207): AVX-512 with BF16, and AMX; OpenBLAS 0.3.21
/// does not know the model and loads its Prescott kernels.
let emeraldRapids = CPUFeatures(vendor: "GenuineIntel", brand: "INTEL(R) XEON(R) PLATINUM 8581C", family: 6, model: 207,
                                extensions: avx512.union([.avx512_bf16, .amx_bf16, .amx_tile, .amx_int8]))
/// AMD Zen 3 (family 25 model 1): AVX2 + FMA, no AVX-512.
let zen3 = CPUFeatures(vendor: "AuthenticAMD", brand: "AMD EPYC 7B13", family: 25, model: 1, extensions: avx2)
/// AMD Zen 5 (family 26 model 2, the machine Loom is measured on): AVX-512 with BF16, no AMX.
let zen5 = CPUFeatures(vendor: "AuthenticAMD", brand: "AMD EPYC", family: 26, model: 2, extensions: avx512.union([.avx512_bf16]))
/// Intel Skylake-SP: AVX-512 without BF16.
let skylake = CPUFeatures(vendor: "GenuineIntel", family: 6, model: 85, extensions: avx512)

@Suite struct BLASCoreTests {
    @Test func bestCoreFollowsTheWidestUsableInstructions() {
        #expect(BLASCore.best(for: emeraldRapids) == "Cooperlake")
        #expect(BLASCore.best(for: zen5) == "Cooperlake")
        #expect(BLASCore.best(for: skylake) == "SkylakeX")
        #expect(BLASCore.best(for: zen3) == "Zen")
        #expect(BLASCore.best(for: CPUFeatures(vendor: "GenuineIntel", extensions: avx2)) == "Haswell")
        #expect(BLASCore.best(for: CPUFeatures(vendor: "GenuineIntel", extensions: sse.union([.avx]))) == "Sandybridge")
        #expect(BLASCore.best(for: CPUFeatures(vendor: "GenuineIntel", extensions: sse)) == nil)
        // AVX-512 F alone (no BW/VL/DQ/CD) is not enough for the SkylakeX kernels.
        #expect(BLASCore.best(for: CPUFeatures(vendor: "GenuineIntel", extensions: avx2.union([.avx512f]))) == "Haswell")
        // BF16 without the AVX-512 base (an OS that does not save ZMM state leaves neither usable).
        #expect(BLASCore.best(for: CPUFeatures(vendor: "GenuineIntel", extensions: avx2.union([.avx512_bf16]))) == "Haswell")
        #expect(BLASCore.best(for: CPUFeatures(vendor: "", extensions: [])) == nil)
    }

    @Test func coreNamesRankByInstructionSetCaseInsensitively() throws {
        let tiers: [[String]] = [
            ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Opteron", "Barcelona", "Bobcat", "Katmai"],
            ["Sandybridge", "Bulldozer", "Piledriver", "Steamroller", "Excavator"],
            ["Haswell", "Zen"], ["SkylakeX"], ["Cooperlake"]]
        for (i, lower) in tiers.enumerated() {
            for name in lower {
                let r = try #require(BLASCore.rank(name), "\(name) unranked")
                #expect(BLASCore.rank(name.uppercased()) == r && BLASCore.rank(name.lowercased()) == r)
                for higher in tiers[(i + 1)...].joined() {
                    #expect(r < BLASCore.rank(higher)!, "\(name) should rank below \(higher)")
                }
            }
        }
        #expect(BLASCore.rank("Zen4") == nil && BLASCore.rank("") == nil)
    }

    @Test func emeraldRapidsOnPrescottReexecutesWithCooperlake() {
        #expect(BLASCore.decide(cpu: emeraldRapids, library: "Prescott", coreType: nil, reexecuted: false)
                == .reexecute(core: "Cooperlake"))
        // An empty variable is an unset one.
        #expect(BLASCore.decide(cpu: emeraldRapids, library: "Prescott", coreType: "", reexecuted: false)
                == .reexecute(core: "Cooperlake"))
        #expect(BLASCore.decide(cpu: skylake, library: "Haswell", coreType: nil, reexecuted: false) == .reexecute(core: "SkylakeX"))
    }

    @Test func aPickAtTheBestRankIsKept() {
        // Zen 3: the library's Zen or Haswell kernels are both AVX2 + FMA.
        #expect(BLASCore.decide(cpu: zen3, library: "Zen", coreType: nil, reexecuted: false) == .keep)
        #expect(BLASCore.decide(cpu: zen3, library: "Haswell", coreType: nil, reexecuted: false) == .keep)
        #expect(BLASCore.decide(cpu: zen3, library: "Sandybridge", coreType: nil, reexecuted: false) == .reexecute(core: "Zen"))
        // This machine (Zen 5): the library picks Cooperlake itself.
        #expect(BLASCore.decide(cpu: zen5, library: "Cooperlake", coreType: nil, reexecuted: false) == .keep)
        #expect(BLASCore.decide(cpu: zen5, library: "cooperlake", coreType: nil, reexecuted: false, override: .auto) == .keep)
        // Above the best (a newer library's AMX kernels) is never lowered.
        #expect(BLASCore.decide(cpu: emeraldRapids, library: "SapphireRapids", coreType: nil, reexecuted: false, override: .auto) == .keep)
    }

    @Test func aWeakerCoreTheUserSetIsKeptWithOneWarningNamingBoth() {
        guard case .keepWithWarning(let text) = BLASCore.decide(cpu: zen5, library: "Haswell", coreType: "Haswell", reexecuted: false) else {
            Issue.record("a user's OPENBLAS_CORETYPE=Haswell on Zen 5 should be kept with a warning"); return
        }
        #expect(text.contains("Haswell") && text.contains("Cooperlake") && !text.contains("\n"), "\(text)")
        guard case .keepWithWarning = BLASCore.decide(cpu: emeraldRapids, library: "Prescott", coreType: "prescott", reexecuted: false,
                                                      override: .keep) else {
            Issue.record("LOOM_BLAS_CORE=keep should keep a weaker user core with a warning"); return
        }
        // A user core at the best rank: nothing to say.
        #expect(BLASCore.decide(cpu: zen3, library: "Haswell", coreType: "Haswell", reexecuted: false) == .keep)
        // LOOM_BLAS_CORE=auto corrects even the user's choice.
        #expect(BLASCore.decide(cpu: zen5, library: "Haswell", coreType: "Haswell", reexecuted: false, override: .auto)
                == .reexecute(core: "Cooperlake"))
        // LOOM_BLAS_CORE=keep never re-executes, also when the library picked the weak core itself.
        guard case .keepWithWarning = BLASCore.decide(cpu: emeraldRapids, library: "Prescott", coreType: nil, reexecuted: false,
                                                      override: .keep) else {
            Issue.record("LOOM_BLAS_CORE=keep should not re-execute"); return
        }
    }

    @Test func aReexecutedProcessNeverReexecutesAgain() {
        #expect(BLASCore.decide(cpu: emeraldRapids, library: "Cooperlake", coreType: "Cooperlake", reexecuted: true) == .keep)
        for override: BLASCore.Override in [.standard, .auto, .keep, .force("SkylakeX")] {
            let d = BLASCore.decide(cpu: emeraldRapids, library: "Prescott", coreType: "Cooperlake", reexecuted: true, override: override)
            guard case .keepWithWarning(let text) = d else { Issue.record("\(override): \(d)"); continue }
            #expect(text.contains("Cooperlake") && text.contains("Prescott"), "\(text)")
        }
    }

    @Test func unknownCoreNamesAreLeftAloneUnlessForced() {
        // A library core Loom cannot rank is not second-guessed.
        #expect(BLASCore.decide(cpu: zen5, library: "Zen4", coreType: nil, reexecuted: false) == .keep)
        #expect(BLASCore.decide(cpu: zen5, library: "Zen4", coreType: nil, reexecuted: false, override: .auto) == .keep)
        // OPENBLAS_CORETYPE=SapphireRapids is not in 0.3.21's list: the library detected Cooperlake itself.
        #expect(BLASCore.decide(cpu: emeraldRapids, library: "Cooperlake", coreType: "SapphireRapids", reexecuted: false) == .keep)
        #expect(BLASCore.chooser(library: "Cooperlake", coreType: "SapphireRapids", reexecuted: false) == .library)
        // "Unknown" is OpenBLAS's own name for its generic kernels.
        #expect(BLASCore.decide(cpu: zen3, library: "Unknown", coreType: nil, reexecuted: false) == .reexecute(core: "Zen"))
        // A CPU with nothing beyond SSE (or not x86) has nothing better to ask for.
        #expect(BLASCore.decide(cpu: CPUFeatures(vendor: "", extensions: []), library: "Prescott", coreType: nil, reexecuted: false) == .keep)
        // LOOM_BLAS_CORE=NAME forces any name, even one Loom does not rank, unless it already runs.
        #expect(BLASCore.decide(cpu: zen5, library: "Cooperlake", coreType: nil, reexecuted: false, override: .force("SapphireRapids"))
                == .reexecute(core: "SapphireRapids"))
        #expect(BLASCore.decide(cpu: zen5, library: "Haswell", coreType: "Haswell", reexecuted: false, override: .force("haswell")) == .keep)
    }

    @Test func overrideAndChooserReadTheirInputs() {
        #expect(BLASCore.Override(nil) == .standard && BLASCore.Override("") == .standard)
        #expect(BLASCore.Override("KEEP") == .keep && BLASCore.Override("Auto") == .auto)
        #expect(BLASCore.Override("SkylakeX") == .force("SkylakeX"))
        #expect(BLASCore.chooser(library: "Haswell", coreType: nil, reexecuted: false) == .library)
        #expect(BLASCore.chooser(library: "Haswell", coreType: "haswell", reexecuted: false) == .user)
        #expect(BLASCore.chooser(library: "Cooperlake", coreType: "Cooperlake", reexecuted: true) == .loom)
        #expect(BLASCore.chooser(library: "Cooperlake", coreType: "SapphireRapids", reexecuted: true) == .library)
    }

    /// cpuid + xgetbv against the kernel's flags: Linux lists a feature only when the CPU has it
    /// and the kernel enabled its register state, which is what "usable" means here.
    @Test func cpuidAgreesWithProcCpuinfo() throws {
        #if arch(x86_64)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: ":")[1].split(separator: " ").map(String.init))
        let cpu = CPUFeatures.current()
        for e in ISAExtension.allCases {
            let name = e == .sse3 ? "pni" : e.rawValue
            #expect(cpu.extensions.contains(e) == flags.contains(name), "\(e): cpuid \(cpu.extensions.contains(e)), /proc/cpuinfo \(flags.contains(name))")
        }
        let vendor = info.split(separator: "\n").first { $0.hasPrefix("vendor_id") }.map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces) }
        #expect(cpu.vendor == vendor)
        let family = info.split(separator: "\n").first { $0.hasPrefix("cpu family") }.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        let model = info.split(separator: "\n").first { $0.hasPrefix("model\t") }.flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
        #expect(cpu.family == family && cpu.model == model, "cpuid family \(cpu.family) model \(cpu.model)")
        #endif
    }
}
