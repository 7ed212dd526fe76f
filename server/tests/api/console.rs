//! The ops console (issue 17 §2): its files only when `[console] enabled`, with the
//! security headers; and what it needs of the admin API: `GET /v1/admin/me`, the
//! challenge search (reference under any processor, time window), the evidence
//! (what was shown, proof summary, audit check) and the activation code's QR code.
//! The page itself is tested in a real browser by tests/console/.

use pushauth_server::console;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn};
use crate::on_both_backends;

/// Runs each listed `async fn(TestApp)` on both backends, console enabled.
macro_rules! with_console_on_both_backends {
    ($($case:ident),+ $(,)?) => {
        $(
            mod $case {
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$case(spawn(Backend::Sqlite, |c| c.console.enabled = true).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$case(spawn(Backend::Postgres, |c| c.console.enabled = true).await).await
                }
            }
        )+
    };
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).send().await.unwrap()
}

async fn off_unless_configured(app: TestApp) {
    for path in [
        "/console",
        "/console/",
        "/console/app.js",
        "/console/index.html",
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert!(r.headers().get("content-security-policy").is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "not_found");
    }
}

fn assert_secure(r: &reqwest::Response, path: &str) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], console::CSP, "{path}");
    let csp = console::CSP;
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive}");
    }
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    assert_eq!(h["cache-control"], "no-store", "{path}");
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
}

