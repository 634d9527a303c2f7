// swift-tools-version:6.0
import PackageDescription

// Kernels are unchecked in release builds, where they are hot. Debug builds keep every bounds and
// overflow check but optimise (-O): unoptimised generic code ran the tests' end-to-end training 15×
// slower than release, nearly all of it in the runtime's generic-metadata lookups.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "workbench",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "workbench", targets: ["WorkbenchCLI"]),
        .library(name: "WorkbenchKit", targets: ["Tensor", "Autograd", "NN", "ImageIO", "Segmentation", "Diffusion", "Classification", "DataParallel", "Workbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries: OpenBLAS, and libpng/libjpeg behind setjmp-safe shims.
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("openblas")]),
        .target(name: "CImageCodecs", linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg"), .linkedLibrary("z")]),
        // Open MPI's C API, loaded at run time (dlopen): builds without MPI, data-parallel where it is installed.
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl")]),

        // Tensors, kernels, random numbers, threads, safetensors.
        .target(name: "Tensor", dependencies: ["CKernels"], swiftSettings: kernelSettings),
        // Reverse-mode automatic differentiation over a tape.
        .target(name: "Autograd", dependencies: ["Tensor"], swiftSettings: kernelSettings),
        // Layers, blocks, the seed U-Net, losses, optimisers, checkpoints.
        .target(name: "NN", dependencies: ["Tensor", "Autograd"], swiftSettings: kernelSettings),
        // PNG/JPEG decoding and encoding, resizing, palettes, grids.
        .target(name: "ImageIO", dependencies: ["CImageCodecs", "Tensor"], swiftSettings: kernelSettings),
        // Head 1: VOC segmentation (reader, targets, metrics, prediction).
        .target(name: "Segmentation", dependencies: ["Tensor", "Autograd", "NN", "ImageIO"], swiftSettings: kernelSettings),
        // Head 2: DDPM (diffusion math, noise predictor, samplers, bits/dim, data sources).
        .target(name: "Diffusion", dependencies: ["CImageCodecs", "Tensor", "Autograd", "NN", "ImageIO"], swiftSettings: kernelSettings),
        // Data-parallel training: the process group (ranks, collectives) over MPI.
        .target(name: "DataParallel", dependencies: ["CMPI", "Tensor"]),
        // Head 3: an image classifier from the shared layers (accuracy; features for classifier-FID).
        .target(name: "Classification", dependencies: ["Tensor", "Autograd", "NN", "ImageIO"], swiftSettings: kernelSettings),
        // Experiment files, run directories, the jobs the command line runs.
        .target(name: "Workbench", dependencies: ["Tensor", "Autograd", "NN", "ImageIO", "Segmentation", "Diffusion", "Classification", "DataParallel", "Yams"]),
        // The command-line tool: commands only.
        .executableTarget(name: "WorkbenchCLI", dependencies: [
            "Workbench", "DataParallel", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The AVX-512 GEMMs on emulated instructions, so their tests run on every x86-64 CPU.
        .target(name: "CKernelsEmulated", path: "Tests/CKernelsEmulated", cSettings: [
            .headerSearchPath("../../Sources/CKernels/include"), .unsafeFlags(["-mavx2", "-mfma", "-Wno-psabi"]),
        ]),
        .target(name: "TestSupport", dependencies: ["Tensor", "Autograd"], path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "TestSupport", "CKernelsEmulated"]),
        .testTarget(name: "AutogradTests", dependencies: ["Autograd", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO", "TestSupport"]),
        .testTarget(name: "SegmentationTests", dependencies: ["Segmentation", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ClassificationTests", dependencies: ["Classification", "TestSupport"], exclude: ["Fixtures"]),
        // Depends on the executable so that building the tests builds the `workbench` its CLI tests launch.
        .testTarget(name: "WorkbenchTests", dependencies: ["Workbench", "WorkbenchCLI", "Tensor", "NN", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
