//! Runs every scenario tiny against the debug server binary on SQLite, and the
//! two-instance mode on PostgreSQL (`PUSHAUTH_TEST_PG_URL`), and checks that the run
//! completed with zero unexpected errors (injected faults excluded), no result lost or
//! doubled. Correctness only, never a time. CI-sized: a few seconds in all.

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

/// The PostgreSQL server of the tests (the loadgen creates and drops its own database).
fn pg_url() -> String {
    std::env::var("PUSHAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Checks of a two-instance run: nothing lost, doubled or unexpected, and both
/// instances served part of the measured requests, adding up to `requests` when given.
fn two_instances_served(v: &serde_json::Value, requests: Option<u64>) {
    let inst = v["instances"].as_array().expect("instances array");
    assert_eq!(inst.len(), 2, "{v:#}");
    let served: Vec<u64> = inst
        .iter()
        .map(|i| i["requests_served"].as_u64().expect("requests_served"))
        .collect();
    assert!(served.iter().all(|&n| n > 0), "an idle instance: {v:#}");
    if let Some(r) = requests {
        assert_eq!(served.iter().sum::<u64>(), r, "{v:#}");
    }
    assert_ne!(inst[0]["pid"], inst[1]["pid"]);
    assert!(
        inst.iter()
            .all(|i| i["rss_end"]["vm_rss_kb"].as_u64() > Some(0))
    );
    assert_eq!(v["server"]["pid"], inst[0]["pid"]);
}

#[test]
fn two_instances_on_one_postgresql_lose_and_double_nothing() {
    let pg = pg_url();
    let two = ["--backend", "postgres", "--pg-url", &pg, "--instances", "2"];
    // Ingest: webhook i on instance i % 2, its injected duplicate on the other one.
    let v = run(&[
        &two[..],
        &[
            "--scenario",
            "ingest",
            "--processor",
            "enfuce",
            "--requests",
            "40",
            "--concurrency",
            "8",
            "--faults",
            "invalid-sig=10%,duplicates=10%",
        ],
    ]
    .concat());
    assert_eq!(v["completed"], 40);
    assert_eq!(v["injected"]["invalid_sig_refused"], 4);
    assert_eq!(v["injected"]["duplicate_acknowledged"], 4);
    // 40 webhooks + 4 bad signatures + 4 duplicates, nothing else in the measured phase.
    two_instances_served(&v, Some(48));
    // Cycle: pushes created on one instance, answered by devices bound to either.
    for p in ["enfuce", "api"] {
        let v = run(&[
            &two[..],
            &[
                "--scenario",
                "cycle",
                "--processor",
                p,
                "--requests",
                "30",
                "--concurrency",
                "5",
            ],
        ]
        .concat());
        assert_eq!(v["completed"], 30, "{p}");
        assert_eq!(v["extra"]["upstream_results_expected"], 30, "{p}");
        assert_eq!(v["extra"]["upstream_results_lost"], 0, "{p}");
        assert_eq!(
            v["extra"]["upstream_results_delivered_more_than_once"], 0,
            "{p}"
        );
        assert_eq!(v["extra"]["fcm_challenge_pushes_doubled"], 0, "{p}");
        assert_eq!(v["steps"]["decision_to_upstream"]["count"], 30, "{p}");
        assert!(
            v["extra"]["decisions_via_other_instance"].as_u64() > Some(0),
            "{p}: {v:#}"
        );
        two_instances_served(&v, None);
    }
    // Storm: every device answers challenges created on both instances.
    let v = run(&[
        &two[..],
        &[
            "--scenario",
            "storm",
            "--processor",
            "api",
            "--requests",
            "40",
            "--concurrency",
            "4",
        ],
    ]
    .concat());
    assert_eq!(v["completed"], 40);
    assert_eq!(v["extra"]["upstream_results_lost"], 0);
    assert_eq!(v["extra"]["upstream_results_delivered_more_than_once"], 0);
    // 4 devices, 10 challenges each, half of them from the other instance.
    assert_eq!(v["extra"]["decisions_via_other_instance"], 20);
    two_instances_served(&v, None);
}

#[test]
fn refuses_instances_without_postgresql_or_for_one_server_scenarios() {
    for (args, says) in [
        (&["--scenario", "cycle", "--instances", "2"][..], "postgres"),
        (
            &[
                "--scenario",
                "startup",
                "--backend",
                "postgres",
                "--instances",
                "2",
            ][..],
            "ingest, cycle and storm",
        ),
        (
            &[
                "--scenario",
                "pending-rss",
                "--backend",
                "postgres",
                "--instances",
                "3",
            ][..],
            "ingest, cycle and storm",
        ),
        (
            &["--scenario", "ingest", "--instances", "0"][..],
            "at least 1",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(args)
            .arg("--server-bin")
            .arg(server_bin())
            .output()
            .expect("run loadgen");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
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
