// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "artifactfs",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "artifactfs", targets: ["artifactfs"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // libfuse3 through pkg-config, with inline wrappers for what Swift cannot import.
        .systemLibrary(
            name: "CFuse3",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        // Linux calls that Glibc's module does not expose (syncfs, renameat2).
        .target(name: "CSystemShims"),
        // xxHash (header only, inlined): the per-block checksums of blobs.
        .systemLibrary(name: "CXXHash", providers: [.apt(["libxxhash-dev"])]),
        // Schemas of tabular files (CSV, TSV, JSON Lines, Parquet's footer): one file per
        // format, streaming, never throwing. Depends on nothing of ours.
        .target(name: "TabularSchemas"),
        // Blob store, catalog, namespace, ingest and maintenance. No FUSE here.
        .target(
            name: "ArtifactCore",
            dependencies: [
                "CSystemShims", "CXXHash", "TabularSchemas",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Stage definitions (TOML), the durable job queue in the catalog, the runner, memoization.
        .target(
            name: "ArtifactPipeline",
            dependencies: [
                "ArtifactCore", "CSystemShims",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Thin adapter from the libfuse3 low-level API to ArtifactCore.
        .target(
            name: "ArtifactFUSE",
            dependencies: [
                "ArtifactCore", "CFuse3", "CSystemShims",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "artifactfs",
            dependencies: [
                "ArtifactCore", "ArtifactFUSE", "ArtifactPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ArtifactCoreTests", dependencies: [
            "ArtifactCore", "TabularSchemas",
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "ArtifactPipelineTests", dependencies: [
            "ArtifactPipeline", "ArtifactCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "IntegrationTests", dependencies: ["ArtifactCore"]),
    ],
    swiftLanguageModes: [.v6]
)
