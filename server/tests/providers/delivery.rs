//! What every connector's resilience tests check (issue 15 §2): after transient
//! failures (5xx, a dropped connection) the result reaches the processor, and exactly
//! one call got a success answer, before the deadline, with no call after it.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;
use crate::mock::{DROP, Mock};

/// Three 5xx answers (each with `body`), then the default 200.
pub fn three_500s(mock: &Mock, body: &str) {
    mock.script(&[(500, body), (503, body), (502, body)]);
}

/// One dropped connection, then the default 200.
pub fn one_drop(mock: &Mock) {
    mock.script(&[(DROP, "")]);
}

fn upstream_attempts(view: &Value) -> Vec<Value> {
    view["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "upstream")
        .cloned()
        .collect()
}

/// The row ends `delivered` after `calls` calls, the last the only success, in time;
/// nothing is sent afterwards.
pub async fn assert_one_result(app: &TestApp, mock: &Mock, id: &str, calls: usize) -> Value {
    app.wait_upstream(id, "delivered", Duration::from_secs(20))
        .await;
    // let a duplicate show up, if one were coming
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let got = mock.calls();
    assert_eq!(got.len(), calls, "{got:#?}");
    let view = app.view(id).await;
    let attempts = upstream_attempts(&view);
    assert_eq!(attempts.len(), calls, "{view:#}");
    let ok: Vec<_> = attempts.iter().filter(|a| a["outcome"] == "ok").collect();
    assert_eq!(ok.len(), 1, "exactly one accepted result: {view:#}");
    assert_eq!(attempts.last().unwrap()["outcome"], "ok", "{view:#}");
    let deadline = view["challenge"]["upstream_deadline"].as_i64().unwrap();
    assert!(
        ok[0]["at"].as_i64().unwrap() <= deadline,
        "delivered late: {view:#}"
    );
    assert_eq!(view["challenge"]["upstream"], "delivered");
    view
}
