// BLASCore: which OpenBLAS kernels ("core") this process runs, what the CPU could run, and the
// decision whether to start over with a better one. The loom CLI re-executes, first thing in
// main; this file reads nothing from the environment: callers pass in what they read, so the
// decision is a pure function.
import CBLAS
import CKernelSupport

/// An instruction-set extension, named as Linux's /proc/cpuinfo flags name it.
public enum ISAExtension: String, CaseIterable, Sendable, Comparable {
    case sse3, ssse3, sse4_1, sse4_2, avx, avx2, fma
    case avx512f, avx512bw, avx512vl, avx512dq, avx512cd, avx512_bf16
    case amx_bf16, amx_tile, amx_int8

    public static func < (a: ISAExtension, b: ISAExtension) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The CPU as cpuid reports it: vendor, model, and the extensions a program may use (the CPU has
/// them and the OS saves their register state).
public struct CPUFeatures: Equatable, Sendable {
    /// cpuid's vendor string: "GenuineIntel", "AuthenticAMD", … ("" off x86).
    public var vendor: String
    /// The brand string, e.g. "AMD EPYC 7B13" ("" when the CPU gives none).
    public var brand: String
    public var family: Int
    public var model: Int
    /// Usable extensions only: an AVX-512 CPU under an OS that does not save ZMM state has none.
    public var extensions: Set<ISAExtension>

    public init(vendor: String, brand: String = "", family: Int = 0, model: Int = 0, extensions: Set<ISAExtension>) {
        self.vendor = vendor; self.brand = brand; self.family = family; self.model = model; self.extensions = extensions
    }

    /// The CPU this process runs on (cpuid and xgetbv through CKernelSupport).
    public static func current() -> CPUFeatures {
        var raw = loom_cpu_features()
        loom_cpu_features_read(&raw)
        func text<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingSpaces()
            }
        }
        let bits: [(Bool, ISAExtension)] = [
            (raw.sse3, .sse3), (raw.ssse3, .ssse3), (raw.sse4_1, .sse4_1), (raw.sse4_2, .sse4_2),
            (raw.avx_usable, .avx), (raw.avx2_usable, .avx2), (raw.fma_usable, .fma),
            (raw.avx512f_usable, .avx512f), (raw.avx512bw_usable, .avx512bw), (raw.avx512vl_usable, .avx512vl),
            (raw.avx512dq_usable, .avx512dq), (raw.avx512cd_usable, .avx512cd), (raw.avx512_bf16_usable, .avx512_bf16),
            (raw.amx_bf16_usable, .amx_bf16), (raw.amx_tile_usable, .amx_tile), (raw.amx_int8_usable, .amx_int8)]
        return CPUFeatures(vendor: text(raw.vendor), brand: text(raw.brand), family: Int(raw.family), model: Int(raw.model),
                           extensions: Set(bits.filter { $0.0 }.map { $0.1 }))
    }

    /// Whether every one of `e` is usable (kernels need a whole family, e.g. AVX-512 F+BW+VL+DQ+CD).
    public func has(_ e: ISAExtension...) -> Bool { e.allSatisfy(extensions.contains) }

    /// The widest vector level, for one-line summaries: "AVX-512 + BF16 + AMX", "AVX2 + FMA", …
    public var vectorLevel: String {
        var level = has(.avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512cd) ? "AVX-512"
            : has(.avx2, .fma) ? "AVX2 + FMA" : has(.avx) ? "AVX" : has(.sse3) ? "SSE3" : "baseline"
        if level == "AVX-512" && has(.avx512_bf16) { level += " + BF16" }
        if has(.amx_tile, .amx_bf16) { level += " + AMX" }
        return level
    }
}

private extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// OpenBLAS's x86-64 kernel sets ("cores", as `openblas_get_corename()` and OPENBLAS_CORETYPE name
/// them), ranked by the widest instructions their sgemm uses. Names compare case-insensitively.
public enum BLASCore {
    /// Ranks: 0 SSE-era, 1 AVX, 2 AVX2 + FMA, 3 AVX-512, 4 AVX-512 + BF16, 5 AMX.
    static let ranks: [String: Int] = {
        var r: [String: Int] = [:]
        for name in ["unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
                     "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat"] { r[name] = 0 }
        for name in ["sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"] { r[name] = 1 }
        for name in ["haswell", "zen"] { r[name] = 2 }
        r["skylakex"] = 3
        r["cooperlake"] = 4
        // Not in Debian 12's OpenBLAS 0.3.21 (OPENBLAS_CORETYPE=SapphireRapids there means "detect"),
        // so never asked for; a newer library that picks it picks above anything Loom would ask.
        r["sapphirerapids"] = 5
        return r
    }()

    /// The rank of a core name, nil when the name is not an OpenBLAS x86-64 core Loom knows.
    public static func rank(_ name: String) -> Int? { ranks[name.lowercased()] }

    /// The best core Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) has for `cpu`, nil when it has
    /// nothing beyond the SSE-era kernels (or the CPU is not x86).
    public static func best(for cpu: CPUFeatures) -> String? {
        if cpu.has(.avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512cd) {
            return cpu.has(.avx512_bf16) ? "Cooperlake" : "SkylakeX"
        }
        if cpu.has(.avx2, .fma) { return cpu.vendor == "AuthenticAMD" || cpu.vendor == "HygonGenuine" ? "Zen" : "Haswell" }
        if cpu.has(.avx) { return "Sandybridge" }
        return nil
    }

