// swift-tools-version:6.0
// esapn — automated embedding size search (ESAPN, SIGIR 2020) as a distributed
// streaming trainer over MPI, with OpenBLAS for the dense maths.
//
// Targets, dependencies pointing one way (see ../shared/design/ARCHITECTURE.md §6):
//   CMPI, CBLAS        system libraries (pkg-config ompi-c, openblas)
//   CKernels           the few kernels compiled for AVX2 and chosen at run time (C)
//   Random             counter-based generator shared by data, kernels, training
//   Data               MovieLens readers and the stream file
//   Synth              the synthetic MovieLens-like generator and the stream diagnosis
//   Kernels            dense layers forward/backward, losses, Adam (uses CBLAS, CKernels)
//   Comm               the Communicator protocol, the local and counting ones, typed small
//                      collectives, the logical ranks of --deterministic
//   CommMPI            the MPI communicator: the only importer of CMPI
//   Embeddings         variable-width slab store, row optimizer, sharding, the exchange
//   Model              the model's layers: embedding formers, the state network, the dense head
//   Policies           FIXED, ESAPN, DARTS, AutoEmb behind one protocol
//   Checkpoints        checkpoint files: layout, manifest, SafeTensors, SHA-256, restore, resharding
//   Training           the streaming step and the training run (loop, checkpoints, progress, results)
//   Analysis           reading run folders: report, comparison, the scaling model
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
        .target(name: "Synth", dependencies: ["Data", "Random"]),
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["CBLAS", "CKernels", "Comm", "Random"]),
        .target(name: "Comm"),
        .target(name: "CommMPI", dependencies: ["Comm", "CMPI"]),
        .target(name: "Embeddings", dependencies: ["Kernels", "Comm", "Random"]),
        .target(name: "Model", dependencies: ["Kernels", "Embeddings", "Comm"]),
        .target(name: "Policies", dependencies: ["Model", "Kernels", "Embeddings", "Comm", "Random"]),
        .target(name: "Checkpoints", dependencies: ["Comm", "Data", "Embeddings", "Kernels"]),
        .target(name: "Training", dependencies: ["Checkpoints", "Data", "Kernels", "Comm", "Embeddings", "Model",
                                                 "Policies", "Random"]),
        .target(name: "Analysis", dependencies: ["Training"]),
        .executableTarget(name: "esapn", dependencies: [
            "Analysis", "Data", "Synth", "Training", "Comm", "CommMPI", "Embeddings", "Kernels", "Model",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", dependencies: ["Comm", "Embeddings", "Kernels", "Random"], path: "Tests/TestSupport"),
        .testTarget(name: "DataTests", dependencies: ["Data", "Random", "TestSupport"]),
        .testTarget(name: "SynthTests", dependencies: ["Synth", "Data", "Random", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "CommTests", dependencies: ["Comm", "TestSupport"]),
        .testTarget(name: "EmbeddingsTests", dependencies: ["Embeddings", "Kernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "PoliciesTests", dependencies: ["Policies", "Model", "Embeddings", "Kernels", "Comm", "Random",
                                                          "TestSupport"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "Training", "Data", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Analysis", "Checkpoints", "Data", "Synth", "Embeddings", "Model",
                                                         "Policies", "Kernels", "Comm", "Random", "TestSupport"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Training", "TestSupport"]),
    ]
)
