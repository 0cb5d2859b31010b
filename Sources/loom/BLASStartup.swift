// BLASStartup: the first thing `loom` does — compare OpenBLAS's kernels with the CPU and, when the
// library picked weaker ones than the CPU runs, start the program over with OPENBLAS_CORETYPE set
// (Kernels.BLASCore decides; this file reads the environment, re-executes and reports).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Kernels
import Training
import Distributed

enum BLASStartup {
    /// Set by Loom on its re-execution to the process id (execv keeps it): a child `loom` that
    /// inherits the variable has another id, so it still checks, and nothing can loop.
    static let markerVariable = "LOOM_BLAS_REEXEC"

    /// What the check found, for `loom system`, `loom train` and `loom bench`.
    struct State {
        var cpu: CPUFeatures
        var core: String
        var coreType: String?
        var reexecuted: Bool
        var chooser: BLASCore.Chooser
        var warning: String?
    }
    nonisolated(unsafe) static var state: State?

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// Runs before argument parsing, MPI and any Loom thread. Returns only when this process keeps
    /// its kernels (a successful re-execution does not return).
    static func check() {
        let reexecuted = environment(markerVariable) == String(getpid())
        unsetenv(markerVariable)
        let cpu = CPUFeatures.current(), core = BLASCore.current(), coreType = environment("OPENBLAS_CORETYPE")
        var warning: String?
        switch BLASCore.decide(cpu: cpu, library: core, coreType: coreType, reexecuted: reexecuted,
                               override: BLASCore.Override(environment("LOOM_BLAS_CORE"))) {
        case .keep: break
        case .keepWithWarning(let text): warning = text
        case .reexecute(let wanted):
            setenv("OPENBLAS_CORETYPE", wanted, 1)
            setenv(markerVariable, String(getpid()), 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            let reason = String(cString: strerror(errno))
            unsetenv(markerVariable)
            if let coreType { setenv("OPENBLAS_CORETYPE", coreType, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
            warning = "loom: cannot re-execute /proc/self/exe with OPENBLAS_CORETYPE=\(wanted) (\(reason)); continuing with OpenBLAS's \(core) kernels"
        }
        if let warning { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
        if let error = KernelISA.selection.error {
            FileHandle.standardError.write(Data("loom: \(error)\n".utf8))
            exit(2)
        }
        state = State(cpu: cpu, core: core, coreType: coreType, reexecuted: reexecuted,
                      chooser: BLASCore.chooser(library: core, coreType: coreType, reexecuted: reexecuted), warning: warning)
    }

    static var current: State {
        if let state { return state }
        let cpu = CPUFeatures.current(), core = BLASCore.current(), coreType = environment("OPENBLAS_CORETYPE")
        return State(cpu: cpu, core: core, coreType: coreType, reexecuted: false,
                     chooser: BLASCore.chooser(library: core, coreType: coreType, reexecuted: false))
    }

    /// The CPU's name: cpuid's brand string, else /proc/cpuinfo's "model name".
    static func cpuName(_ cpu: CPUFeatures) -> String {
        if !cpu.brand.isEmpty { return cpu.brand }
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        return "unknown CPU"
    }

    /// One line: Loom's version, the CPU, and each GEMM engine with its kernels.
    static func summary() -> String {
        let s = current, best = BLASCore.best(for: s.cpu)
        return "loom \(loomVersion) on \(cpuName(s.cpu)) (\(s.cpu.vendor) family \(s.cpu.family) model \(s.cpu.model), \(s.cpu.vectorLevel)); "
            + "sgemm: OpenBLAS \(BLASCore.version()) \(s.core) kernels (\(s.chooser.phrase)"
            + (best.map { $0.lowercased() == s.core.lowercased() ? ", the best for this CPU" : "; best for this CPU: \($0)" } ?? "")
            + "); " + oneDNNPhrase + "; own kernels: \(kernelISA); attention: SmallGemm \(SmallGemm.kernel)"
    }

    /// oneDNN's version, ISA and the implementations it picks for an fp32 and a bf16 product.
    static let oneDNN: (isa: String, fp32: String?, bf16: String?) = OneDNN.available
        ? (OneDNN.isa, OneDNN.implementation(bf16: false), OneDNN.implementation(bf16: true)) : ("", nil, nil)

    /// e.g. "oneDNN 2.6.3 avx512_core_bf16 (fp32 brg:avx512_core, bf16 brg:avx512_core_bf16)".
    static var oneDNNPhrase: String {
        guard OneDNN.available else { return "oneDNN: unavailable (no CPU engine)" }
        return "oneDNN \(OneDNN.version) \(oneDNN.isa) (fp32 \(oneDNN.fp32 ?? "none"), bf16 \(oneDNN.bf16 ?? "none"))"
    }

    /// The `kernels.gemm` selections under which Loom's bf16 kernel runs the bf16 products, as
    /// `GemmPlan` routes them (on an AMX CPU `openblas` and `loom` take oneDNN's AMX kernels).
    static var bf16GemmSelections: String {
        GemmPlan.bf16PrefersOneDNN ? "auto where faster than oneDNN" : "openblas, loom, auto unless oneDNN is faster"
    }

    /// The ISA of Loom's own kernels and who chose it: "AVX-512 (16 lanes, …), chosen by cpuid".
    static var kernelISA: String {
        let s = KernelISA.selection
        return "\(s.isa.summary), chosen by \(s.chosenBy == "cpuid" ? "cpuid" : "\(s.chosenBy)=\(s.isa.rawValue)")"
    }

    /// The same as JSON fields.
    static func fields() -> [String: Any] {
        let s = current
        return [
            "loom_version": loomVersion,
            "cpu": ["name": cpuName(s.cpu), "vendor": s.cpu.vendor, "family": s.cpu.family, "model": s.cpu.model,
                    "vector_level": s.cpu.vectorLevel, "features": s.cpu.extensions.sorted().map(\.rawValue)] as [String: Any],
            "blas": ["library": "OpenBLAS", "version": BLASCore.version(), "config": BLASCore.configuration(),
                     "core": s.core, "chosen_by": s.chooser.rawValue, "reexecuted": s.reexecuted,
                     "best_core": BLASCore.best(for: s.cpu) ?? NSNull(), "openblas_coretype": s.coreType ?? NSNull(),
                     "warning": s.warning ?? NSNull()] as [String: Any],
            "kernels_isa": ["isa": KernelISA.selected.rawValue, "lanes": KernelISA.selected.lanes,
                            "summary": KernelISA.selected.summary, "chosen_by": KernelISA.selection.chosenBy] as [String: Any],
            "onednn": ["available": OneDNN.available, "version": OneDNN.version, "isa": oneDNN.isa,
                       "fp32_implementation": oneDNN.fp32 ?? NSNull(), "bf16_implementation": oneDNN.bf16 ?? NSNull()] as [String: Any],
            "engines": [["name": "sgemm", "used_by": "linear layers, LM head", "kernel": "OpenBLAS \(s.core)", "chosen_by": s.chooser.rawValue],
                        ["name": "oneDNN matmul", "used_by": "product shapes kernels.gemm routes to it (onednn, auto; bf16)",
                         "kernel": "\(oneDNN.isa) \(oneDNN.fp32 ?? "none")", "chosen_by": "library (CPU dispatch)"],
                        ["name": "Loom fp32 GEMM", "used_by": "fp32 products under kernels.gemm loom, and auto where it is the fastest",
                         "kernel": F32Gemm.available ? "\(F32Gemm.implementation) 8x48 register tile (FMA)" : "none (needs AVX-512)",
                         "chosen_by": KernelISA.selection.chosenBy],
                        ["name": "Loom bf16 GEMM", "used_by": "bf16 products (\(bf16GemmSelections))",
                         "kernel": BF16Gemm.available ? "\(BF16Gemm.implementation) 8x48 register tile (vdpbf16ps)" : "none (no AVX512_BF16)",
                         "chosen_by": "cpuid"],
                        ["name": "SmallGemm", "used_by": "attention blocks", "kernel": SmallGemm.kernel,
                         "chosen_by": KernelISA.selection.chosenBy]],
        ]
    }

    /// Every rank's core and whether it is Loom's re-execution, in rank order (all ranks call it:
    /// an all-gather). The JSON of `loom bench` carries it as "blas_ranks".
    static func perRank(_ job: Communicator) -> [[String: Any]] {
        let s = current
        var record = [UInt8](repeating: 0, count: 64)
        let name = Array(s.core.utf8.prefix(62))
        record.replaceSubrange(0..<name.count, with: name)
        record[63] = s.reexecuted ? 1 : 0
        return job.allGather(record).enumerated().map { rank, r in
            ["rank": rank, "core": String(decoding: r[0..<62].prefix { $0 != 0 }, as: UTF8.self), "reexecuted": r[63] == 1]
        }
    }

    /// What `loom bench` reports of the kernels: every rank's core (all ranks call it: an
    /// all-gather), then on rank 0 the summary line and the ranks whose core differs from rank 0's
    /// (a mixed cluster), or the same as `--json` fields.
    struct BenchReport {
        let ranks: [[String: Any]]
        init(_ job: Communicator) { ranks = BLASStartup.perRank(job) }

        var fields: [String: Any] { ["system": summary(), "blas_core": current.core, "blas_ranks": ranks] }

        func print() {
            Swift.print("  " + summary())
            let mine = current.core
            let others = ranks.filter { ($0["core"] as? String) != mine }
            if others.isEmpty { return }
            Swift.print("  other ranks' OpenBLAS kernels: " + others.map { "rank \($0["rank"]!): \($0["core"]!)" }.joined(separator: ", "))
        }
    }
}
