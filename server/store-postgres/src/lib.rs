//! # pushauth-store-postgres
//!
//! The [`Store`] backend for several server instances on one PostgreSQL database.
//! Every trait method is one READ COMMITTED transaction. Races between instances are
//! settled by the database itself:
//!
//! - state changes are conditional updates (`… WHERE status = 'pending'`); a
//!   concurrent writer waits for the row lock, re-checks the condition and loses;
//! - duplicate webhooks collapse with `INSERT … ON CONFLICT DO NOTHING`;
//! - outbox claims use `FOR UPDATE SKIP LOCKED`;
//! - audit rows are appended unchained and linked after commit by one chainer at a
//!   time, under a transaction-scoped advisory lock (see the `audit` module).
//!
//! Notifications travel through `LISTEN/NOTIFY` (see the `listen` module), so
//! [`Store::subscribe`] hears about rows written by any instance.
//!
//! Queries are compile-time checked (`sqlx::query!`) against the committed offline
//! cache in `.sqlx/`; see `server/scripts/sqlx-prepare.sh` to regenerate it.

mod announce;
mod audit;
mod authz;
mod challenges;
mod devices;
mod error;
mod events;
mod keys;
mod listen;
mod outbox;
mod parties;
mod rows;

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Provider, ProviderRef};
use pushauth_store::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{
    AssertSqlSafe, Connection as _, Executor as _, PgConnection, PgPool, Postgres, Transaction,
};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use crate::error::db;
use crate::listen::Channels;

/// Capacity of the notification channel; a receiver that lags further re-reads.
const EVENT_CAPACITY: usize = 256;

/// The PostgreSQL [`Store`]. Cheap to clone: clones share the pool, the notification
/// channel and its LISTEN task, which stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    events: broadcast::Sender<StoreEvent>,
    announcer: Arc<announce::Announcer>,
    listener: AbortHandle,
    notifier: AbortHandle,
    /// Tells the audit chainer to stop after its current run (it is not aborted: see
    /// `audit::run_chainer`).
    chainer_stop: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
        self.notifier.abort();
        let _ = self.chainer_stop.send(true);
    }
}

