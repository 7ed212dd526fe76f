//! Runs every scenario tiny against the debug server binary on SQLite and checks that
//! the run completed with zero unexpected errors (injected faults excluded). CI-sized:
//! a few seconds in all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The debug server binary, built first if missing (as tests/with-server.sh does).
fn server_bin() -> PathBuf {
    let ws = workspace();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| ws.join("target"), PathBuf::from);
    let bin = target.join("debug").join("pushauth");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "pushauth-server", "--bin", "pushauth"])
            .current_dir(&ws)
            .status()
            .expect("cargo build");
        assert!(st.success(), "building the server failed");
    }
    bin
}

fn run(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--server-bin")
        .arg(server_bin())
        .arg("--json")
        .arg(&json)
        .args(["--duration-secs", "30"])
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen {args:?} failed:\n{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("report written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(v["unexpected_errors"], 0, "{stdout}");
    assert_eq!(v["timed_out"], false, "{stdout}");
    assert!(v["fatal"].is_null(), "{stdout}");
    v
}

#[test]
fn every_scenario_runs_tiny_without_unexpected_errors() {
    // Ingest, every processor shape, with invalid signatures and duplicates injected.
    for p in ["enfuce", "adyen", "paysafe", "treezor", "api"] {
        let v = run(&[
            "--scenario",
            "ingest",
            "--processor",
            p,
            "--requests",
            "30",
            "--concurrency",
            "8",
            "--faults",
            "invalid-sig=10%,duplicates=10%",
        ]);
        assert_eq!(v["completed"], 30, "{p}");
        assert_eq!(v["injected"]["invalid_sig_refused"], 3, "{p}");
        assert_eq!(v["injected"]["duplicate_acknowledged"], 3, "{p}");
        assert!(v["steps"]["webhook_ack"]["p99_ms"].as_f64().is_some());
    }
    // Full cycle through the mock FCM and the mock processor: no result lost.
    for p in ["enfuce", "api"] {
        let v = run(&[
            "--scenario",
            "cycle",
            "--processor",
            p,
            "--requests",
            "30",
            "--concurrency",
            "8",
        ]);
        assert_eq!(v["completed"], 30, "{p}");
        assert_eq!(v["extra"]["upstream_results_lost"], 0, "{p}");
        assert_eq!(v["steps"]["decision_to_upstream"]["count"], 30, "{p}");
    }
    // Upstream answering 500 for a while: retried, nothing lost.
    let v = run(&[
        "--scenario",
        "cycle",
        "--processor",
        "enfuce",
        "--requests",
        "20",
        "--concurrency",
        "4",
        "--faults",
        "upstream-500-for=1s",
        "--server-env",
        "PUSHAUTH_WORKERS__IDLE_POLL_MS=100",
    ]);
    assert_eq!(v["extra"]["upstream_results_lost"], 0);
    let v = run(&[
        "--scenario",
        "storm",
        "--processor",
        "api",
        "--requests",
        "50",
        "--concurrency",
        "8",
    ]);
    assert_eq!(v["completed"], 50);
    assert_eq!(v["extra"]["upstream_results_lost"], 0);
    let v = run(&[
        "--scenario",
        "pending-rss",
        "--processor",
        "api",
        "--requests",
        "50",
        "--concurrency",
        "8",
        "--cards",
        "5",
    ]);
    assert_eq!(v["extra"]["pending_created"], 50);
    assert!(v["server"]["rss_end"]["vm_rss_kb"].as_u64().unwrap_or(0) > 0);
    let v = run(&["--scenario", "startup", "--requests", "1"]);
    assert_eq!(v["completed"], 1);
}

#[test]
fn refuses_non_loopback_targets() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--scenario",
            "ingest",
            "--backend",
            "postgres",
            "--pg-url",
            "postgres://postgres@10.1.2.3:5432/",
        ])
        .arg("--server-bin")
        .arg(server_bin())
        .output()
        .expect("run loadgen");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