    /// The core OpenBLAS loaded in this process (it chose when the library was loaded).
    public static func current() -> String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build line, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public static func configuration() -> String {
        guard let text = openblas_get_config() else { return "" }
        return String(cString: text)
    }

    /// The library's version ("0.3.21"), read from its build line; "" if it does not say.
    public static func version() -> String {
        let words = configuration().split(separator: " ")
        guard let i = words.firstIndex(of: "OpenBLAS"), i + 1 < words.count else { return "" }
        return String(words[i + 1])
    }

    /// What LOOM_BLAS_CORE asks for.
    public enum Override: Equatable, Sendable {
        /// Unset or empty: correct the library's own pick; respect a user's OPENBLAS_CORETYPE.
        case standard
        /// `keep`: never re-execute.
        case keep
        /// `auto`: correct any pick below the CPU's best, even one the user's OPENBLAS_CORETYPE made.
        case auto
        /// Any other value: run this core (re-execute unless it already runs).
        case force(String)

        public init(_ value: String?) {
            switch value?.lowercased() {
            case nil, "": self = .standard
            case "keep": self = .keep
            case "auto": self = .auto
            default: self = .force(value!)
            }
        }
    }

    /// Who chose the core this process runs (the raw value is the `--json` spelling).
    public enum Chooser: String, Sendable {
        case library = "library"
        case loom = "loom re-exec"
        case user = "user OPENBLAS_CORETYPE"

        /// How summaries say it: "chosen by the library", …
        public var phrase: String {
            switch self {
            case .library: return "chosen by the library"
            case .loom: return "chosen by Loom's re-exec"
            case .user: return "chosen by the user's OPENBLAS_CORETYPE"
            }
        }
    }

    /// What the start-up check does with the core it found.
    public enum Decision: Equatable, Sendable {
        /// Run on with the core loaded.
        case keep
        /// Start this program again (same arguments) with OPENBLAS_CORETYPE set to `core`.
        case reexecute(core: String)
        /// Run on, but print `warning` (one line): the core is weaker than the CPU can run, or a
        /// re-execution did not get the core it asked for.
        case keepWithWarning(String)
    }

    /// Whether to start over with other kernels.
    ///
    /// - Parameters:
    ///   - cpu: what the CPU can run.
    ///   - library: the core loaded (`openblas_get_corename()`).
    ///   - coreType: OPENBLAS_CORETYPE as this process received it (nil when unset).
    ///   - reexecuted: this process is Loom's own re-execution, so `coreType` is Loom's request
    ///     and nothing is ever re-executed again.
    ///   - override: LOOM_BLAS_CORE.
    ///
    /// Why: OpenBLAS 0.3.21 chooses from a table of CPU models; on a CPU newer than its table
    /// (Intel Emerald Rapids) it falls back to Prescott (SSE3) kernels, a fraction of the CPU's sgemm rate. The
    /// choice is made once, when the library loads, so the only fix is a fresh start with
    /// OPENBLAS_CORETYPE set. Only a pick that ranks below the best is corrected: names Loom does
    /// not know are left alone.
    public static func decide(cpu: CPUFeatures, library: String, coreType: String?, reexecuted: Bool,
                              override: Override = .standard) -> Decision {
        let coreType = coreType.flatMap { $0.isEmpty ? nil : $0 }
        if reexecuted {
            guard let asked = coreType, asked.lowercased() != library.lowercased() else { return .keep }
            return .keepWithWarning("loom: re-executed with OPENBLAS_CORETYPE=\(asked), but OpenBLAS runs its \(library) kernels; continuing with them")
        }
        let best = best(for: cpu)
        let weaker: Bool = {
            guard let best, let have = rank(library), let want = rank(best) else { return false }
            return have < want
        }()
        switch override {
        case .force(let name):
            return name.lowercased() == library.lowercased() ? .keep : .reexecute(core: name)
        case .auto:
            return weaker ? .reexecute(core: best!) : .keep
        case .keep, .standard:
            if let user = coreType, weaker {
                return .keepWithWarning("loom: OPENBLAS_CORETYPE=\(user) makes OpenBLAS run its \(library) kernels, but this CPU (\(cpu.vectorLevel)) can run \(best!); unset it, or set LOOM_BLAS_CORE=auto")
            }
            if override == .keep {
                return weaker ? .keepWithWarning("loom: OpenBLAS runs its \(library) kernels, but this CPU (\(cpu.vectorLevel)) can run \(best!); kept (LOOM_BLAS_CORE=keep)") : .keep
            }
            return weaker ? .reexecute(core: best!) : .keep
        }
    }

    /// Who chose `library`: whoever set OPENBLAS_CORETYPE to it (Loom when this is its
    /// re-execution, else the user), or the library itself (variable unset, or naming a core the
    /// library does not know or cannot run here, so that it detected one).
    public static func chooser(library: String, coreType: String?, reexecuted: Bool) -> Chooser {
        guard let coreType, coreType.lowercased() == library.lowercased() else { return .library }
        return reexecuted ? .loom : .user
    }
}