impl PgStore {
    /// Connects a pool of at most `max_connections` (plus one dedicated LISTEN
    /// connection) to the database at `url`, using the connection's default schema.
    /// Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(db)?;
        Self::start(options, None, max_connections).await
    }

    /// Like [`PgStore::connect`], but inside `schema`, which is created if missing;
    /// every pooled connection gets `search_path` set to it. Several deployments (or
    /// tests) can so share one database. `schema` must be a lower-case identifier
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect_in_schema(
        url: &str,
        schema: &str,
        max_connections: u32,
    ) -> StoreResult<Self> {
        let valid = schema.len() <= 63
            && schema
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StoreError::Backend(format!(
                "invalid schema name {schema:?}: expected [a-z_][a-z0-9_]*, at most 63 bytes"
            )));
        }
        let options = PgConnectOptions::from_str(url).map_err(db)?;
        let mut conn = PgConnection::connect_with(&options).await.map_err(db)?;
        // Validated above, so quoting cannot be escaped. Two stores creating the same
        // schema at once may race on the catalog's unique index: that is success.
        let created = conn
            .execute(AssertSqlSafe(format!(
                r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#
            )))
            .await;
        match created {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
            Err(e) => return Err(db(e)),
        }
        let _ = conn.close().await;
        Self::start(options, Some(schema.to_owned()), max_connections).await
    }

    async fn start(
        options: PgConnectOptions,
        schema: Option<String>,
        max_connections: u32,
    ) -> StoreResult<Self> {
        let mut pool = PgPoolOptions::new().max_connections(max_connections.max(1));
        if let Some(schema) = schema {
            pool = pool.after_connect(move |conn, _meta| {
                let set = format!(r#"SET search_path TO "{schema}""#);
                Box::pin(async move { conn.execute(AssertSqlSafe(set)).await.map(|_| ()) })
            });
        }
        let pool = pool.connect_with(options.clone()).await.map_err(db)?;
        let current = sqlx::query_scalar!(r#"SELECT current_schema() AS "schema""#)
            .fetch_one(&pool)
            .await
            .map_err(db)?;
        let channels = Channels::for_schema(current.as_deref().unwrap_or("public"));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let announcer = announce::Announcer::new(events.clone());
        let listener = listen::start(
            options.clone(),
            channels.clone(),
            events.clone(),
            announcer.clone(),
        )
        .await?;
        let notifier = announce::start(options, channels, announcer.clone());
        let (chainer_stop, stop) = watch::channel(false);
        tokio::spawn(audit::run_chainer(pool.clone(), stop));
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                events,
                announcer,
                listener,
                notifier,
                chainer_stop,
            }),
        })
    }

    /// Starts a (READ COMMITTED) transaction.
    pub(crate) async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.inner.pool.begin().await.map_err(db)
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Announces a committed change to this store's subscribers and, by `NOTIFY`, to
    /// other instances (see the `announce` module). Call after the commit.
    pub(crate) fn committed(&self, cardholder: Option<&CardholderId>, outbox: bool) {
        self.inner.announcer.committed(cardholder, outbox);
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!()
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query!("SELECT 1 AS one")
            .fetch_one(self.pool())
            .await
            .map_err(db)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.inner.events.subscribe()
    }

    async fn server_key_get_or_insert(
        &self,
        candidate: ServerKeyRecord,
    ) -> StoreResult<ServerKeyRecord> {
        keys::server_key_get_or_insert(self, candidate).await
    }
    async fn admin_key_insert(&self, key: NewAdminKey) -> StoreResult<AdminKey> {
        keys::admin_key_insert(self, key).await
    }
    async fn admin_key_find(&self, key_hash: &KeyHash) -> StoreResult<Option<AdminKey>> {
        keys::admin_key_find(self, key_hash).await
    }
    async fn admin_key_any(&self) -> StoreResult<bool> {
        keys::admin_key_any(self).await
    }
    async fn admin_key_list(&self) -> StoreResult<Vec<AdminKey>> {
        keys::admin_key_list(self).await
    }
    async fn admin_key_revoke(&self, id: i64, now: Millis, audit: AuditDraft) -> StoreResult<bool> {
        keys::admin_key_revoke(self, id, now, audit).await
    }
    async fn admin_key_sync_configured(&self, key: NewAdminKey) -> StoreResult<(AdminKey, u64)> {
        keys::admin_key_sync_configured(self, key).await
    }
    async fn server_key_list(&self) -> StoreResult<Vec<ServerKeyRecord>> {
        keys::server_key_list(self).await
    }
    async fn server_key_rotate(
        &self,
        current_kid: &str,
        new: ServerKeyRecord,
        now: Millis,
    ) -> StoreResult<bool> {
        keys::server_key_rotate(self, current_kid, new, now).await
    }
    async fn server_key_rewrap(
        &self,
        kid: &str,
        expected: &[u8],
        material: Vec<u8>,
        wrapped: bool,
    ) -> StoreResult<bool> {
        keys::server_key_rewrap(self, kid, expected, material, wrapped).await
    }

    async fn cardholder_create(
        &self,
        new: NewCardholder,
        audit: AuditDraft,
    ) -> StoreResult<Cardholder> {
        parties::cardholder_create(self, new, audit).await
    }
    async fn cardholder_get(&self, id: &CardholderId) -> StoreResult<Option<Cardholder>> {
        parties::cardholder_get(self, id).await
    }
    async fn cardholder_list(&self, page: Page) -> StoreResult<Vec<Cardholder>> {
        parties::cardholder_list(self, page).await
    }
    async fn cardholder_set_status(
        &self,
        id: &CardholderId,
        status: CardholderStatus,
        audit: AuditDraft,
    ) -> StoreResult<bool> {
        parties::cardholder_set_status(self, id, status, audit).await
    }
    async fn cardholder_block(
        &self,
        id: &CardholderId,
        now: Millis,
        audit: AuditDraft,
        cancel: CancelPlanner,
    ) -> StoreResult<BlockOutcome> {
        authz::cardholder_block(self, id, now, audit, cancel).await
    }
    async fn card_link_create(&self, new: NewCardLink, audit: AuditDraft) -> StoreResult<CardLink> {
        parties::card_link_create(self, new, audit).await
    }
    async fn card_link_delete(&self, id: &LinkId, audit: AuditDraft) -> StoreResult<bool> {
        parties::card_link_delete(self, *id, audit).await
    }
    async fn card_link_list(&self, cardholder: &CardholderId) -> StoreResult<Vec<CardLink>> {
        parties::card_link_list(self, cardholder).await
    }
    async fn card_link_resolve(
        &self,
        provider: Provider,
        provider_key: &str,
    ) -> StoreResult<Option<CardLink>> {
        parties::card_link_resolve(self, provider, provider_key).await
    }

    async fn activation_create(&self, new: NewActivation, audit: AuditDraft) -> StoreResult<()> {
        devices::activation_create(self, new, audit).await
    }
    async fn device_enroll(
        &self,
        code_hash: &KeyHash,
        now: Millis,
        device: NewDevice,
        audit: AuditDraft,
    ) -> StoreResult<EnrollOutcome> {
        devices::enroll(self, code_hash, now, device, audit).await
    }
    async fn device_get(&self, id: &DeviceId) -> StoreResult<Option<Device>> {
        devices::get(self, id).await
    }
    async fn device_list(&self, cardholder: &CardholderId) -> StoreResult<Vec<Device>> {
        devices::list(self, cardholder).await
    }
    async fn device_set_status(
        &self,
        id: &DeviceId,
        status: DeviceStatus,
        audit: AuditDraft,
    ) -> StoreResult<bool> {
        devices::set_status(self, id, status, audit).await
    }
    async fn device_set_push_token(
        &self,
        id: &DeviceId,
        token: Option<PushTarget>,
        audit: AuditDraft,
    ) -> StoreResult<DeviceWrite> {
        devices::set_push_token(self, id, token, audit).await
    }
    async fn device_push_token_dead(
        &self,
        id: &DeviceId,
        token: &str,
        audit: AuditDraft,
    ) -> StoreResult<bool> {
        devices::push_token_dead(self, id, token, audit).await
    }
    async fn device_rotate_key(
        &self,
        id: &DeviceId,
        key_use: KeyUse,
        old_thumbprint: &str,
        new_key: DeviceKey,
        audit: AuditDraft,
    ) -> StoreResult<RotateOutcome> {
        devices::rotate_key(self, id, key_use, old_thumbprint, new_key, audit).await
    }
    async fn device_migration_grant(
        &self,
        grant: NewMigrationGrant,
        audit: AuditDraft,
    ) -> StoreResult<GrantOutcome> {
        devices::migration_grant(self, grant, audit).await
    }
    async fn device_record_failure(
        &self,
        id: &DeviceId,
        lock_after: i32,
        now: Millis,
        audit: AuditDraft,
    ) -> StoreResult<FailureOutcome> {
        devices::record_failure(self, id, lock_after, now, audit).await
    }
    async fn request_nonce_use(
        &self,
        device: &DeviceId,
        jti: &str,
        expires_at: Millis,
    ) -> StoreResult<bool> {
        devices::nonce_use(self, device, jti, expires_at).await
    }
    async fn request_nonce_purge(&self, now: Millis) -> StoreResult<u64> {
        devices::nonce_purge(self, now).await
    }

    async fn challenge_create(
        &self,
        new: NewChallenge,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<CreateOutcome> {
        challenges::create(self, new, outbox, audit).await
    }
    async fn challenge_create_planned(
        &self,
        provider: Provider,
        reference: &ProviderRef,
        cardholder: &CardholderId,
        now: Millis,
        plan: Planner,
    ) -> StoreResult<PlannedOutcome> {
        challenges::create_planned(self, provider, reference, cardholder, now, plan).await
    }
    async fn challenge_get(&self, id: &ChallengeId) -> StoreResult<Option<Challenge>> {
        challenges::get(self, id).await
    }
    async fn challenge_find(
        &self,
        provider: Provider,
        provider_ref: &ProviderRef,
    ) -> StoreResult<Option<Challenge>> {
        challenges::find(self, provider, provider_ref).await
    }
    async fn challenge_list(&self, filter: ChallengeFilter) -> StoreResult<Vec<Challenge>> {
        challenges::list(self, filter).await
    }
    async fn challenge_pending_for(
        &self,
        cardholder: &CardholderId,
        now: Millis,
    ) -> StoreResult<Vec<Challenge>> {
        challenges::pending_for(self, cardholder, now).await
    }
    async fn challenge_decide_claiming(
        &self,
        decision: NewDecision,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<(DecideOutcome, Vec<OutboxItem>)> {
        challenges::decide(self, decision, outbox, audit).await
    }
    async fn challenge_close(
        &self,
        id: &ChallengeId,
        to: ChallengeStatus,
        now: Millis,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<bool> {
        challenges::close(self, id, to, now, outbox, audit).await
    }
    async fn challenge_due(&self, now: Millis, limit: i64) -> StoreResult<Vec<Challenge>> {
        challenges::due(self, now, limit).await
    }
    async fn challenge_count_pending(
        &self,
        cardholder: &CardholderId,
        now: Millis,
    ) -> StoreResult<i64> {
        challenges::count_pending(self, cardholder, now).await
    }
    async fn challenge_final_status(
        &self,
        provider: Provider,
        provider_ref: &ProviderRef,
        status: serde_json::Value,
        audit: AuditDraft,
    ) -> StoreResult<bool> {
        challenges::final_status(self, provider, provider_ref, status, audit).await
    }
    async fn decision_get(&self, id: &ChallengeId) -> StoreResult<Option<Decision>> {
        challenges::decision_get(self, id).await
    }

    async fn outbox_claim_lane(
        &self,
        now: Millis,
        lease_ms: i64,
        limit: i64,
        lane: OutboxLane,
    ) -> StoreResult<Vec<OutboxItem>> {
        outbox::claim(self, now, lease_ms, limit, lane).await
    }
    async fn outbox_complete(
        &self,
        id: OutboxId,
        claim: i64,
        attempt: AttemptRecord,
        next: OutboxNext,
    ) -> StoreResult<bool> {
        outbox::complete(self, id, claim, attempt, next).await
    }
    async fn outbox_renew(&self, id: OutboxId, claim: i64, until: Millis) -> StoreResult<bool> {
        outbox::renew(self, id, claim, until).await
    }
    async fn outbox_mark_sending(&self, id: OutboxId, claim: i64, at: Millis) -> StoreResult<bool> {
        outbox::mark_sending(self, id, claim, at).await
    }
    async fn outbox_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<OutboxItem>> {
        outbox::for_challenge(self, id).await
    }
    async fn attempts_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<Attempt>> {
        outbox::attempts_for_challenge(self, id).await
    }
    async fn outbox_next_due_lane(&self, lane: OutboxLane) -> StoreResult<Option<Millis>> {
        outbox::next_due(self, lane).await
    }

    async fn audit_append(&self, draft: AuditDraft) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        audit::append(&mut tx, &draft).await?;
        tx.commit().await.map_err(db)
    }
    async fn audit_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<AuditEntry>> {
        audit::for_challenge(self, id).await
    }
    async fn audit_verify(&self) -> StoreResult<ChainCheck> {
        audit::verify(self).await
    }

    async fn issuer_events_fan_out(
        &self,
        routes: &[EventRoute],
        now: Millis,
        limit: i64,
    ) -> StoreResult<u64> {
        events::fan_out(self, routes, now, limit).await
    }
    async fn issuer_event_claim(
        &self,
        endpoints: &[String],
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> StoreResult<Vec<EventDelivery>> {
        events::claim(self, endpoints, now, lease_until, limit).await
    }
    async fn issuer_event_complete(
        &self,
        id: i64,
        claim: i64,
        next: DeliveryNext,
        attempt: DeliveryAttempt,
    ) -> StoreResult<bool> {
        events::complete(self, id, claim, next, attempt).await
    }
    async fn issuer_event_orphans_fail(
        &self,
        endpoints: &[String],
        due_before: Millis,
        now: Millis,
        reason: &str,
        limit: i64,
    ) -> StoreResult<u64> {
        events::orphans_fail(self, endpoints, due_before, now, reason, limit).await
    }
    async fn issuer_events_recent(&self, limit: i64) -> StoreResult<Vec<IssuerEventView>> {
        events::recent(self, limit).await
    }
    async fn issuer_events_purge(&self, created_before: Millis, limit: i64) -> StoreResult<u64> {
        events::purge(self, created_before, limit).await
    }
}
