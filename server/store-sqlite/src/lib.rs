//! # pushauth-store-sqlite
//!
//! The embedded [`Store`] backend: one SQLite file in WAL mode, for a single server
//! instance. Every trait method is one transaction; every write transaction starts
//! with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so two writers
//! queue on the busy timeout instead of deadlocking on a read→write lock upgrade
//! (`SQLITE_BUSY` without retry). Writers are therefore serialised, which also makes
//! the audit hash chain, first-decision-wins and single-use codes trivially safe.
//!
//! Notifications ([`Store::subscribe`]) come from this process only: they are sent
//! on a broadcast channel after the transaction that caused them has committed.
//!
//! Queries are compile-time checked (`sqlx::query!`) against the committed offline
//! cache in `.sqlx/`; see `server/scripts/sqlx-prepare.sh` to regenerate it.

mod audit;
mod authz;
mod challenges;
mod checkpoint;
mod devices;
mod direct;
mod direct_read;
mod error;
mod events;
mod gate;
mod group;
mod keys;
mod outbox;
mod parties;
mod rows;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Provider, ProviderRef};
use pushauth_store::*;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, broadcast, watch};

use crate::checkpoint::{Checkpointer, run_checkpointer};
use crate::error::db;
pub(crate) use crate::gate::{ChainHead, WriteTx};

/// Connections of the pool. Writers are serialised by SQLite anyway; the extra
/// connections serve concurrent readers (WAL lets them run beside the writer).
/// Four is plenty on a 2-core machine.
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for SQLite's write lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `PRAGMA mmap_size`, set explicitly to 0: no memory-mapped reads. With a mapping,
/// each connection unmaps the whole file (`unixUnfetch` from `sqlite3PagerSharedLock`)
/// at the start of a read after another connection changed it, so under load every
/// read paid an `munmap` of the file with its TLB shoot-down and then page faults to
/// map it again (`perf`: 5.8 % of the server's CPU in `munmap` alone). Measured
/// without it: full cycle 8-12 % more approvals per second and 0.2 ms less CPU per
/// approval, ingest 6 % less CPU per webhook (docs/benchmarks.md, second round). It
/// had paid off (12 %) before the writes moved to their own connection.
const MMAP_SIZE: u64 = 0;
/// `PRAGMA temp_store`: temporary files, and with them every statement journal, in
/// memory. A direct write runs inside a savepoint (see `group`), so SQLite keeps a copy
/// of each page the write changes first in a statement journal, to roll the savepoint
/// back. With the default (`FILE`) that journal spills to a temporary file past 64 KiB:
/// under load the server wrote more pages there (a 4-byte page number and a 4,096-byte
/// page each, two `pwrite`s) than to the WAL. Its size is bounded by the pages one batch
/// of writes touches (docs/benchmarks.md, fifth round). Sorts that outgrow the page
/// cache would also stay in memory; the server's sorts follow an index, or are bounded
/// by a `LIMIT` or by the rows of one challenge or cardholder.
pub(crate) const TEMP_STORE: &str = "MEMORY";
/// Capacity of the notification channel; a receiver that lags further re-reads.
const EVENT_CAPACITY: usize = 256;

