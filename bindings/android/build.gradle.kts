// pushauth mobile SDK: Android library module (AAR).
//
// What the AAR contains:
//   - the uniffi-generated Kotlin API, compiled from the committed sources in
//     ../generated/kotlin (package uniffi.pushauth; regenerate with
//     bindings/scripts/generate.sh, never edit by hand);
//   - libpushauth.so for arm64-v8a, armeabi-v7a and x86_64, built by ./build-aar.sh with
//     cargo-ndk (profile release-sdk, 16 KB-aligned ELF segments) into src/main/jniLibs;
//   - consumer-rules.pro, applied to every app that minifies with R8.
// Its POM/module metadata declare JNA (@aar: the Android flavour with libjnidispatch.so
// per ABI), kotlinx-coroutines and the rustls platform verifier's JVM half.
//
// Build: ./build-aar.sh (see README.md). `gradle assembleRelease` alone packages whatever
// is in src/main/jniLibs and fails early when a library is missing (checkJniLibs below).

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

group = "org.pushauth"
version = "0.1.0" // = the workspace version (Cargo.toml [workspace.package])

/** The Android ABIs the AAR ships; build-aar.sh builds exactly these. */
val sdkAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "org.pushauth.sdk"
    compileSdk = 36

    defaultConfig {
        // API 26: the lowest the reference key store (bindings/samples/android) supports
        // with per-use biometric keys; PURPOSE_AGREE_KEY needs 31 and has a documented
        // fallback below. cargo-ndk links against the same level (build-aar.sh --platform).
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += sdkAbis }
    }

    sourceSets {
        getByName("main") {
            // The committed uniffi output: compiled as part of this module, not copied.
            java.srcDir("../generated/kotlin")
        }
    }

    buildTypes {
        release {
            // A library is minified by the app that consumes it (with consumer-rules.pro).
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // Stored uncompressed and page-aligned in the app's APK (AGP >= 8.5.1 aligns
            // them to 16 KB), so the loader can map them in place on 16 KB-page devices.
            useLegacyPackaging = false
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

/**
 * The version of rustls-platform-verifier-android in the workspace's Cargo.lock: the JVM
 * half of the verifier must be exactly the version the Rust half was built with (the
 * crate's README pattern, as a configuration-cache friendly ValueSource).
 */
abstract class RustlsVerifierVersion : ValueSource<String, RustlsVerifierVersion.Params> {
    interface Params : ValueSourceParameters {
        val lockFile: RegularFileProperty
    }

    override fun obtain(): String {
        val lines = parameters.lockFile.get().asFile.readLines()
        val nameIdx = lines.indexOfFirst { it.trim() == "name = \"$CRATE_NAME\"" }
        val version = if (nameIdx < 0) {
            null
        } else {
            lines.drop(nameIdx + 1)
                .firstOrNull { it.trimStart().startsWith("version = ") }
                ?.substringAfter('"', "")
                ?.substringBefore('"', "")
                ?.takeIf { it.isNotEmpty() }
        }
        return version ?: error("$CRATE_NAME not found in Cargo.lock")
    }

    companion object {
        const val CRATE_NAME = "rustls-platform-verifier-android"
    }
}

val rustlsVerifierVersion = providers.of(RustlsVerifierVersion::class.java) {
    parameters.lockFile.set(layout.projectDirectory.file("../../Cargo.lock"))
}

configurations.configureEach {
    resolutionStrategy.eachDependency {
        if (requested.group == "rustls" && requested.name == "rustls-platform-verifier") {
            useVersion(rustlsVerifierVersion.get())
            because("the JVM half must match ${RustlsVerifierVersion.CRATE_NAME} in Cargo.lock")
        }
    }
}

dependencies {
    // The generated bindings call libpushauth.so through JNA; the AAR flavour carries
    // libjnidispatch.so for every Android ABI (the plain jar only has desktop ones).
    api("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    // Generated suspend functions and foreign async traits (KeyStore, HttpTransport).
    api(libs.kotlinx.coroutines.core)
    // Called from Rust through JNI by the built-in HTTPS client (platform certificate
    // verification, Network Security Config); version pinned from Cargo.lock above.
    implementation(libs.rustls.platform.verifier)
}

/** Fails the build when build-aar.sh has not put a library in place for every ABI. */
val checkJniLibs by tasks.registering {
    val jniLibs = layout.projectDirectory.dir("src/main/jniLibs")
    val abis = sdkAbis
    inputs.dir(jniLibs).optional()
    doLast {
        val missing = abis.filterNot { jniLibs.file("$it/libpushauth.so").asFile.isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "libpushauth.so missing for ${missing.joinToString()}: run bindings/android/build-aar.sh",
            )
        }
    }
}

tasks.named("preBuild") { dependsOn(checkJniLibs) }
