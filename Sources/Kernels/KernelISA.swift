// KernelISA: which vector width Loom's own kernels (SmallGemm, softmax, GELU, LayerNorm, AdamW)
// run at, chosen once per process from cpuid, so one binary serves AVX2 and AVX-512 CPUs. The
// kernels themselves are in CVectorKernels and in the Swift SIMD8 code of each kernel's file; the
// BLAS choice is BLASCore.swift.
import CKernelSupport
import CVectorKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction set Loom's own kernels use. Every kernel has the 8-lane Swift SIMD path;
/// those that the profile shows also have a 16-lane AVX-512 path in C (CVectorKernels), each
/// function compiled with its own target attribute, so it is in every x86-64 binary and runs only
/// where cpuid says the CPU and OS support AVX-512 F/BW/VL/DQ.
public enum KernelISA: String, CaseIterable, Sendable {
    /// 16 lanes: CVectorKernels' AVX-512 functions (32 zmm registers, masked edges).
    case avx512
    /// 8 lanes: the Swift SIMD8 code, compiled for the build's CPU level (x86-64-v3: AVX2 + FMA;
    /// baseline SSE2 in a `LOOM_PORTABLE=1` build).
    case avx2

    /// The environment variable that forces a choice: `avx2`, `avx512` or `auto` (or unset).
    public static let overrideVariable = "LOOM_KERNELS_ISA"

    /// What the start-up choice found: the ISA, who chose it, and an error when the override
    /// asked for something this CPU or value cannot give (the ISA is then the CPU's best).
    public struct Selection: Sendable, Equatable {
        public var isa: KernelISA
        /// "cpuid" or "LOOM_KERNELS_ISA".
        public var chosenBy: String
        public var error: KernelISAError?
        public init(isa: KernelISA, chosenBy: String, error: KernelISAError? = nil) {
            self.isa = isa; self.chosenBy = chosenBy; self.error = error
        }
    }

    /// The process's choice, made on first use from cpuid and LOOM_KERNELS_ISA.
    public static let selection: Selection = {
        let value = getenv(overrideVariable).map { String(cString: $0) }
        return choose(cpu: CPUFeatures.current(), avx512Compiled: loom_avx512_compiled(), requested: value)
    }()

    /// The ISA every kernel uses unless a caller (a test) names another: the start-up choice.
    /// `loom bench --against-kernels-isa` switches it between blocks of steps, while no kernel
    /// runs (a job's threads read it after the pool hands them the job); nothing else writes it.
    nonisolated(unsafe) public static var selected: KernelISA = selection.isa

    /// The choice as a pure function: the CPU's best (AVX-512 when F, BW, VL and DQ are usable
    /// and the build carries the AVX-512 functions, else the Swift SIMD8 path), unless `requested`
    /// names one. A request this CPU cannot run, or an unknown value, gives the best with an error.
    public static func choose(cpu: CPUFeatures, avx512Compiled: Bool, requested: String?) -> Selection {
        let best: KernelISA = avx512Compiled && supportsAVX512(cpu) ? .avx512 : .avx2
        guard let raw = requested?.lowercased(), !raw.isEmpty, raw != "auto" else {
            return Selection(isa: best, chosenBy: "cpuid", error: nil)
        }
        guard let asked = KernelISA(rawValue: raw) else {
            return Selection(isa: best, chosenBy: "cpuid", error: .unknown(requested!))
        }
        if asked == .avx512 && best != .avx512 {
            return Selection(isa: best, chosenBy: "cpuid", error: .unsupported(cpu.vectorLevel))
        }
        return Selection(isa: asked, chosenBy: overrideVariable, error: nil)
    }

    /// Whether the AVX-512 kernels may run on `cpu`.
    public static func supportsAVX512(_ cpu: CPUFeatures) -> Bool {
        cpu.has(.avx512f, .avx512bw, .avx512vl, .avx512dq)
    }

    /// The ISAs this process can run (tests compare them): `.avx2` always, `.avx512` where cpuid
    /// and the build allow it.
    public static var available: [KernelISA] {
        loom_avx512_compiled() && supportsAVX512(CPUFeatures.current()) ? [.avx2, .avx512] : [.avx2]
    }

    /// 16 or 8.
    public var lanes: Int { self == .avx512 ? 16 : 8 }

    /// How run headers and `loom system` name it.
    public var summary: String {
        switch self {
        case .avx512: return "AVX-512 (16 lanes, C with target attributes)"
        case .avx2:
            #if !arch(x86_64)
            return "8 lanes (Swift SIMD8 built for this machine's CPU)"
            #elseif LOOM_FMA
            return "AVX2 + FMA (8 lanes, Swift SIMD8 built for x86-64-v3)"
            #else
            return "8 lanes (Swift SIMD8, portable build: separate multiplies and adds)"
            #endif
        }
    }
}

/// Why LOOM_KERNELS_ISA could not be followed.
public enum KernelISAError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknown(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .unknown(let value):
            return "LOOM_KERNELS_ISA=\(value) is not a kernel ISA: use avx2, avx512 or auto (or unset it)"
        case .unsupported(let level):
            return "LOOM_KERNELS_ISA=avx512, but this CPU (\(level)) or build cannot run the AVX-512 kernels: use avx2 or auto (or unset it)"
        }
    }
}
