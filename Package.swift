// swift-tools-version:6.0
// Loom: a data-parallel Transformer trainer for CPUs. Targets are split by concern; data flows
// one way: loom (CLI) → Training → (Models, Distributed, Data) → Kernels → CBLAS, CDNNL.
import PackageDescription

let fast: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
/// The numeric core and the optimizer (Kernels, Training) are also compiled for the building
/// machine's CPU (AVX2/AVX-512 and FMA instead of baseline SSE2): GELU, softmax and AdamW run
/// ~2× faster, the tiny GPT step ~6 %. Such builds also define LOOM_FMA: the kernels' inner
/// loops then use fused multiply-adds (`FastMath.multiplyAdd`; attention's SmallGemm ~1.5×).
/// Set LOOM_PORTABLE=1 when building a binary that must run on other (older) CPUs, e.g. mixed
/// clusters.
let kernels: [SwiftSetting] = Context.environment["LOOM_PORTABLE"] == "1" ? fast
    : fast + [.unsafeFlags(["-target-cpu", "native"], .when(configuration: .release)),
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
        .target(name: "MallocCounter", path: "Sources/MallocCounter"),

        // Stop requests from signals (SIGTERM/SIGINT/SIGUSR1), read at step boundaries.
        .target(name: "CSignals", path: "Sources/CSignals"),

        // Numeric core on raw Float buffers.
        // Floating-point environment controls (flush denormals) for the compute threads; cpuid.
        .target(name: "CKernelSupport", path: "Sources/CKernelSupport"),
        .target(name: "Kernels", dependencies: ["CBLAS", "CDNNL", "CKernelSupport"], swiftSettings: kernels),
        // Parameters in one flat buffer; layers composed into GPT.
        .target(name: "Models", dependencies: ["Kernels"], swiftSettings: fast),
        // Tokenizers, corpora, the token sampler.
        .target(name: "Data", dependencies: ["Kernels"], swiftSettings: fast),
        // The narrow communicator the trainer talks through (MPI or one process), gradient buckets.
        .target(name: "Distributed", dependencies: ["CMPI"], swiftSettings: fast),
        // Optimizer, schedules, trainer loop, configs, checkpoints, metrics.
        .target(name: "Training",
                dependencies: ["Models", "Data", "Distributed", "Kernels", "CSignals",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: kernels),
        // The command-line tool.
        .executableTarget(name: "loom",
                          dependencies: ["Training", "Kernels", "MallocCounter", "CSignals",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: fast),

        // Tests mirror Sources/.
        .target(name: "TestSupport", dependencies: ["Kernels"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Kernels", "TestSupport", "MallocCounter"]),
        .testTarget(name: "DataTests", dependencies: ["Data"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Data", "Kernels", "TestSupport"]),
        // Runs the built `loom` binary end to end (depending on it makes SwiftPM build it).
        .testTarget(name: "LoomCLITests", dependencies: ["loom", "Training", "Models", "Data", "Kernels"]),
    ],
    swiftLanguageModes: [.v5]
)
