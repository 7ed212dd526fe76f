//! The `pushauth` binary as an operator starts it: environment conventions and the
//! ready file (docs/configuration.md, docs/operations.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pushauth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushauth"));
    // the test runner's own PUSHAUTH_* variables must not leak into the child
    for (key, _) in std::env::vars() {
        if key.starts_with("PUSHAUTH_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn wait_for(path: &Path, limit: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Some(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn ready_file_names_the_chosen_port_and_unrelated_variables_do_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let mut child = pushauth()
        .arg("serve")
        .arg("--ready-file")
        .arg(&ready)
        .env("PUSHAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("PUSHAUTH_STORAGE__DATA_DIR", dir.path().join("data"))
        .env("PUSHAUTH_DEPLOY_COLOR", "blue")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = wait_for(&ready, Duration::from_secs(60));
    let Some(text) = text else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "no ready file; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let note: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listen = note["listen"].as_str().unwrap().to_owned();
    assert!(listen.starts_with("127.0.0.1:"), "{note}");
    assert_ne!(listen, "127.0.0.1:0", "{note}");
    assert_eq!(note["storage"], "sqlite");
    assert_eq!(note["pid"].as_u64(), Some(u64::from(child.id())));
    assert_eq!(note["public_url"], format!("http://{listen}"));
    let answer = http_get(&listen, "/readyz");
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    // the container health check
    let probe = pushauth()
        .args(["probe", "--addr", &listen])
        .output()
        .unwrap();
    assert!(probe.status.success(), "{probe:?}");

    // a clean stop removes the ready file
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!ready.exists(), "the ready file outlived the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ignored environment variable") && stderr.contains("PUSHAUTH_DEPLOY_COLOR"),
        "{stderr}"
    );
}

#[test]
fn a_misspelt_section_stops_the_server_with_the_list_of_sections() {
    let dir = tempfile::tempdir().unwrap();
    let out = pushauth()
        .arg("serve")
        .env("PUSHAUTH_SERVR__LISTEN", "127.0.0.1:0")
        .env("PUSHAUTH_STORAGE__DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PUSHAUTH_SERVR__LISTEN") && stderr.contains("unknown section `servr`"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the check"
    );
}

#[test]
fn probe_fails_when_nothing_listens() {
    // bind and drop: a port with nobody behind it
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = pushauth()
        .args([
            "probe",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--timeout-ms",
            "500",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("probe 127.0.0.1:"),
        "{out:?}"
    );
}