/// The SQLite [`Store`]. Cheap to clone: clones share the pool and the
/// notification channel.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    events: broadcast::Sender<StoreEvent>,
    /// The write gate: held for the whole of every write transaction. It guards the
    /// audit chain's head as last committed, so appenders need not read it back, and
    /// the direct path's own connection.
    gate: Arc<Mutex<ChainHead>>,
    /// Group commit of direct writes (file databases only), see `group`.
    group: Option<Arc<group::Group>>,
    /// Stops the checkpointer when the last clone of the store is dropped.
    _checkpointer: Arc<Checkpointer>,
    /// The direct read path (file databases only), see `direct_read`.
    readers: Option<Arc<direct_read::Readers>>,
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it and its parent directories if
    /// missing, with WAL journal, `synchronous=NORMAL`, foreign keys on and a 5 s busy
    /// timeout. Does not migrate: call [`Store::migrate`].
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", parent.display())))?;
        }
        Self::with_options(
            SqliteConnectOptions::new().filename(path),
            MAX_CONNECTIONS,
            false,
        )
        .await
    }

    /// Opens a database from an sqlx URL (`sqlite:data/pushauth.db`,
    /// `sqlite://…?mode=rwc`), with the same settings as [`SqliteStore::open`]. An
    /// in-memory URL (`sqlite::memory:`) gets a single connection, since every
    /// connection would otherwise see its own empty database.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url).map_err(db)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::with_options(
            options,
            if in_memory { 1 } else { MAX_CONNECTIONS },
            in_memory,
        )
        .await
    }

    async fn with_options(
        options: SqliteConnectOptions,
        max_connections: u32,
        in_memory: bool,
    ) -> StoreResult<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("mmap_size", MMAP_SIZE.to_string())
            .pragma("temp_store", TEMP_STORE)
            // Checkpoints run in the background (see `CHECKPOINT_EVERY`), not in commits.
            .pragma("wal_autocheckpoint", if in_memory { "1000" } else { "0" })
            .pragma("journal_size_limit", checkpoint::WAL_SIZE_LIMIT.to_string());
        let pool = SqlitePoolOptions::new()
            // A pooled connection is an in-process handle: nothing to ping.
            .test_before_acquire(false)
            .max_connections(max_connections)
            .min_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        // After the pool: its first connection created the file and switched it to WAL.
        let writer =
            direct::open_writer(options.get_filename(), in_memory, BUSY_TIMEOUT, MMAP_SIZE)?;
        let gate = Arc::new(Mutex::new(ChainHead(None, writer, None)));
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (stop_tx, stop) = watch::channel(false);
        if !in_memory {
            tokio::spawn(run_checkpointer(pool.clone(), Arc::clone(&gate), stop));
        }
        let readers = if in_memory {
            None
        } else {
            Some(Arc::new(direct_read::Readers::open(
                options.get_filename(),
                2,
                BUSY_TIMEOUT,
                MMAP_SIZE,
            )?))
        };
        Ok(SqliteStore {
            pool,
            events,
            gate,
            group: (!in_memory).then(Arc::default),
            _checkpointer: Arc::new(Checkpointer(stop_tx)),
            readers,
        })
    }

    /// Starts a write transaction: waits for the write gate (first come, first
    /// served), then takes SQLite's write lock (`BEGIN IMMEDIATE`).
    pub(crate) async fn write(&self) -> StoreResult<WriteTx> {
        let mut gate = Arc::clone(&self.gate).lock_owned().await;
        gate::flush(&mut gate);
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
        Ok(WriteTx {
            tx,
            gate,
            head: None,
        })
    }

    /// Sends a notification (call only after commit). Nobody listening is fine.
    pub(crate) fn emit(&self, event: StoreEvent) {
        let _ = self.events.send(event);
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query!("SELECT 1 AS one")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
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
        match &self.readers {
            Some(r) => {
                r.read(|c| direct_read::card_link_in(c, provider.as_str(), provider_key))
                    .await
            }
            None => parties::card_link_resolve(self, provider, provider_key).await,
        }
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
        match &self.readers {
            Some(r) => r.read(|c| direct_read::device_in(c, id.as_str())).await,
            None => devices::get(self, id).await,
        }
    }
    async fn device_list(&self, cardholder: &CardholderId) -> StoreResult<Vec<Device>> {
        match &self.readers {
            Some(r) => {
                r.read(|c| direct_read::devices_in(c, cardholder.as_str()))
                    .await
            }
            None => devices::list(self, cardholder).await,
        }
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
        match &self.readers {
            Some(r) => r.read(|c| direct_read::challenge_in(c, id.as_str())).await,
            None => challenges::get(self, id).await,
        }
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
        match &self.readers {
            Some(r) => r.read(|c| direct_read::next_due_in(c, lane)).await,
            None => outbox::next_due(self, lane).await,
        }
    }

    async fn audit_append(&self, draft: AuditDraft) -> StoreResult<()> {
        let mut tx = self.write().await?;
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
