// swift-tools-version:5.9
// The pushauth iOS SDK as a local Swift package, for developing against a build from
// this repository: run ./build-xcframework.sh first (it writes build/pushauthFFI.xcframework
// and Sources/PushAuth/PushAuth.swift, both git-ignored), then add this directory to the
// app's Xcode project (File > Add Package Dependencies > Add Local...).
// Releases use release/Package.swift (binary target by URL + checksum) instead.
import PackageDescription

let package = Package(
    name: "PushAuth",
    platforms: [
        .iOS(.v15),  // = IPHONEOS_DEPLOYMENT_TARGET in build-xcframework.sh
    ],
    products: [
        .library(name: "PushAuth", targets: ["PushAuth"]),
    ],
    targets: [
        // The Rust library (static, device + simulator slices) and its C module
        // `pushauthFFI`, which the generated Swift imports.
        .binaryTarget(
            name: "pushauthFFI",
            path: "build/pushauthFFI.xcframework"
        ),
        // The uniffi-generated Swift API (`import PushAuth`).
        .target(
            name: "PushAuth",
            dependencies: ["pushauthFFI"],
            path: "Sources/PushAuth",
            linkerSettings: [
                // Frameworks the Rust static library links (security-framework and
                // core-foundation for the platform certificate verifier); the build
                // script checks this list against rustc's native-static-libs.
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
                .linkedLibrary("iconv"),  // the libc crate's Apple bindings link it
            ]
        ),
    ]
)
