// The pushauth SDK as a stand-alone Gradle build with one Android library module (this
// directory). Build the AAR with ./build-aar.sh (Rust libraries first, then Gradle);
// an app can also consume it as a composite build: includeBuild("<repo>/bindings/android").
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
        // The JVM half of rustls-platform-verifier (the Android certificate verifier the
        // SDK's built-in HTTPS client calls through JNI) is published only here, in the
        // crate's maven-archive branch; group "rustls", version = the Cargo.lock version of
        // rustls-platform-verifier-android (see build.gradle.kts).
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
            content { includeGroup("rustls") }
        }
    }
}

rootProject.name = "pushauth"
