//! What the result legs share for talking to processors: reading answers with a size
//! cap (a misbehaving or hostile endpoint cannot make us buffer an unbounded body), and
//! telling "the request never left" apart from "the answer was lost".

use crate::upstream::NOT_SENT;

/// Largest processor answer body read; longer answers are cut off (and treated as
/// unreadable). Result answers are small JSON objects.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Reads at most `cap` bytes of the answer body. `Err` when it is longer or the
/// connection failed while reading.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("answer body over {cap} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| crate::workers::transport_error(&e))?
    {
        if out.len() + chunk.len() > cap {
            return Err(format!("answer body over {cap} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads the answer body with [`MAX_ANSWER_BYTES`]; an unreadable or oversized body
/// reads as empty (callers classify by status first).
pub async fn answer_body(resp: reqwest::Response) -> Vec<u8> {
    read_capped(resp, MAX_ANSWER_BYTES)
        .await
        .unwrap_or_default()
}

/// Description of a transport failure, prefixed with [`NOT_SENT`] when the request
/// certainly never reached the processor (the connection could not be made).
pub fn failure(e: &reqwest::Error) -> String {
    let what = crate::workers::transport_error(e);
    if e.is_connect() {
        format!("{NOT_SENT}{what}")
    } else {
        what
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers three requests: 100 bytes with a length, `cap + 1` bytes with a length,
    /// and `cap + 1` bytes chunked (no length announced).
    async fn server(cap: usize) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for n in 0..3 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let answer = match n {
                    0 => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{}",
                        "a".repeat(100)
                    ),
                    1 => format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                        cap + 1,
                        "a".repeat(cap + 1)
                    ),
                    _ => format!(
                        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                        cap + 1,
                        "a".repeat(cap + 1)
                    ),
                };
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused() {
        let url = server(1000).await;
        let http = reqwest::Client::new();
        let ok = read_capped(http.get(&url).send().await.unwrap(), 1000).await;
        assert_eq!(ok.map(|b| b.len()), Ok(100));
        for _ in 0..2 {
            let big = read_capped(http.get(&url).send().await.unwrap(), 1000).await;
            assert!(big.unwrap_err().contains("over 1000 bytes"));
        }
    }
}
