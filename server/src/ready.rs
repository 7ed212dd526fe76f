//! The ready file: a machine-readable note of where a started server listens.
//!
//! `pushauth serve --ready-file PATH` writes it once the listener is bound, the
//! database migrated and the workers started, so that a supervisor or a test that
//! asked for `listen = "127.0.0.1:0"` learns the chosen port without reading logs:
//!
//! ```json
//! {"listen":"127.0.0.1:41234","public_url":"http://127.0.0.1:41234","pid":4242,"storage":"sqlite","server_kid":"…"}
//! ```
//!
//! The file is written to a temporary name beside it and renamed into place, so a
//! reader never sees half of it; it is removed at a clean shutdown.
//!
//! `pushauth probe` is the matching health check for container and service managers
//! (a Dockerfile `HEALTHCHECK` needs no curl in the image): one `GET /readyz`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::startup::Server;

#[derive(Debug, Serialize)]
struct ReadyNote<'a> {
    listen: String,
    public_url: &'a str,
    pid: u32,
    storage: &'static str,
    server_kid: String,
}

/// Writes the ready file for `server` at `path` (atomically: temporary file, then
/// rename). Returns the path to remove at shutdown.
pub fn write(path: &Path, server: &Server) -> std::io::Result<PathBuf> {
    let note = ReadyNote {
        listen: server.addr.to_string(),
        public_url: &server.state.public_url,
        pid: std::process::id(),
        storage: server.state.store.backend(),
        server_kid: server.state.server_kid.clone(),
    };
    let text = serde_json::to_vec(&note).map_err(std::io::Error::other)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the ready file needs a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(path.to_owned())
}

/// The address `pushauth probe` asks by default: the listen address, with an
/// unspecified host (0.0.0.0, ::) replaced by loopback.
pub fn probe_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /readyz` on `target` (`host:port`) over plain HTTP/1.0; `Ok` only for a 200
/// answer within `timeout`.
pub fn probe(target: &str, timeout: Duration) -> Result<(), String> {
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("probe {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("probe {target}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("probe {target}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("probe {target}: {e}"))?;
    write!(stream, "GET /readyz HTTP/1.0\r\nHost: {target}\r\n\r\n")
        .map_err(|e| format!("probe {target}: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("probe {target}: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(format!("probe {target}: /readyz answered {status:?}"))
    }
}
