// swift-tools-version:6.0
// Loom: a data-parallel Transformer trainer for CPUs. Targets are split by concern; data flows
// one way: loom (CLI) → Training → (Models, Distributed, Data) → Kernels → Support, and each
// target's `dependencies` list exactly the modules its files import.
import PackageDescription

let fast: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
/// The numeric core and the optimizer (Kernels, Training) are compiled for the x86-64-v3 level
/// (AVX2 + FMA, which every x86 CPU Loom targets has; Swift's -target-cpu spells it "haswell",
/// which adds only instructions the compiler does not emit on its own) instead of baseline SSE2: GELU, softmax and AdamW's 8-lane
/// Swift code runs ~2× faster. Such builds also define LOOM_FMA: the kernels' inner loops then use
/// fused multiply-adds (`FastMath.multiplyAdd`). The 16-lane AVX-512 kernels live in C
/// (CVectorKernels, each function with its own target attribute) and are chosen at run time
/// (`KernelISA`), so one binary serves AVX2 and AVX-512 CPUs. Set LOOM_PORTABLE=1 for a binary
/// that must also run on CPUs without AVX2 (baseline x86-64; the AVX-512 kernels still run where
/// the CPU has them). Off x86 the Swift code is compiled for the build machine's CPU.
#if arch(x86_64)
let cpuLevel = "haswell"
#else
let cpuLevel = "native"
#endif
let kernels: [SwiftSetting] = Context.environment["LOOM_PORTABLE"] == "1" ? fast
    : fast + [.unsafeFlags(["-target-cpu", cpuLevel], .when(configuration: .release)),
              .define("LOOM_FMA", .when(configuration: .release))]

let package = Package(
    name: "Loom",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "loom", targets: ["loom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System-library shims.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN (Debian's libdnnl-dev has no pkg-config file: the module map links "dnnl").
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        // Counts heap allocations so `loom bench` can prove the step loop allocates nothing.
        .target(name: "MallocCounter", dependencies: ["CSupport"], path: "Sources/MallocCounter"),

        // Stop requests from signals (SIGTERM/SIGINT/SIGUSR1), read at step boundaries.
        .target(name: "CSignals", path: "Sources/CSignals"),

        // What every layer needs: counter-based random, the thread pool, the monotonic clock,
        // atomic files, path names, SHA-256. CSupport is its spin-wait hint.
        .target(name: "CSupport", path: "Sources/CSupport"),
        .target(name: "Support", dependencies: ["CSupport"], swiftSettings: kernels),

        // Numeric core on raw Float buffers.
        // Floating-point environment controls (flush denormals) for the compute threads; cpuid.
        .target(name: "CKernelSupport", path: "Sources/CKernelSupport"),
        // The AVX-512 bodies of Loom's own kernels, run where cpuid allows (Kernels/KernelISA.swift).
        // No fused multiply-adds but the written ones, so results match the Swift reference.
        .target(name: "CVectorKernels", path: "Sources/CVectorKernels",
                cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),
        .target(name: "Kernels", dependencies: ["Support", "CBLAS", "CDNNL", "CKernelSupport", "CVectorKernels"], swiftSettings: kernels),
        // Parameters in one flat buffer; layers composed into GPT.
        .target(name: "Models", dependencies: ["Kernels", "Support"], swiftSettings: fast),
        // Tokenizers, corpora, the token sampler, shard files (no numerics: Support, not Kernels).
        .target(name: "Data", dependencies: ["Support"], swiftSettings: fast),
        // The narrow communicator the trainer talks through (MPI or one process), gradient buckets.
        .target(name: "Distributed", dependencies: ["CMPI", "Support"], swiftSettings: fast),
        // Optimizer, schedules, trainer loop, configs, checkpoints, metrics.
        .target(name: "Training",
                dependencies: ["Models", "Data", "Distributed", "Kernels", "Support", "CSignals", "CVectorKernels",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: kernels),
        // The command-line tool.
        .executableTarget(name: "loom",
                          dependencies: ["Training", "Models", "Data", "Distributed", "Kernels", "Support",
                                         "MallocCounter", "CSignals",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fast),

        // Tests mirror Sources/.
        .target(name: "TestSupport", dependencies: ["Kernels", "Distributed", "Support", "MallocCounter"], path: "Tests/TestSupport"),
        // Test helpers that need the whole library (a trained-looking translation model on disk).
        .target(name: "TrainingTestSupport", dependencies: ["Training", "Models", "Data", "Support"], path: "Tests/TrainingTestSupport"),
        .testTarget(name: "SupportTests", dependencies: ["Support", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Support", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Kernels", "Support", "TestSupport", "MallocCounter"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Support", "TestSupport"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Data", "Distributed", "Kernels", "Support", "TestSupport", "TrainingTestSupport"]),
        // Runs the built `loom` binary end to end (depending on it makes SwiftPM build it).
        .testTarget(name: "LoomCLITests", dependencies: ["loom", "Training", "Models", "Data", "Kernels", "Support", "TestSupport", "TrainingTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
