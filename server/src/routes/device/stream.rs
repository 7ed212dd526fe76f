//! `GET /v1/device/stream`: server-sent events with every pending challenge of the
//! device's cardholder, as they appear. The fallback when a push is lost, and how a
//! foreground app learns of a challenge without waiting for APNs/FCM. Works across
//! instances: store notifications come from PostgreSQL `LISTEN/NOTIFY`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use pushauth_store::{Device, DeviceStatus, StoreEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;

use super::{DeviceCall, pending_items};
use crate::error::ApiResult;
use crate::state::AppState;

/// Whether the device may still receive challenges (read from the store, so a
/// revocation or lock by any instance is seen).
async fn still_active(state: &AppState, device: &Device) -> bool {
    matches!(
        state.store.device_get(&device.id).await,
        Ok(Some(d)) if d.status == DeviceStatus::Active
    )
}

/// Longest a stream stays open; the SDK reconnects (with a fresh request proof).
const MAX_STREAM: Duration = Duration::from_secs(300);
/// Re-check the database at least this often, in case a notification was missed.
const RESCAN: Duration = Duration::from_secs(10);

pub(super) async fn stream(State(state): State<AppState>, call: DeviceCall) -> ApiResult<Response> {
    call.require_active()?;
    let device = call.device;
    let mut events = state.store.subscribe();
    let first = pending_items(&state, &device).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::spawn(async move {
        let mut sent = HashSet::new();
        let deadline = tokio::time::Instant::now() + MAX_STREAM;
        let mut batch = first;
        loop {
            for item in batch.drain(..) {
                if sent.insert(item.id.clone()) {
                    let Ok(event) = Event::default().event("challenge").json_data(&item) else {
                        continue;
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
            let wake = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep(RESCAN) => true,
                e = events.recv() => match e {
                    Ok(StoreEvent::Challenge { cardholder }) => cardholder == device.cardholder,
                    Ok(StoreEvent::OutboxReady) => false,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
            };
            if wake {
                // Revocation and locking end the stream at the next rescan (at most
                // `RESCAN` later), not only at the next request proof.
                if !still_active(&state, &device).await {
                    return;
                }
                match pending_items(&state, &device).await {
                    Ok(items) => batch = items,
                    Err(_) => return,
                }
            }
        }
    });
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
