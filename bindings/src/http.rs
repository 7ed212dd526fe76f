//! The built-in [`HttpTransport`]: reqwest with rustls and the platform verifier
//! (`rustls-platform-verifier`: Security.framework on Apple platforms, the Android
//! trust manager through JNI, see `bindings/README.md`), or only the issuer's own
//! roots when given; no redirects (a signed request names its exact path), bounded
//! bodies.

use std::sync::OnceLock;
use std::time::Duration;

use crate::api::MAX_RESPONSE_BYTES;
use crate::error::{Error, Result};
use crate::ffi::transport::{HttpHeader, HttpRequest, HttpResponse, HttpTransport, TransportError};

/// Transport settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transport {
    /// Whole-request timeout.
    pub timeout: Option<Duration>,
    /// PEM root certificates to trust instead of the platform's.
    pub trusted_roots_pem: Vec<String>,
}

/// The reqwest client.
#[derive(Debug, Clone)]
pub(crate) struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    /// Builds the client. With trusted roots, only those are trusted (the issuer's
    /// own CA, which also pins it); otherwise the platform verifier is used (on
    /// Android after `PushAuthAndroid.init(context)`, see README).
    pub(crate) fn new(transport: &Transport) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pushauth-sdk/", env!("CARGO_PKG_VERSION")))
            .timeout(transport.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(10));
        if !transport.trusted_roots_pem.is_empty() {
            let mut certs = Vec::new();
            for pem in &transport.trusted_roots_pem {
                let found =
                    reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| {
                        Error::Input("trusted_roots_pem: not PEM certificates".to_owned())
                    })?;
                if found.is_empty() {
                    return Err(Error::Input(
                        "trusted_roots_pem: no certificate found".to_owned(),
                    ));
                }
                certs.extend(found);
            }
            builder = builder.tls_certs_only(certs);
        }
        Ok(Self {
            http: builder.build()?,
        })
    }

    async fn send_now(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let lost = |detail: &str| TransportError::NoAnswer {
            detail: detail.to_owned(),
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| lost("bad method"))?;
        let mut builder = self.http.request(method, &request.url);
        for h in &request.headers {
            builder = builder.header(&h.name, &h.value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| lost(&Error::from(e).to_string()))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| lost(&Error::from(e).to_string()))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(lost("response too large"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers: Vec::new(),
            body,
        })
    }
}

/// The runtime requests run on, whoever awaits them (the SDK under uniffi's tokio
/// glue, or an app calling the built-in transport's `send` from Swift / Kotlin /
/// Python on its own executor).
fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
}

#[async_trait::async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let rt = runtime().ok_or_else(|| TransportError::NoAnswer {
            detail: "no async runtime".to_owned(),
        })?;
        let this = self.clone();
        rt.spawn(async move { this.send_now(request).await })
            .await
            .map_err(|_| TransportError::NoAnswer {
                detail: "transport task failed".to_owned(),
            })?
    }
}

/// Headers of a signed device API request.
pub(crate) fn headers(authorization: &str, json_body: bool) -> Vec<HttpHeader> {
    let mut out = vec![
        HttpHeader {
            name: "Authorization".to_owned(),
            value: format!("PushAuth {authorization}"),
        },
        HttpHeader {
            name: "Accept".to_owned(),
            value: "application/json, application/problem+json".to_owned(),
        },
    ];
    if json_body {
        out.push(HttpHeader {
            name: "Content-Type".to_owned(),
            value: "application/json".to_owned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 root (test only, no private key kept).
    const TEST_ROOT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBjzCCATWgAwIBAgIUU9QQQxuGIDHV6S6TCaMMFRhFAJ8wCgYIKoZIzj0EAwIw\n\
HTEbMBkGA1UEAwwScHVzaGF1dGggdGVzdCByb290MB4XDTI2MTEyNDA0NTU0OFoX\n\
DTM2MTEyMTA0NTU0OFowHTEbMBkGA1UEAwwScHVzaGF1dGggdGVzdCByb290MFkw\n\
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEVKVuW/0nzRJgRlrz/AzZiA1ntk8FpJrn\n\
ySoWsubod+qOfBNP5M6yMTre69XqBikK3dbLN656tqo69FTgxSzpwqNTMFEwHQYD\n\
VR0OBBYEFNkpW+O6osU8uAYP7dB+gyzikhBuMB8GA1UdIwQYMBaAFNkpW+O6osU8\n\
uAYP7dB+gyzikhBuMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIg\n\
RGcbqnMN7EA2FWIvzL89GquBNxmXGOd8cv01p6biIsoCIQDQfkS8ZB2mwc7HWUrQ\n\
76ttCwgFIcdtlkWwQjGmghvYgw==\n\
-----END CERTIFICATE-----";

    #[test]
    fn trusted_roots_are_parsed() {
        let transport = Transport {
            timeout: None,
            trusted_roots_pem: vec![TEST_ROOT.to_owned()],
        };
        assert!(ReqwestTransport::new(&transport).is_ok());
        let bad = Transport {
            timeout: None,
            trusted_roots_pem: vec!["not a certificate".to_owned()],
        };
        assert!(matches!(ReqwestTransport::new(&bad), Err(Error::Input(_))));
    }

    #[test]
    fn sends_from_outside_a_runtime() {
        let t = ReqwestTransport::new(&Transport::default()).unwrap();
        let request = HttpRequest {
            method: "GET".into(),
            url: "http://127.0.0.1:9/".into(),
            headers: headers("x", false),
            body: Vec::new(),
        };
        // Port 9 (discard) is closed: no answer, but no panic for lack of a runtime.
        let r = block_on_bare(t.send(request));
        assert!(matches!(r, Err(TransportError::NoAnswer { .. })));
    }

    fn block_on_bare<F: std::future::Future>(f: F) -> F::Output {
        // A runtime without I/O driver: the transport must not rely on the caller's
        // runtime for its I/O.
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
