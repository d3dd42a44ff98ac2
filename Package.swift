// swift-tools-version:6.0
// esapn — automated embedding size search (ESAPN, SIGIR 2020) as a distributed
// streaming trainer over MPI, with OpenBLAS for the dense maths.
//
// Targets, dependencies pointing one way (see ../shared/design/ARCHITECTURE.md §6):
//   CMPI, CBLAS        system libraries (pkg-config ompi-c, openblas)
//   Random             counter-based generator shared by data, kernels, training
//   Data               MovieLens readers, the stream file, the synthetic generator
//   CKernels           the few kernels compiled for AVX2 and chosen at run time (C)
//   Kernels            dense layers forward/backward, losses, Adam (uses CBLAS, CKernels)
//   Comm               the Communicator protocol and the single-process one
//   CommMPI            the MPI communicator: the only importer of CMPI
//   Embeddings         variable-width slab store, row optimizer, sharded exchange
//   Policies           FIXED, ESAPN, DARTS, AutoEmb behind one protocol
//   Training           the streaming step, metrics, reports
//   esapn              the CLI: the only place that picks MPI or single-process
//
// Internal invariant checks compile only with `-Xswiftc -DESAPN_CHECKS`.
import PackageDescription

let package = Package(
    name: "esapn",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "esapn", targets: ["esapn"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "Random"),
        .target(name: "Data", dependencies: ["Random"]),
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["CBLAS", "CKernels", "Comm", "Random"]),
        .target(name: "Comm"),
        .target(name: "CommMPI", dependencies: ["Comm", "CMPI"]),
        .target(name: "Embeddings", dependencies: ["Kernels", "Comm", "Random"]),
        .target(name: "Policies", dependencies: ["Kernels", "Embeddings", "Comm", "Random"]),
        .target(name: "Training", dependencies: ["Data", "Kernels", "Comm", "Embeddings", "Policies", "Random"]),
        .executableTarget(name: "esapn", dependencies: [
            "Data", "Training", "Comm", "CommMPI", "Embeddings", "Kernels", "Policies",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", dependencies: ["Comm", "Kernels", "Random"], path: "Tests/TestSupport"),
        .testTarget(name: "DataTests", dependencies: ["Data", "Random", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "CommTests", dependencies: ["Comm", "TestSupport"]),
        .testTarget(name: "EmbeddingsTests", dependencies: ["Embeddings", "Kernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "PoliciesTests", dependencies: ["Policies", "Embeddings", "Kernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Data", "Embeddings", "Policies", "Kernels", "Comm",
                                                         "Random", "TestSupport"]),
    ]
)
