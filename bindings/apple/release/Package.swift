// swift-tools-version:5.9
// Template of the released Swift package: build-xcframework.sh (with
// PUSHAUTH_XCFRAMEWORK_URL set) writes it to build/release-package/Package.swift with the
// zip's URL and SwiftPM checksum filled in, next to Sources/PushAuth/PushAuth.swift.
// Push that directory to the root of the repository (or tag) apps depend on:
//   .package(url: "https://github.com/<issuer>/pushauth-swift", exact: "<version>")
import PackageDescription

let package = Package(
    name: "PushAuth",
    platforms: [
        .iOS(.v15),
    ],
    products: [
        .library(name: "PushAuth", targets: ["PushAuth"]),
    ],
    targets: [
        .binaryTarget(
            name: "pushauthFFI",
            url: "@XCFRAMEWORK_URL@",
            checksum: "@XCFRAMEWORK_CHECKSUM@"
        ),
        .target(
            name: "PushAuth",
            dependencies: ["pushauthFFI"],
            path: "Sources/PushAuth",
            linkerSettings: [
                .linkedFramework("Security"),
                .linkedFramework("CoreFoundation"),
                .linkedLibrary("iconv"),  // the libc crate's Apple bindings link it
            ]
        ),
    ]
)
