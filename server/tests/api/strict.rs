//! Strict parsing and problem+json on our own APIs (issue 15 §6): arrays where
//! objects are expected, trailing bytes, invalid UTF-8 and lone surrogates, and the
//! rejections that used to be plain text (bad query strings, invalid percent-encoding
//! in a path, 413, a malformed chunked body, 415).

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{ADMIN_KEY, TestApp};
use crate::on_both_backends;

async fn raw_admin(app: &TestApp, method: Method, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_KEY)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A problem+json answer with this status; its body.
async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], status, "{v}");
    v
}

async fn cardholder_count(app: &TestApp) -> usize {
    let (s, v) = app.admin(Method::GET, "/v1/admin/cardholders", None).await;
    assert_eq!(s, 200);
    v["cardholders"].as_array().unwrap().len()
}

async fn arrays_and_trailing_bytes_refused(app: TestApp) {
    // admin API: `[]` would be a cardholder with every field defaulted
    for body in [
        b"[]".to_vec(),
        br#"["ext-1","label"]"#.to_vec(),
        br#"{"label":"a"}{"label":"b"}"#.to_vec(),
        br#"{"label":"a"} x"#.to_vec(),
        b"{\"label\":\"\xff\xfe\"}".to_vec(),
        br#"{"label":"\udc00"}"#.to_vec(),
    ] {
        let resp = raw_admin(&app, Method::POST, "/v1/admin/cardholders", body.clone()).await;
        let v = problem(resp, 400).await;
        assert!(
            matches!(
                v["reason"].as_str(),
                Some("malformed_json" | "invalid_field")
            ),
            "{}: {v}",
            String::from_utf8_lossy(&body)
        );
    }
    assert_eq!(cardholder_count(&app).await, 0, "nothing stored");

    // device API: a decision as an array, a push token with trailing bytes
    let (ch, d) = app.cardholder_with_device().await;
    let id = app.new_challenge(&ch, "strict-1").await;
    let c = d.challenge(&id).await;
    let proof = d.sign_decision(&c, pushauth_core::proof::Decision::Approve, None);
    let path = format!("/v1/device/challenges/{id}/decision");
    let body = serde_json::to_vec(&json!([proof])).unwrap();
    let a = d
        .send_with("POST", &path, body.clone(), &d.proof("POST", &path, &body))
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    let body = br#"{"push_token":null}{"push_token":"x"}"#.to_vec();
    let a = d
        .send_with(
            "PUT",
            "/v1/device/push-token",
            body.clone(),
            &d.proof("PUT", "/v1/device/push-token", &body),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    // the challenge is untouched and the object form still works
    let a = d.post_proof(&id, &proof).await;
    assert_eq!(a.status, 200, "{}", a.body);

    // enrollment as an array
    let code = app.activation_code(&ch).await;
    let key = pushauth_core::keys::SoftwareSigningKey::generate().unwrap();
    let approval = pushauth_core::keys::SoftwareSigningKey::generate().unwrap();
    let agreement = pushauth_core::keys::SoftwareAgreementKey::generate().unwrap();
    let object: Value = serde_json::from_slice(&crate::helpers::TestDevice::enroll_body(
        &code, &key, &approval, &agreement, &app.base,
    ))
    .unwrap();
    let array = serde_json::to_vec(&Value::Array(
        object.as_object().unwrap().values().cloned().collect(),
    ))
    .unwrap();
    let proof = pushauth_core::request::sign_enrollment(
        &key,
        &app.base,
        pushauth_core::request::HttpRequest {
            method: "POST",
            path: "/v1/device/enroll",
            body: &array,
        },
        pushauth_core::UnixTime(crate::helpers::now()),
    )
    .unwrap();
    let resp = app
        .http
        .post(app.url("/v1/device/enroll"))
        .header("Authorization", format!("PushAuth {proof}"))
        .header("Content-Type", "application/json")
        .body(array)
        .send()
        .await
        .unwrap();
    problem(resp, 400).await;
}

async fn every_rejection_is_problem_json(app: TestApp) {
    // a bad query string: problem+json, the input not echoed
    let resp = app
        .http
        .get(app.url("/v1/admin/challenges?limit=SECRET-INPUT&status=nope"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let v = problem(resp, 400).await;
    assert!(!v.to_string().contains("SECRET-INPUT"), "{v}");
    // invalid percent-encoding (not UTF-8) in a path segment
    let resp = app
        .http
        .get(app.url("/v1/admin/cardholders/%FF%FE"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert!(status == 400 || status == 404, "{status}");
    problem(resp, status).await;
    // 415
    let resp = app
        .http
        .post(app.url("/v1/admin/cardholders"))
        .bearer_auth(ADMIN_KEY)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(resp, 415).await;
    // 413 on enroll and on the admin API
    let big = vec![b' '; 70 * 1024];
    let resp = app
        .http
        .post(app.url("/v1/device/enroll"))
        .header("Authorization", "PushAuth x.y.z")
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(resp, 413).await;
    let resp = raw_admin(&app, Method::POST, "/v1/admin/cardholders", big).await;
    problem(resp, 413).await;
    // a malformed chunked body is a 400, on the device API and the admin API
    for (path, auth) in [
        ("/v1/device/push-token", "PushAuth x.y.z".to_owned()),
        ("/v1/admin/cardholders", format!("Bearer {ADMIN_KEY}")),
    ] {
        let (status, head) = malformed_chunked(&app, path, &auth).await;
        assert_eq!(status, 400, "{path}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{path}: {head}"
        );
    }
}

/// Sends a request whose chunked encoding is broken; the status and head answered.
async fn malformed_chunked(app: &TestApp, path: &str, auth: &str) -> (u16, String) {
    let addr = app.server.addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let method = if path.contains("push-token") {
        "PUT"
    } else {
        "POST"
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         4\r\n{{\"a\"\r\nZZZ-not-a-size\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let read = async {
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

on_both_backends!(
    arrays_and_trailing_bytes_refused,
    every_rejection_is_problem_json
);
