//! Cross-instance notifications: committed changes are announced with `pg_notify` on
//! two channels (see the `announce` module), and a background task per store LISTENs
//! on them and forwards other stores' notifications to its broadcast channel.
//!
//! Channels are `pushauth_outbox` (empty payload) and `pushauth_challenge` (payload:
//! cardholder id) for stores in the `public` schema; stores in another schema use
//! `pushauth_outbox_<schema>` / `pushauth_challenge_<schema>` (hashed when longer than
//! PostgreSQL's 63-byte identifiers), since NOTIFY channels are database-wide and
//! stores in different schemas are different deployments.

use std::sync::Arc;
use std::time::Duration;

use pushauth_core::ids::CardholderId;
use pushauth_store::{StoreEvent, StoreResult};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use crate::announce::Announcer;
use crate::error::db;

/// Longest NOTIFY channel name PostgreSQL accepts.
const MAX_CHANNEL: usize = 63;
/// First and longest wait before re-establishing a failed LISTEN connection.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));

/// The NOTIFY channels of one schema.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    pub outbox: String,
    pub challenge: String,
}

impl Channels {
    pub(crate) fn for_schema(schema: &str) -> Channels {
        Channels {
            outbox: channel("pushauth_outbox", schema),
            challenge: channel("pushauth_challenge", schema),
        }
    }

    fn event(&self, channel: &str, payload: &str) -> Option<StoreEvent> {
        if channel == self.outbox {
            Some(StoreEvent::OutboxReady)
        } else if channel == self.challenge {
            match CardholderId::parse(payload) {
                Ok(cardholder) => Some(StoreEvent::Challenge { cardholder }),
                Err(_) => {
                    tracing::warn!(
                        channel,
                        "ignoring a challenge notification without a cardholder id"
                    );
                    None
                }
            }
        } else {
            None
        }
    }
}

fn channel(base: &str, schema: &str) -> String {
    if schema == "public" {
        return base.to_owned();
    }
    let name = format!("{base}_{schema}");
    if name.len() <= MAX_CHANNEL {
        return name;
    }
    // FNV-1a: stable across builds and instances (unlike std's hasher).
    let hash = schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{base}_{hash:016x}")
}

/// Connects the listener (LISTEN is active when this returns, so nothing committed
/// afterwards is missed) and spawns the forwarding task.
pub(crate) async fn start(
    options: PgConnectOptions,
    channels: Channels,
    events: broadcast::Sender<StoreEvent>,
    announcer: Arc<Announcer>,
) -> StoreResult<AbortHandle> {
    // A pool of its own, so the long-lived LISTEN connection does not take one of
    // the query pool's connections; PgListener also uses it to reconnect.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(options);
    let listener = subscribe(&pool, &channels).await.map_err(db)?;
    Ok(tokio::spawn(forward(pool, channels, events, announcer, listener)).abort_handle())
}

async fn subscribe(pool: &PgPool, channels: &Channels) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([channels.outbox.as_str(), channels.challenge.as_str()])
        .await?;
    Ok(listener)
}

/// Forwards notifications until the store is dropped (which aborts this task).
/// When the connection drops, notifications may have been missed: after
/// reconnecting it sends `OutboxReady` so workers re-read (device streams re-read on
/// their own polling interval). It retries with exponential backoff, forever.
async fn forward(
    pool: PgPool,
    channels: Channels,
    events: broadcast::Sender<StoreEvent>,
    announcer: Arc<Announcer>,
    mut listener: PgListener,
) {
    let mut backoff = BACKOFF.0;
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                backoff = BACKOFF.0;
                if announcer.is_own(n.process_id()) {
                    continue;
                }
                if let Some(event) = channels.event(n.channel(), n.payload()) {
                    let _ = events.send(event);
                }
            }
            Ok(None) => {
                tracing::warn!(
                    "LISTEN connection lost and re-established; notifications may have been missed"
                );
                let _ = events.send(StoreEvent::OutboxReady);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "LISTEN connection failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                match subscribe(&pool, &channels).await {
                    Ok(fresh) => {
                        listener = fresh;
                        tracing::info!("LISTEN connection re-established");
                        let _ = events.send(StoreEvent::OutboxReady);
                    }
                    Err(error) => tracing::warn!(%error, "LISTEN reconnect failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names() {
        assert_eq!(Channels::for_schema("public").outbox, "pushauth_outbox");
        assert_eq!(
            Channels::for_schema("public").challenge,
            "pushauth_challenge"
        );
        assert_eq!(
            Channels::for_schema("t_ab12").challenge,
            "pushauth_challenge_t_ab12"
        );
        let long = "s".repeat(63);
        let c = Channels::for_schema(&long);
        assert!(c.challenge.len() <= MAX_CHANNEL && c.outbox.len() <= MAX_CHANNEL);
        assert_ne!(c.challenge, Channels::for_schema(&"t".repeat(63)).challenge);
    }
}
