use crate::helpers::TestApp;
use crate::on_both_backends;

async fn health_ready_metrics_openapi(app: TestApp) {
    let h: serde_json::Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("pushauth_decisions"), "{m}");
    let o: serde_json::Value = app.http.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(o["openapi"], "3.1.0");
    let nf = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(nf.status(), 404);
    assert_eq!(nf.headers()["content-type"], "application/problem+json");
    app.server.shutdown().await;
}

on_both_backends!(health_ready_metrics_openapi);
