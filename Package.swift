// swift-tools-version:6.0
//
// bodycam — firmware userland for a body-worn camera on embedded Linux.
//
// Layering (see README and DESIGN): C system libraries and one small C shim at the bottom;
// `BodycamCore` and `BodycamTOML` are pure Swift with no C and no I/O; `BodycamMedia` writes and
// reads fragmented MP4; `BodycamAdapters` wraps libx264, libopus and the synthetic sources;
// `BodycamRuntime` composes them; the `bodycam` executable only parses the command line.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "bodycam",
    products: [
        .executable(name: "bodycam", targets: ["bodycam"]),
        // Test tooling for the VM rig (board/qemu); not installed on a device.
        .executable(name: "bodycam-hil", targets: ["bodycam-hil"]),
        // The activity detector's evaluation on generated, labelled footage (see README).
        .executable(name: "detector-eval", targets: ["detector-eval"]),
        // libFuzzer harness for the parsers (Tests/Fuzz/run-fuzz); without -DFUZZING a regression runner.
        .executable(name: "bodycam-fuzz", targets: ["bodycam-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // C libraries from Debian's packages, found with pkg-config.
        .systemLibrary(name: "CX264", pkgConfig: "x264", providers: [.apt(["libx264-dev"])]),
        .systemLibrary(name: "COpus", pkgConfig: "opus", providers: [.apt(["libopus-dev"])]),
        .systemLibrary(name: "CALSA", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CV4L2", pkgConfig: "libv4l2", providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        // Functions for the C macros Swift cannot import.
        .target(name: "CBodycamShim", dependencies: ["CX264", "COpus", "CV4L2"]),

        .target(name: "BodycamCore", swiftSettings: strict),
        .target(name: "BodycamTOML", swiftSettings: strict),
        .target(name: "BodycamMedia", dependencies: ["BodycamCore"], swiftSettings: strict),
        .target(
            name: "BodycamAdapters",
            dependencies: [
                "BodycamCore", "BodycamMedia", "CBodycamShim", "CX264", "COpus", "CV4L2", "CALSA", "CGPIOD",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BodycamEvidence",
            dependencies: ["BodycamCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Offload to the base station: SigV4 S3 client (AsyncHTTPClient), directory target.
        .target(
            name: "BodycamOffload",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BodycamRuntime",
            dependencies: [
                "BodycamCore", "BodycamTOML", "BodycamMedia", "BodycamAdapters", "BodycamEvidence", "BodycamOffload",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "bodycam",
            dependencies: [
                "BodycamRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .target(name: "CBodycamHIL"),
        .executableTarget(name: "bodycam-hil", dependencies: ["CALSA", "CBodycamHIL"], swiftSettings: strict),
        .target(name: "BodycamDetectorEval", dependencies: ["BodycamCore"], swiftSettings: strict),
        .executableTarget(name: "detector-eval", dependencies: ["BodycamDetectorEval"], swiftSettings: strict),
        // Declares libFuzzer's LLVMFuzzerRunDriver; linked only in the fuzz build (-sanitize=fuzzer).
        .systemLibrary(name: "CLibFuzzer"),
        .executableTarget(
            name: "bodycam-fuzz",
            dependencies: [
                "BodycamRuntime", "BodycamCore", "BodycamTOML", "BodycamMedia", "BodycamEvidence", "CLibFuzzer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "BodycamCoreTests", dependencies: ["BodycamCore"], swiftSettings: strict),
        .testTarget(
            name: "BodycamDetectorTests", dependencies: ["BodycamCore", "BodycamDetectorEval"], swiftSettings: strict),
        .testTarget(name: "BodycamTOMLTests", dependencies: ["BodycamTOML"], swiftSettings: strict),
        .testTarget(name: "BodycamMediaTests", dependencies: ["BodycamMedia"], swiftSettings: strict),
        .testTarget(
            name: "BodycamAdaptersTests", dependencies: ["BodycamAdapters"], swiftSettings: strict),
        .testTarget(
            name: "BodycamEvidenceTests",
            dependencies: ["BodycamEvidence", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["testkit"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BodycamOffloadTests", dependencies: ["BodycamOffload"], swiftSettings: strict),
        .testTarget(
            name: "BodycamIntegrationTests",
            dependencies: [
                "bodycam", "BodycamRuntime", "BodycamCore", "BodycamAdapters", "BodycamDetectorEval", .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ]
)
