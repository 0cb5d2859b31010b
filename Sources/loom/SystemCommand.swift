// SystemCommand: `loom system [--json]` — Loom's version, the CPU (name, vendor, ISA features) and
// each GEMM engine with the kernels it runs and who chose them.
import ArgumentParser
import Foundation
import Kernels
import Support

struct SystemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "system", abstract: "Show the CPU, its instruction sets and the kernels each GEMM engine runs.")

    @Flag(help: "Print one JSON line (with \"rank\" when started by mpirun/srun).") var json = false
    @Flag(help: "Also measure the multiply-add ceilings (fp32 FMA, bf16 dot product) on every core at once (under a second).")
    var peak = false

    func run() throws {
        try reportingErrors {
            var fields = BLASStartup.fields()
            let env = ProcessInfo.processInfo.environment
            // A rank needs no MPI to say which one it is: the process manager tells it.
            if let rank = ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"].lazy.compactMap({ env[$0].flatMap(Int.init) }).first {
                fields["rank"] = rank
            }
            var measured: VectorPeak?
            if peak {
                ThreadPool.configure(threads: ProcessInfo.processInfo.activeProcessorCount)
                measured = VectorPeak.measure()
            }
            if let measured {
                fields["vector_peak"] = ["fp32_gflops": measured.fp32 ?? NSNull(), "fp32_instruction": measured.fp32Instruction,
                                         "bf16_gflops": measured.bf16 ?? NSNull(), "bf16_instruction": measured.bf16Instruction,
                                         "threads": measured.threads] as [String: Any]
            }
            if json {
                let out = try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
                print(String(decoding: out, as: UTF8.self))
                return
            }
            let s = BLASStartup.current
            print(BLASStartup.summary())
            print("  cpu              \(BLASStartup.cpuName(s.cpu)): \(s.cpu.vendor) family \(s.cpu.family) model \(s.cpu.model)")
            print("  features         \(s.cpu.extensions.sorted().map(\.rawValue).joined(separator: " "))")
            print("  sgemm            OpenBLAS \(s.core) (\(s.chooser.phrase)); best for this CPU: \(BLASCore.best(for: s.cpu) ?? "none beyond the SSE-era kernels")")
            print("                   OPENBLAS_CORETYPE=\(s.coreType ?? "(unset)"); \(BLASCore.configuration())")
            print("  oneDNN           " + BLASStartup.oneDNNPhrase + " (fp32 shapes under kernels.gemm onednn or auto; bf16 under onednn, or auto where faster)")
            print("  fp32 GEMM        " + (F32Gemm.available ? "Loom's \(F32Gemm.implementation) kernel (8×48 tile, FMA; kernels.gemm loom, auto)" : "none of Loom's (needs AVX-512): fp32 products on OpenBLAS or oneDNN"))
            print("  bf16 GEMM        " + (BF16Gemm.available ? "Loom's \(BF16Gemm.implementation) kernel (8×48 tile, vdpbf16ps; kernels.gemm \(BLASStartup.bf16GemmSelections))" : "none of Loom's (no AVX512_BF16): bf16 products on oneDNN"))
            print("  own kernels      \(BLASStartup.kernelISA) (SmallGemm, softmax, GELU, LayerNorm, AdamW; \(KernelISA.overrideVariable)=avx2 forces 8 lanes)")
            print("  attention        SmallGemm: \(SmallGemm.kernel)")
            if let measured { print("  vector peak      " + VectorPeakReport.phrase(measured)) }
            if let w = s.warning { print("  warning          \(w)") }
        }
    }
}

/// How `system --peak` and `bench` state the multiply-add ceilings.
enum VectorPeakReport {
    static func phrase(_ p: VectorPeak) -> String {
        let fp32 = p.fp32.map { String(format: "fp32 %.1f GFLOP/s (%@)", $0, p.fp32Instruction) } ?? "fp32: no FMA"
        let bf16 = p.bf16.map { String(format: "bf16 %.1f GFLOP/s (%@)", $0, p.bf16Instruction) } ?? "bf16: no AVX512_BF16"
        return "\(fp32), \(bf16); \(p.threads) thread(s) at once, independent multiply-adds only"
    }
}
