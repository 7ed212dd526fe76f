//! # pushauth-store
//!
//! The storage contract of the server. Every method of [`Store`] is one unit of work:
//! the backends run it in one database transaction, so a state change and the side
//! effects it implies (outbox rows, audit entries) are written together or not at
//! all. Two backends implement it: `pushauth-store-sqlite` (embedded default) and
//! `pushauth-store-postgres` (several instances); both pass the same conformance
//! suite (`pushauth-store-sqlite/tests`, `pushauth-store-postgres/tests`).
//!
//! Times are Unix **milliseconds** ([`Millis`]) everywhere in storage.

mod audit;
mod authz;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod decode;
mod devices;
mod events;
mod model;
mod outbox;
mod states;

pub use audit::{AuditDraft, AuditEntry, ChainCheck, GENESIS_HASH, entry_hash};
pub use authz::{BlockOutcome, CancelPlanner, DecideRefusal, decide_refusal};
pub use devices::*;
pub use events::*;
pub use model::*;
pub use outbox::*;
pub use states::*;

use async_trait::async_trait;
use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Provider, ProviderRef};
pub use pushauth_core::keys::KeyUse;

/// Storage errors. Backend errors are kept as text for logs; they never reach an API
/// client (the server maps them to a generic 500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (e.g. the card link already exists).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A referenced row does not exist (e.g. linking a card to an unknown cardholder).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// A stored value could not be decoded into its domain type (corrupt row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
}