async fn served_with_headers_when_enabled(app: TestApp) {
    for path in ["/console", "/console/"] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_secure(&r, path);
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        let body = r.text().await.unwrap();
        assert_eq!(body, console::INDEX.body);
        assert!(body.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    }
    let expected = [
        ("index.html", "text/html; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("challenges.js", "text/javascript; charset=utf-8"),
        ("cardholders.js", "text/javascript; charset=utf-8"),
        ("events.js", "text/javascript; charset=utf-8"),
    ];
    assert_eq!(expected.len(), console::ASSETS.len());
    for (name, content_type) in expected {
        let path = format!("/console/{name}");
        let r = get(&app, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_secure(&r, &path);
        assert_eq!(r.headers()["content-type"], content_type, "{path}");
        let body = r.text().await.unwrap();
        assert_eq!(body, console::asset(name).unwrap().body, "{path}");
    }
    // unknown files and other methods: problem+json, still with the headers
    for path in [
        "/console/nope.js",
        "/console/..%2Fadmin-key",
        "/console/app.js/x",
    ] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = get(&app, "/console/nope.js").await;
    assert_secure(&r, "/console/nope.js");
    let r = app
        .http
        .post(app.url("/console/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // the admin API keeps its own answers (no console headers there)
    let r = get(&app, "/v1/admin/me").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("content-security-policy").is_none());
}

async fn whoami_tells_the_scope(app: TestApp) {
    let (s, me) = app.admin(Method::GET, "/v1/admin/me", None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        (me["name"].as_str(), me["scope"].as_str()),
        (Some("configured"), Some("full"))
    );
    assert!(
        me.get("key").is_none() && me.get("key_hash").is_none(),
        "{me}"
    );
    let (s, v) = app
        .admin(
            Method::POST,
            "/v1/admin/admin-keys",
            Some(json!({"name": "console-viewer", "scope": "read"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let read_key = v["key"].as_str().unwrap();
    let r = app
        .http
        .get(app.url("/v1/admin/me"))
        .bearer_auth(read_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["name"].as_str(), me["scope"].as_str()),
        (Some("console-viewer"), Some("read"))
    );
}

async fn activation_code_with_qr(app: TestApp) {
    let ch = app.create_cardholder().await;
    let path = format!("/v1/admin/cardholders/{ch}/activation-codes");
    let (s, v) = app
        .admin(Method::POST, &path, Some(json!({"qr": "svg"})))
        .await;
    assert_eq!(s, 201, "{v}");
    let svg = v["qr_svg"].as_str().unwrap();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(!svg.contains("<script") && !svg.contains("href"), "{svg}");
    assert!(
        v["deeplink"]
            .as_str()
            .unwrap()
            .starts_with("pushauth://enroll?v=1&server=")
    );
    // without asking: no QR code; a format we do not make: 400, nothing issued
    let (s, v) = app.admin(Method::POST, &path, None).await;
    assert_eq!(s, 201, "{v}");
    assert!(v.get("qr_svg").is_none(), "{v}");
    let (s, v) = app
        .admin(Method::POST, &path, Some(json!({"qr": "png"})))
        .await;
    assert_eq!(
        (s, v["reason"].as_str()),
        (400, Some("invalid_field")),
        "{v}"
    );
}

async fn challenges_by_reference_and_time(app: TestApp) {
    let (ch, _device) = app.cardholder_with_device().await;
    let first = app.new_challenge(&ch, "order-1").await;
    let second = app.new_challenge(&ch, "order-2").await;
    let list = |query: String| {
        let app = &app;
        async move {
            let (s, v) = app
                .admin(Method::GET, &format!("/v1/admin/challenges?{query}"), None)
                .await;
            assert_eq!(s, 200, "{query}: {v}");
            v["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // a reference alone, under any processor; with its processor; with another one
    assert_eq!(list("reference=order-1".into()).await, vec![first.clone()]);
    assert_eq!(
        list("provider=api&reference=order-2".into()).await,
        vec![second.clone()]
    );
    assert!(
        list("provider=adyen&reference=order-2".into())
            .await
            .is_empty()
    );
    assert!(list("reference=order-3".into()).await.is_empty());
    // combined with the other filters
    assert_eq!(
        list(format!("reference=order-1&cardholder={ch}&status=pending")).await,
        vec![first.clone()]
    );
    assert!(
        list("reference=order-1&status=approved".into())
            .await
            .is_empty()
    );
    // a time window around the creation times
    let (_, v) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{first}"), None)
        .await;
    let t1 = v["challenge"]["created_at"].as_i64().unwrap();
    let (_, v) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{second}"), None)
        .await;
    let t2 = v["challenge"]["created_at"].as_i64().unwrap();
    assert!(t1 <= t2);
    let all = list(format!("since={t1}")).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(list(format!("since={}", t2 + 1)).await.is_empty());
    assert_eq!(list(format!("since={t1}&before={}", t2 + 1)).await.len(), 2);
    assert_eq!(
        list(format!("reference=order-2&since={t2}&before={}", t2 + 1)).await,
        vec![second.clone()]
    );
    assert!(
        list(format!("reference=order-2&before={t2}"))
            .await
            .is_empty()
    );
    // bad input: precise 400s
    for bad in [
        "reference=",
        "reference=a%20b",
        "since=yesterday",
        "until=5",
    ] {
        let (s, v) = app
            .admin(Method::GET, &format!("/v1/admin/challenges?{bad}"), None)
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(
            v["type"]
                .as_str()
                .map(|t| t.starts_with("urn:pushauth:problem:")),
            Some(true)
        );
    }
}

async fn evidence_summarises_the_proof(app: TestApp) {
    let (ch, device) = app.cardholder_with_device().await;
    let hostile = "<img src=x onerror=alert(1)>";
    let (s, v) = app
        .challenge(&ch, "evidence-1", json!({ "payee": hostile }))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["challenge"]["id"].as_str().unwrap().to_owned();
    let (s, ev) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{id}"), None)
        .await;
    assert_eq!(s, 200, "{ev}");
    assert!(
        ev["decision"].is_null() && ev["proof_summary"].is_null(),
        "{ev}"
    );
    assert_eq!(
        ev["shown"]["summary"].as_str(),
        Some("EUR 49.90 at <img src=x onerror=alert(1)>")
    );
    let fields = ev["shown"]["display_fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .any(|f| f["key"] == "payee" && f["value"] == hostile),
        "{fields:?}"
    );
    let a = device.approve(&id).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (_, ev) = app
        .admin(Method::GET, &format!("/v1/admin/challenges/{id}"), None)
        .await;
    let proof = ev["decision"]["proof"].as_str().unwrap();
    let summary = &ev["proof_summary"];
    assert_eq!(summary["typ"], "pushauth-approval+jwt");
    assert_eq!(summary["kid"].as_str(), Some(device.id.as_str()));
    assert_eq!(summary["decision"], "approve");
    assert_eq!(summary["uv"], "biometric");
    assert!(summary["iat"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(summary["txn"], ev["challenge"]["txn_digest"]);
    assert_eq!(summary["txn_matches"], true);
    assert_eq!(summary["verified_with"]["use"], "approval");
    assert_eq!(
        summary["verified_with"]["thumbprint"].as_str(),
        Some(device.approval.public().thumbprint().as_str())
    );
    assert_eq!(summary["sha256"].as_str().map(str::len), Some(64));
    let text = summary.to_string();
    assert!(!text.contains(proof.rsplit('.').next().unwrap()), "{text}");
    // the audit entries of the challenge check out, and so does the whole chain
    assert_eq!(ev["audit_check"]["result"], "intact", "{ev}");
    let n = ev["audit"].as_array().unwrap().len();
    assert!(n >= 2, "{ev}");
    assert_eq!(ev["audit_check"]["entries"].as_u64(), Some(n as u64));
}

on_both_backends!(
    off_unless_configured,
    whoami_tells_the_scope,
    activation_code_with_qr
);
with_console_on_both_backends!(
    served_with_headers_when_enabled,
    challenges_by_reference_and_time,
    evidence_summarises_the_proof,
);
