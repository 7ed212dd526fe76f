use crate::helpers::TestApp;
use crate::on_both_backends;

async fn health_ready_metrics_openapi(app: TestApp) {
    let h: serde_json::Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m = app.metrics().await;
    assert!(m.contains("pushauth_device_locks_total 0"), "{m}");
    let o: serde_json::Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["openapi"], "3.1.0");
    let nf = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(nf.status(), 404);
    assert_eq!(nf.headers()["content-type"], "application/problem+json");
    app.server.shutdown().await;
}

/// Every path of the OpenAPI document is served (no fallback 404), for every method.
async fn openapi_paths_are_served(app: TestApp) {
    let doc: serde_json::Value =
        serde_json::from_str(pushauth_server::routes::ops::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25);
    for (path, methods) in paths {
        let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000000");
        for method in methods.as_object().unwrap().keys() {
            let resp = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no such endpoint") && status != 405,
                "{method} {path}: {status} {body}"
            );
        }
    }
}

on_both_backends!(health_ready_metrics_openapi, openapi_paths_are_served);