/// A change notification (see [`Store::subscribe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// Outbox rows were written or rescheduled: workers should look.
    OutboxReady,
    /// A challenge of this cardholder was created or closed: device streams should look.
    Challenge {
        /// Whose.
        cardholder: CardholderId,
    },
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// The repository. Implementations must be safe for concurrent use by many tasks and,
/// for PostgreSQL, by many server instances on one database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;

    /// Checks that the database answers (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Subscribes to change notifications. On PostgreSQL they come from
    /// `LISTEN/NOTIFY`, so every instance hears about rows written by any instance; on
    /// SQLite (single instance) from the process itself. Notifications are hints: a
    /// lagged receiver must simply re-read the database.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StoreEvent>;

    // ---- server keys and admin keys -------------------------------------------------

    /// Returns the active server signing key, inserting `candidate` first if there is
    /// none. Safe when several instances start at once: exactly one key wins and all
    /// of them return it.
    async fn server_key_get_or_insert(
        &self,
        candidate: ServerKeyRecord,
    ) -> StoreResult<ServerKeyRecord>;

    /// Every server signing key: the active one first, then the previous ones, newest
    /// first.
    async fn server_key_list(&self) -> StoreResult<Vec<ServerKeyRecord>>;
    /// Makes `new` the active key and the current active key (`current_kid`) a
    /// previous one retired at `now`, in one transaction; false (nothing written)
    /// when `current_kid` is no longer the active key.
    async fn server_key_rotate(
        &self,
        current_kid: &str,
        new: ServerKeyRecord,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Replaces the stored material of key `kid` (wrapping it under a key-encryption
    /// key, or re-wrapping it under a new one) if it is still `expected`.
    async fn server_key_rewrap(
        &self,
        kid: &str,
        expected: &[u8],
        material: Vec<u8>,
        wrapped: bool,
    ) -> StoreResult<bool>;

    /// Inserts an admin API key (only its SHA-256 hash is stored).
    async fn admin_key_insert(&self, key: NewAdminKey) -> StoreResult<AdminKey>;
    /// Finds a non-revoked admin key by the SHA-256 hash of the presented key. Read
    /// from the database at every use, so a revocation by any instance or by the CLI
    /// holds at once everywhere.
    async fn admin_key_find(&self, key_hash: &KeyHash) -> StoreResult<Option<AdminKey>>;
    /// Whether any non-revoked admin key exists.
    async fn admin_key_any(&self) -> StoreResult<bool>;
    /// Every admin key, revoked ones included, oldest first.
    async fn admin_key_list(&self) -> StoreResult<Vec<AdminKey>>;
    /// Revokes a key at `now` with its audit entry; false when it is unknown or
    /// already revoked (nothing written).
    async fn admin_key_revoke(&self, id: i64, now: Millis, audit: AuditDraft) -> StoreResult<bool>;
    /// Start-up with `security.admin_key` set: inserts the configured key (origin
    /// `configured`) unless its hash is stored, and revokes every other non-revoked
    /// key of origin `configured`, in one transaction, with an audit entry per
    /// revocation. Returns the configured key as stored (possibly revoked, which the
    /// caller refuses) and how many keys were revoked.
    async fn admin_key_sync_configured(&self, key: NewAdminKey) -> StoreResult<(AdminKey, u64)>;

    // ---- cardholders and card links -------------------------------------------------

    /// Creates a cardholder. `Conflict` when `external_ref` is taken.
    async fn cardholder_create(
        &self,
        new: NewCardholder,
        audit: AuditDraft,
    ) -> StoreResult<Cardholder>;
    /// Reads a cardholder.
    async fn cardholder_get(&self, id: &CardholderId) -> StoreResult<Option<Cardholder>>;
    /// Lists cardholders, newest first, `created_at < before` when given.
    async fn cardholder_list(&self, page: Page) -> StoreResult<Vec<Cardholder>>;
    /// Sets a cardholder's status (blocked cardholders get no challenges).
    async fn cardholder_set_status(
        &self,
        id: &CardholderId,
        status: CardholderStatus,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    /// Blocks a cardholder and, in the same transaction, cancels every pending
    /// challenge of theirs whose deadline has not passed, writing for each the outbox
    /// rows and audit entry `cancel` gives (the processor's negative result, dismiss
    /// pushes). `audit` records the block itself. A decision racing with the block
    /// either commits first (its challenge is then no longer pending) or is refused.
    async fn cardholder_block(
        &self,
        id: &CardholderId,
        now: Millis,
        audit: AuditDraft,
        cancel: CancelPlanner,
    ) -> StoreResult<BlockOutcome>;

    /// Links a processor-side identifier to a cardholder. `Conflict` when
    /// (provider, provider_key) is already linked, `NotFound` when the cardholder is unknown.
    async fn card_link_create(&self, new: NewCardLink, audit: AuditDraft) -> StoreResult<CardLink>;
    /// Removes a link; false when it did not exist.
    async fn card_link_delete(&self, id: &LinkId, audit: AuditDraft) -> StoreResult<bool>;
    /// Links of a cardholder.
    async fn card_link_list(&self, cardholder: &CardholderId) -> StoreResult<Vec<CardLink>>;
    /// Resolves a processor identifier to its cardholder.
    async fn card_link_resolve(
        &self,
        provider: Provider,
        provider_key: &str,
    ) -> StoreResult<Option<CardLink>>;

    // ---- enrollment and devices -----------------------------------------------------

    /// Stores a new activation code (hash only).
    async fn activation_create(&self, new: NewActivation, audit: AuditDraft) -> StoreResult<()>;
    /// Consumes an activation code and creates the device, in one transaction. The
    /// code is single use: a second call with the same code gets `CodeUsed`. Only
    /// while the code's cardholder is active, checked in that transaction: otherwise
    /// `CardholderBlocked` and nothing is written.
    async fn device_enroll(
        &self,
        code_hash: &KeyHash,
        now: Millis,
        device: NewDevice,
        audit: AuditDraft,
    ) -> StoreResult<EnrollOutcome>;
    /// Reads a device.
    async fn device_get(&self, id: &DeviceId) -> StoreResult<Option<Device>>;
    /// Devices of a cardholder (all statuses).
    async fn device_list(&self, cardholder: &CardholderId) -> StoreResult<Vec<Device>>;
    /// Sets a device's status (lock, unlock, revoke). Unlocking resets the failure
    /// counter. Returns false for an unknown device.
    async fn device_set_status(
        &self,
        id: &DeviceId,
        status: DeviceStatus,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    /// Replaces a device's push token (and re-activates push for it), only while the
    /// device is active (checked in the same transaction as the write).
    async fn device_set_push_token(
        &self,
        id: &DeviceId,
        token: Option<PushTarget>,
        audit: AuditDraft,
    ) -> StoreResult<DeviceWrite>;
    /// Marks the push token dead (APNs 410 / FCM UNREGISTERED) if it is still `token`.
    async fn device_push_token_dead(
        &self,
        id: &DeviceId,
        token: &str,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    /// Swaps the key of `key_use` if the device is active and that key still has
    /// `old_thumbprint` (compare-and-swap, one transaction). When that key already is
    /// `new_key` (a retry after a lost answer) nothing is written: `AlreadyCurrent`.
    async fn device_rotate_key(
        &self,
        id: &DeviceId,
        key_use: KeyUse,
        old_thumbprint: &str,
        new_key: DeviceKey,
        audit: AuditDraft,
    ) -> StoreResult<RotateOutcome>;
    /// Consumes a migration grant (`jti` single use per device) and creates the
    /// activation code for the device's cardholder, in one transaction, only while the
    /// device and its cardholder are active (`NotActive`, `CardholderBlocked`: nothing
    /// written).
    async fn device_migration_grant(
        &self,
        grant: NewMigrationGrant,
        audit: AuditDraft,
    ) -> StoreResult<GrantOutcome>;
    /// Records one refused proof; locks the device when the count of consecutive
    /// failures reaches `lock_after` (PSD2 RTS art. 4(3)(b)). Returns the new count and
    /// whether the device is now locked.
    async fn device_record_failure(
        &self,
        id: &DeviceId,
        lock_after: i32,
        now: Millis,
        audit: AuditDraft,
    ) -> StoreResult<FailureOutcome>;
    /// Remembers a request `jti` until `expires_at`; false when it was already used.
    async fn request_nonce_use(
        &self,
        device: &DeviceId,
        jti: &str,
        expires_at: Millis,
    ) -> StoreResult<bool>;
    /// Forgets request nonces that expired before `now`. Returns how many.
    async fn request_nonce_purge(&self, now: Millis) -> StoreResult<u64>;

    // ---- challenges ------------------------------------------------------------------

    /// Creates a challenge with its outbox rows and audit entry in one transaction.
    /// When (provider, provider_ref) exists already, nothing is written and the
    /// existing challenge is returned as `Duplicate`.
    async fn challenge_create(
        &self,
        new: NewChallenge,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<CreateOutcome>;
    /// Creates a challenge as [`Store::challenge_create`] does, deciding what to write
    /// from a consistent view: in one transaction it looks the (provider, reference) up
    /// (an existing challenge is returned as `Duplicate` whatever else changed since),
    /// reads the cardholder's status, devices and pending count, runs `plan`, and writes
    /// what the plan says. Concurrent creations for one cardholder are serialised, so
    /// the pending count the planner sees cannot be overtaken (the MFA-fatigue limit
    /// holds under races). The plan's challenge must carry the same provider,
    /// reference and cardholder.
    async fn challenge_create_planned(
        &self,
        provider: Provider,
        reference: &ProviderRef,
        cardholder: &CardholderId,
        now: Millis,
        plan: Planner,
    ) -> StoreResult<PlannedOutcome>;
    /// Reads a challenge.
    async fn challenge_get(&self, id: &ChallengeId) -> StoreResult<Option<Challenge>>;
    /// Finds a challenge by the processor's reference.
    async fn challenge_find(
        &self,
        provider: Provider,
        provider_ref: &ProviderRef,
    ) -> StoreResult<Option<Challenge>>;
    /// Lists challenges matching `filter`, newest first.
    async fn challenge_list(&self, filter: ChallengeFilter) -> StoreResult<Vec<Challenge>>;
    /// The challenges whose processor reference is `reference` (that of
    /// `filter.provider`, or of any processor: at most one each) and that match the
    /// rest of `filter`, newest first. Shared by the backends: one lookup per processor
    /// on the unique `(provider, provider_ref)` index, never a scan.
    async fn challenge_find_reference(
        &self,
        reference: &ProviderRef,
        filter: &ChallengeFilter,
    ) -> StoreResult<Vec<Challenge>> {
        let mut found = Vec::new();
        for provider in Provider::ALL {
            if filter.provider.is_some_and(|p| p != provider) {
                continue;
            }
            if let Some(c) = self.challenge_find(provider, reference).await?
                && filter.matches(&c)
            {
                found.push(c);
            }
        }
        found.sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));
        found.truncate(usize::try_from(filter.limit.max(0)).unwrap_or(0));
        Ok(found)
    }
    /// Pending challenges of a cardholder whose deadline is after `now`, oldest first.
    async fn challenge_pending_for(
        &self,
        cardholder: &CardholderId,
        now: Millis,
    ) -> StoreResult<Vec<Challenge>>;
    /// Records the first valid decision: moves `pending → approved | denied` only if
    /// the challenge is still pending, `now` ≤ deadline, the answering device is
    /// active and the cardholder's, and the cardholder is active (all checked by the
    /// same transaction that writes, so a revocation, lock or block committed first
    /// wins: `Refused`), stores the decision with
    /// its proof, resets the device's failure counter, and writes `outbox` rows
    /// (upstream result, dismiss pushes) and the audit entry, all in one transaction.
    async fn challenge_decide(
        &self,
        decision: NewDecision,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<DecideOutcome> {
        Ok(self
            .challenge_decide_claiming(decision, outbox, audit)
            .await?
            .0)
    }
    /// [`Store::challenge_decide`], also returning the outbox rows that were written
    /// claimed (`NewOutbox::claimed_until`), for the caller to deliver at once.
    async fn challenge_decide_claiming(
        &self,
        decision: NewDecision,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<(DecideOutcome, Vec<OutboxItem>)>;
    /// Moves a pending challenge whose deadline passed to `expired` (or any pending
    /// challenge to `cancelled`), with outbox rows (e.g. Enfuce TIMEOUT) and audit.
    async fn challenge_close(
        &self,
        id: &ChallengeId,
        to: ChallengeStatus,
        now: Millis,
        outbox: Vec<NewOutbox>,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    /// Pending challenges whose deadline is before `now`, oldest first, at most `limit`.
    async fn challenge_due(&self, now: Millis, limit: i64) -> StoreResult<Vec<Challenge>>;
    /// Counts pending, unexpired challenges of a cardholder (MFA-fatigue guard).
    async fn challenge_count_pending(
        &self,
        cardholder: &CardholderId,
        now: Millis,
    ) -> StoreResult<i64>;
    /// Stores a processor's final-status notification against the challenge
    /// (Adyen `authentication.created`, Treezor `card3DSv2Authentication.update`).
    /// Returns false when no challenge has that reference.
    async fn challenge_final_status(
        &self,
        provider: Provider,
        provider_ref: &ProviderRef,
        status: serde_json::Value,
        audit: AuditDraft,
    ) -> StoreResult<bool>;
    /// The decision recorded for a challenge, if any.
    async fn decision_get(&self, id: &ChallengeId) -> StoreResult<Option<Decision>>;

    // ---- outbox ------------------------------------------------------------------------

    /// Claims up to `limit` due outbox rows (status pending, `next_attempt_at` ≤ now,
    /// not leased), leasing them until `now + lease_ms`. PostgreSQL uses
    /// `FOR UPDATE SKIP LOCKED`, so several instances never claim the same row.
    async fn outbox_claim(
        &self,
        now: Millis,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.outbox_claim_lane(now, lease_ms, limit, OutboxLane::All)
            .await
    }
    /// [`Store::outbox_claim`], taking only the rows of `lane`.
    async fn outbox_claim_lane(
        &self,
        now: Millis,
        lease_ms: i64,
        limit: i64,
        lane: OutboxLane,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Records one delivery attempt and its consequence, in one transaction: the
    /// attempt row, the outbox row's new status/schedule, the challenge's upstream
    /// status for upstream rows, and an audit entry when the row reaches a final state.
    /// Fenced: the consequence applies only when `claim` is the row's current claim and
    /// the row is still pending; otherwise only the attempt is recorded (it happened)
    /// and `false` is returned. Clears the lease and the sending mark (except for
    /// [`OutboxNext::Unknown`], which keeps the mark as evidence).
    async fn outbox_complete(
        &self,
        id: OutboxId,
        claim: i64,
        attempt: AttemptRecord,
        next: OutboxNext,
    ) -> StoreResult<bool>;
    /// Extends the lease of a row to `until` (never shortens it) while its holder works
    /// on it. `false` when `claim` is no longer the current claim or the row is final:
    /// the holder lost the row.
    async fn outbox_renew(&self, id: OutboxId, claim: i64, until: Millis) -> StoreResult<bool>;
    /// Marks (committed before the call) that the holder of `claim` is about to call the
    /// processor. `false` when the holder lost the row: it must not call.
    async fn outbox_mark_sending(&self, id: OutboxId, claim: i64, at: Millis) -> StoreResult<bool>;
    /// Outbox rows of a challenge.
    async fn outbox_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<OutboxItem>>;
    /// Delivery attempts of a challenge, oldest first.
    async fn attempts_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<Attempt>>;
    /// Earliest `next_attempt_at` of a pending row, to know how long workers may sleep.
    async fn outbox_next_due(&self) -> StoreResult<Option<Millis>> {
        self.outbox_next_due_lane(OutboxLane::All).await
    }
    /// [`Store::outbox_next_due`] for the rows of `lane` only.
    async fn outbox_next_due_lane(&self, lane: OutboxLane) -> StoreResult<Option<Millis>>;

    // ---- audit -------------------------------------------------------------------------

    /// Appends an audit entry on its own (most entries are written by the unit of
    /// work they describe).
    async fn audit_append(&self, draft: AuditDraft) -> StoreResult<()>;
    /// Audit entries about a challenge, in order.
    async fn audit_for_challenge(&self, id: &ChallengeId) -> StoreResult<Vec<AuditEntry>>;
    /// Re-computes the whole hash chain.
    async fn audit_verify(&self) -> StoreResult<ChainCheck>;

    // ---- issuer events (written by the audit append, see `events`) ---------------------

    /// Gives up to `limit` events not fanned out yet one pending delivery row per route
    /// that wants their type (due at `now`), and marks them fanned out, in one
    /// transaction. Safe to run on several instances at once. Returns how many events.
    async fn issuer_events_fan_out(
        &self,
        routes: &[EventRoute],
        now: Millis,
        limit: i64,
    ) -> StoreResult<u64>;
    /// Claims up to `limit` due, unleased, pending deliveries to the named endpoints,
    /// leased until `lease_until`, each with a new claim number (fencing token).
    async fn issuer_event_claim(
        &self,
        endpoints: &[String],
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> StoreResult<Vec<EventDelivery>>;
    /// Records an attempt's result on a claimed delivery. `false` (nothing changed) when
    /// `claim` is no longer the row's current claim or the row is final.
    async fn issuer_event_complete(
        &self,
        id: i64,
        claim: i64,
        next: DeliveryNext,
        attempt: DeliveryAttempt,
    ) -> StoreResult<bool>;
    /// Gives up (`failed`, with `reason` as the last error and a new claim number) up
    /// to `limit` unleased pending deliveries to endpoints not in `endpoints` that have
    /// been due since before `due_before`: an endpoint that some running instance
    /// knows has its due deliveries claimed at once, so these are for an endpoint no
    /// instance has had configured since then (removed or renamed). Returns how many.
    async fn issuer_event_orphans_fail(
        &self,
        endpoints: &[String],
        due_before: Millis,
        now: Millis,
        reason: &str,
        limit: i64,
    ) -> StoreResult<u64>;
    /// The latest `limit` events (newest first, at most 500) with their deliveries.
    async fn issuer_events_recent(&self, limit: i64) -> StoreResult<Vec<IssuerEventView>>;
    /// Deletes, with their deliveries, the events among the `limit` oldest (by
    /// sequence) that were written before `created_before`, are fanned out, and have no
    /// delivery still pending (each has ended `done` or `failed`, or no endpoint wanted
    /// the event). Returns how many events. Bounded by `limit` rows read whatever the
    /// table's size; an event still pending holds its place until it ends.
    async fn issuer_events_purge(&self, created_before: Millis, limit: i64) -> StoreResult<u64>;
}
