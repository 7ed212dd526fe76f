//! Domain records as stored. Inputs are `New*` structs; outputs carry the columns the
//! database adds. Identifiers and amounts use the core's parsing newtypes, so a record
//! read back from storage is as well-formed as one built from a request.

use std::fmt;

use pushauth_core::ids::{CardholderId, ChallengeId, DeviceId, Nonce, Provider, ProviderRef};
use pushauth_core::money::Money;
use pushauth_core::transaction::{Payee, Transaction, TransactionKind, TxnDetails, TxnDigest};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::audit::AuditDraft;
use crate::states::*;

/// Unix time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// Whole seconds (floor), for JWT claims.
    pub fn as_unix_time(self) -> pushauth_core::UnixTime {
        pushauth_core::UnixTime(self.0.div_euclid(1000))
    }
    /// From whole seconds.
    pub fn from_unix_time(t: pushauth_core::UnixTime) -> Millis {
        Millis(t.0.saturating_mul(1000))
    }
    /// This instant plus `ms`.
    pub fn plus(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
    /// RFC 3339 in UTC with milliseconds (`2026-12-04T21:40:00.123Z`).
    pub fn to_rfc3339(self) -> String {
        let ms = self.0;
        let secs = ms.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            ms.rem_euclid(1000)
        )
    }
}

#[cfg(test)]
#[test]
fn rfc3339_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(20_775), (2026, 11, 18));
    assert_eq!(Millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        Millis(1_795_000_000_123).to_rfc3339(),
        "2026-11-18T11:06:40.123Z"
    );
    assert_eq!(Millis(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// SHA-256 of a secret (admin key, activation code), the only form in which secrets
/// are stored. Hex in the database.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// Hashes a secret.
    pub fn of(secret: &[u8]) -> KeyHash {
        KeyHash(sha2::Sha256::digest(secret).into())
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Parses lower-case hex.
    pub fn from_hex(s: &str) -> Option<KeyHash> {
        let v = hex::decode(s).ok()?;
        Some(KeyHash(v.try_into().ok()?))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

/// A server challenge-signing key of the keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// PKCS#8 DER of the private key, or its AES-256-GCM envelope when `wrapped`.
    pub pkcs8: Vec<u8>,
    /// Whether `pkcs8` is wrapped by the key-encryption key.
    pub wrapped: bool,
    /// Creation time.
    pub created_at: Millis,
    /// When it stopped being the active key (`None`: it is the active one).
    pub retired_at: Option<Millis>,
}

impl fmt::Debug for ServerKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKeyRecord(kid={})", self.kid)
    }
}

/// A new admin API key.
#[derive(Debug, Clone)]
pub struct NewAdminKey {
    /// Who or what it is for.
    pub name: String,
    /// SHA-256 of the key.
    pub key_hash: KeyHash,
    /// What it may do.
    pub scope: AdminScope,
    /// Where it comes from.
    pub origin: KeyOrigin,
    /// Creation time.
    pub created_at: Millis,
}

/// A stored admin API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminKey {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// What it may do.
    pub scope: AdminScope,
    /// Where it comes from.
    pub origin: KeyOrigin,
    /// Creation time.
    pub created_at: Millis,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
}

/// A page of a newest-first listing.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Only rows created strictly before this instant.
    pub before: Option<Millis>,
    /// At most this many rows.
    pub limit: i64,
}

/// A new cardholder.
#[derive(Debug, Clone)]
pub struct NewCardholder {
    /// Id (chosen by the server).
    pub id: CardholderId,
    /// The issuer's own reference, unique when present.
    pub external_ref: Option<String>,
    /// A label for operators (no personal data needed).
    pub label: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A cardholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cardholder {
    /// Id.
    pub id: CardholderId,
    /// The issuer's reference.
    pub external_ref: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Status.
    pub status: CardholderStatus,
    /// Creation time.
    pub created_at: Millis,
}

/// Card link id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkId(pub i64);

/// A new processor-identifier link.
#[derive(Debug, Clone)]
pub struct NewCardLink {
    /// The cardholder.
    pub cardholder: CardholderId,
    /// The processor.
    pub provider: Provider,
    /// Enfuce customerNumber, Adyen paymentInstrumentId, Paysafe customer id, Treezor
    /// cardId or publicToken, or the issuer's key for the generic API.
    pub provider_key: String,
    /// Operator label (e.g. card last four).
    pub label: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A processor-identifier link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardLink {
    /// Id.
    pub id: LinkId,
    /// Cardholder.
    pub cardholder: CardholderId,
    /// Processor.
    pub provider: Provider,
    /// Processor-side key.
    pub provider_key: String,
    /// Label.
    pub label: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A new activation code (stored hashed).
#[derive(Debug, Clone)]
pub struct NewActivation {
    /// SHA-256 of the code.
    pub code_hash: KeyHash,
    /// The cardholder the device will belong to.
    pub cardholder: CardholderId,
    /// Expiry.
    pub expires_at: Millis,
    /// Creation time.
    pub created_at: Millis,
}

/// A device public key as stored: the JWK JSON and its RFC 7638 thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceKey {
    /// Public JWK, JSON text.
    pub jwk: String,
    /// RFC 7638 thumbprint.
    pub thumbprint: String,
}

/// Where to push.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct PushTarget {
    /// APNs device token (hex) or FCM registration token.
    pub token: String,
    /// APNs environment (iOS only).
    pub environment: Option<PushEnvironment>,
}

impl fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.token.chars().take(8).collect();
        write!(f, "PushTarget({shown}…, {:?})", self.environment)
    }
}

/// A device to create at enrollment.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Id (chosen by the server).
    pub id: DeviceId,
    /// Platform.
    pub platform: Platform,
    /// User-visible name ("Anna's iPhone").
    pub label: Option<String>,
    /// Device key (ECDSA, no user presence): request proofs, declines.
    pub device_key: DeviceKey,
    /// Approval key (ECDSA, biometric per use): approval proofs, migration grants.
    pub approval_key: DeviceKey,
    /// ECDH key push payloads are encrypted to.
    pub agreement_key: DeviceKey,
    /// Push token, when the app has one.
    pub push: Option<PushTarget>,
    /// `kid` of the server key given to the device at enrollment (the key it pins and
    /// verifies challenges with).
    pub server_kid: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Owner.
    pub cardholder: CardholderId,
    /// Status.
    pub status: DeviceStatus,
    /// Platform.
    pub platform: Platform,
    /// Label.
    pub label: Option<String>,
    /// Device key (request proofs, declines). Column `signing_*`.
    pub device_key: DeviceKey,
    /// Approval key (approval proofs, migration grants). Devices enrolled under
    /// protocol v1 have approval key = device key until they rotate.
    pub approval_key: DeviceKey,
    /// Agreement key.
    pub agreement_key: DeviceKey,
    /// Push target; `None` when never given or declared dead by APNs/FCM.
    #[serde(skip)]
    pub push: Option<PushTarget>,
    /// Consecutive refused proofs.
    pub failures: i32,
    /// `kid` of the server key the device pinned at enrollment; `None` for devices
    /// enrolled before it was recorded (their key is found by enrollment time).
    pub server_kid: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// Result of consuming an activation code.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per enrollment; boxing buys nothing"
)]
pub enum EnrollOutcome {
    /// The device was created.
    Enrolled(Device),
    /// No such code.
    CodeUnknown,
    /// The code was used before.
    CodeUsed,
    /// The code expired.
    CodeExpired,
}

/// Result of a write that only an active device may make (push token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceWrite {
    /// Written.
    Done,
    /// The device is locked or revoked (checked in the same transaction); nothing written.
    NotActive(DeviceStatus),
    /// No such device.
    NotFound,
}

/// Result of a key rotation (compare-and-swap on the current key of one use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The key was replaced.
    Rotated,
    /// The key of that use already is the new key (a retry): nothing written.
    AlreadyCurrent,
    /// The current key is neither the expected old key nor the new key.
    KeyChanged,
    /// The device is locked or revoked (checked in the same transaction); nothing written.
    NotActive(DeviceStatus),
    /// No such device.
    NotFound,
}

impl RotateOutcome {
    /// Why a rotation's conditional update (active device, current thumbprint = old)
    /// changed nothing, from the row read in the same transaction: the device is not
    /// active, or the key already is the new one (a retry), or it is another key.
    pub fn after_miss(status: DeviceStatus, current_thumbprint: &str, new: &DeviceKey) -> Self {
        if status != DeviceStatus::Active {
            RotateOutcome::NotActive(status)
        } else if current_thumbprint == new.thumbprint {
            RotateOutcome::AlreadyCurrent
        } else {
            RotateOutcome::KeyChanged
        }
    }
}

/// A verified migration grant to consume, and the activation code it produces.
#[derive(Debug, Clone)]
pub struct NewMigrationGrant {
    /// The granting device (its cardholder gets the code).
    pub device: DeviceId,
    /// The grant's one-time id.
    pub jti: String,
    /// The grant's expiry.
    pub expires_at: Millis,
    /// Now.
    pub at: Millis,
    /// The activation code to create (its `cardholder` must be the device's).
    pub activation: NewActivation,
}

/// Result of consuming a migration grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The grant was consumed and the activation code created.
    Issued,
    /// This grant (`jti`) was used before; nothing written.
    Reused,
    /// The device is locked or revoked; nothing written.
    NotActive(DeviceStatus),
    /// No such device, or the activation is for another cardholder.
    NotFound,
}

/// Result of recording a refused proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// Consecutive failures after this one.
    pub failures: i32,
    /// Whether the device is locked now.
    pub locked: bool,
}

/// A challenge to create.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    /// Id (chosen by the server).
    pub id: ChallengeId,
    /// Cardholder.
    pub cardholder: CardholderId,
    /// Processor.
    pub provider: Provider,
    /// Processor reference (unique per provider: duplicate webhooks collapse).
    pub provider_ref: ProviderRef,
    /// Kind.
    pub kind: TransactionKind,
    /// Amount, when given.
    pub amount: Option<Money>,
    /// Payee, when given.
    pub payee: Option<Payee>,
    /// Nonce the proof must echo.
    pub nonce: Nonce,
    /// Digest of the canonical transaction, computed at creation.
    pub txn_digest: TxnDigest,
    /// Deadline for a decision.
    pub deadline: Millis,
    /// Deadline for delivering the result upstream (processor's window).
    pub upstream_deadline: Millis,
    /// Opaque processor SDK input for the app (Adyen `sdkInput`).
    pub processor_input: Option<String>,
    /// Connector data needed later (callback URL, processor ids…). Not shown to devices.
    pub context: serde_json::Value,
    /// Creation time.
    pub created_at: Millis,
}

/// A challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Challenge {
    /// Id.
    pub id: ChallengeId,
    /// Cardholder.
    pub cardholder: CardholderId,
    /// Processor.
    pub provider: Provider,
    /// Processor reference.
    pub provider_ref: ProviderRef,
    /// Kind.
    pub kind: TransactionKind,
    /// Amount.
    pub amount: Option<Money>,
    /// Payee.
    pub payee: Option<Payee>,
    /// Nonce.
    #[serde(skip)]
    pub nonce: Nonce,
    /// Digest of the canonical transaction.
    pub txn_digest: TxnDigest,
    /// Decision deadline.
    pub deadline: Millis,
    /// Upstream delivery deadline.
    pub upstream_deadline: Millis,
    /// Processor SDK input.
    #[serde(skip)]
    pub processor_input: Option<String>,
    /// Connector data.
    pub context: serde_json::Value,
    /// Status.
    pub status: ChallengeStatus,
    /// Upstream leg status.
    pub upstream: UpstreamStatus,
    /// When it reached a final status.
    pub closed_at: Option<Millis>,
    /// Final-status notification from the processor, if any.
    pub final_status: Option<serde_json::Value>,
    /// Creation time.
    pub created_at: Millis,
}

/// Member of a challenge's `context` holding the optional display members of its
/// canonical transaction (`merchant_country`, `purchase_date`, `operation`, …; see
/// [`TxnDetails`]). Written once at creation with the rest of the challenge, so
/// [`Challenge::transaction`] rebuilds exactly the transaction whose digest was stored.
pub const TXN_DETAILS_KEY: &str = "txn_details";

/// Puts `details` into `context` under [`TXN_DETAILS_KEY`] (nothing when empty). A
/// non-object context is kept under `"connector"`.
pub fn context_with_details(context: serde_json::Value, details: &TxnDetails) -> serde_json::Value {
    if details.is_empty() {
        return context;
    }
    let mut map = match context {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("connector".to_owned(), other)]),
    };
    map.insert(
        TXN_DETAILS_KEY.to_owned(),
        serde_json::to_value(details).unwrap_or_default(),
    );
    serde_json::Value::Object(map)
}

impl Challenge {
    /// The optional display members stored with the challenge. A stored value that
    /// no longer parses gives no details: the rebuilt digest then differs from the
    /// stored one and every approval is refused (fails closed).
    pub fn details(&self) -> TxnDetails {
        self.context
            .get(TXN_DETAILS_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The transaction as bound by proofs.
    pub fn transaction(&self) -> Transaction {
        Transaction {
            provider: self.provider,
            reference: self.provider_ref.clone(),
            kind: self.kind,
            amount: self.amount,
            payee: self.payee.clone(),
            details: self.details(),
        }
    }
}

/// Result of `challenge_create`.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// New challenge written with its outbox rows.
    Created(Challenge),
    /// Same (provider, reference) existed; nothing written.
    Duplicate(Challenge),
}

/// What [`Store::challenge_create_planned`](crate::Store::challenge_create_planned)
/// read inside its transaction, for the caller's planner.
#[derive(Debug, Clone)]
pub struct CreateContext {
    /// The cardholder's status.
    pub cardholder_status: CardholderStatus,
    /// All the cardholder's devices, whatever their status.
    pub devices: Vec<Device>,
    /// Pending, unexpired challenges of the cardholder.
    pub pending: i64,
}

/// A planner's decision.
#[derive(Debug, Clone)]
// Made once per creation and consumed at once: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum CreatePlan {
    /// Write this challenge (for the same provider, reference and cardholder), its
    /// outbox rows and audit entry.
    Write {
        /// The challenge.
        new: NewChallenge,
        /// Its outbox rows.
        outbox: Vec<NewOutbox>,
        /// Its audit entry.
        audit: AuditDraft,
    },
    /// Write nothing.
    Refuse(Refusal),
}

/// Why a planner wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The cardholder is blocked.
    CardholderBlocked,
    /// No active device could answer.
    NoActiveDevice,
    /// Too many challenges pending (MFA-fatigue guard).
    TooManyPending,
    /// The webhook's acknowledgement budget ran out before the write: the processor
    /// has stopped waiting, so nothing is written.
    OverBudget,
}

/// Decides, from what the store read inside the creating transaction, what to write.
/// It runs while the backend holds its write lock (SQLite) or the cardholder's row
/// lock (PostgreSQL): it must be quick and must not block.
pub type Planner = Box<dyn FnOnce(&CreateContext) -> CreatePlan + Send>;

/// Result of `challenge_create_planned`.
#[derive(Debug, Clone)]
pub enum PlannedOutcome {
    /// The planner's challenge was written, with its outbox rows.
    Created {
        /// The challenge.
        challenge: Challenge,
        /// How many outbox rows the plan wrote with it.
        outbox_rows: usize,
    },
    /// The (provider, reference) existed: the existing challenge; the planner did not run.
    Duplicate(Challenge),
    /// No such cardholder; the planner did not run.
    NoCardholder,
    /// The planner refused; nothing was written.
    Refused(Refusal),
}

/// Filter for listing challenges.
#[derive(Debug, Clone, Default)]
pub struct ChallengeFilter {
    /// Only this status.
    pub status: Option<ChallengeStatus>,
    /// Only this cardholder.
    pub cardholder: Option<CardholderId>,
    /// Only this processor.
    pub provider: Option<Provider>,
    /// Only created at or after.
    pub since: Option<Millis>,
    /// Only created strictly before.
    pub before: Option<Millis>,
    /// At most this many (the backend caps it at 500).
    pub limit: i64,
}

impl ChallengeFilter {
    /// Whether `c` passes every condition of the filter (the limit aside): what the
    /// backends' SQL selects, for results found another way
    /// ([`crate::Store::challenge_find_reference`]).
    pub fn matches(&self, c: &Challenge) -> bool {
        self.status.is_none_or(|s| s == c.status)
            && self.cardholder.as_ref().is_none_or(|h| *h == c.cardholder)
            && self.provider.is_none_or(|p| p == c.provider)
            && self.since.is_none_or(|t| c.created_at >= t)
            && self.before.is_none_or(|t| c.created_at < t)
    }
}

/// A verified decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision {
    /// Challenge.
    pub challenge: ChallengeId,
    /// Device that answered.
    pub device: DeviceId,
    /// Approve or deny.
    pub decision: DecisionKind,
    /// Deny reason.
    pub reason: Option<DenyReasonKind>,
    /// How the user was verified (`biometric`, `passcode`, `none`).
    pub user_verification: String,
    /// The approval proof JWS, whole (evidence).
    pub proof: String,
    /// Processor SDK output forwarded with the decision (Adyen `sdkOutput`).
    pub processor_output: Option<String>,
    /// When received.
    pub at: Millis,
}

/// A stored decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Challenge.
    pub challenge: ChallengeId,
    /// Device.
    pub device: DeviceId,
    /// Approve or deny.
    pub decision: DecisionKind,
    /// Reason.
    pub reason: Option<DenyReasonKind>,
    /// User verification.
    pub user_verification: String,
    /// Proof JWS.
    pub proof: String,
    /// Processor output.
    pub processor_output: Option<String>,
    /// When received.
    pub at: Millis,
}

/// Result of `challenge_decide`.
#[derive(Debug, Clone)]
pub enum DecideOutcome {
    /// This decision won; the challenge after the change.
    Accepted(Challenge),
    /// Another decision (or closing) came first; the challenge as it is.
    AlreadyClosed(Challenge),
    /// Still pending but past its deadline; nothing written.
    PastDeadline(Challenge),
    /// No such challenge.
    NotFound,
    /// In time, but the device or the cardholder may no longer answer; nothing written.
    Refused(crate::DecideRefusal),
}

/// Outbox row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutboxId(pub i64);

/// A side effect to perform later.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    /// What kind.
    pub kind: OutboxKind,
    /// About which challenge.
    pub challenge: ChallengeId,
    /// For which device (push and dismiss).
    pub device: Option<DeviceId>,
    /// Kind-specific payload (e.g. the upstream result to send).
    pub payload: serde_json::Value,
    /// Not before this instant.
    pub not_before: Millis,
    /// Give up after this instant (`too_late`).
    pub deadline: Millis,
    /// Written already claimed by the writer (claim 1, leased until this instant), which
    /// delivers it at once; workers take it only if that lease runs out (the writer
    /// died). `None`: an ordinary pending row for the workers.
    pub claimed_until: Option<Millis>,
}

impl NewOutbox {
    /// The row as inserted with `id` at `created_at`, as a claimed [`OutboxItem`] when
    /// it was written claimed.
    pub fn into_claimed(self, id: OutboxId, created_at: Millis) -> Option<OutboxItem> {
        self.claimed_until?;
        Some(OutboxItem {
            id,
            kind: self.kind,
            challenge: self.challenge,
            device: self.device,
            payload: self.payload,
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: self.not_before,
            deadline: self.deadline,
            last_error: None,
            created_at,
            claim: 1,
            sending_since: None,
        })
    }
}

/// The rows of `rows` written claimed, as items (`ids` are the inserted ids, in order).
pub fn claimed_items(
    rows: Vec<NewOutbox>,
    ids: &[OutboxId],
    created_at: Millis,
) -> Vec<OutboxItem> {
    rows.into_iter()
        .zip(ids.iter().copied())
        .filter_map(|(row, id)| row.into_claimed(id, created_at))
        .collect()
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    /// Id.
    pub id: OutboxId,
    /// Kind.
    pub kind: OutboxKind,
    /// Challenge.
    pub challenge: ChallengeId,
    /// Device.
    pub device: Option<DeviceId>,
    /// Payload.
    pub payload: serde_json::Value,
    /// Status.
    pub status: OutboxStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// Next attempt not before.
    pub next_attempt_at: Millis,
    /// Deadline.
    pub deadline: Millis,
    /// Last error text (no secrets).
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Millis,
    /// Fencing token: the number of the claim that handed this row out (0 = never
    /// claimed). Completion, lease renewal and the sending mark need the current one.
    pub claim: i64,
    /// When a call to the processor was marked as started and its outcome not yet
    /// recorded: set on a freshly claimed row, the previous holder died or lost its
    /// lease with that call in flight.
    pub sending_since: Option<Millis>,
}

/// One delivery attempt, as measured by the worker.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Start time.
    pub at: Millis,
    /// Duration.
    pub latency_ms: i64,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// HTTP status, when a response came.
    pub http_status: Option<i32>,
    /// Error text (no secrets), when failed.
    pub error: Option<String>,
}

/// What happens to an outbox row after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxNext {
    /// Delivered.
    Done,
    /// Try again at this instant.
    RetryAt(Millis),
    /// Refused for good.
    Failed,
    /// Deadline passed.
    TooLate,
    /// Given up without knowing whether the processor took the result: a call was in
    /// flight when its holder died, and the processor offers no way to find out. Stored
    /// as `failed` (upstream `failed`), with the sending mark kept as evidence and the
    /// audit action `outbox.<kind>.outcome_unknown`.
    Unknown,
}

/// A recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Row id.
    pub id: i64,
    /// Outbox row.
    pub outbox: OutboxId,
    /// Kind of that row.
    pub kind: OutboxKind,
    /// Device, for pushes.
    pub device: Option<DeviceId>,
    /// 1-based attempt number.
    pub attempt_no: i32,
    /// Start time.
    pub at: Millis,
    /// Duration.
    pub latency_ms: i64,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// HTTP status.
    pub http_status: Option<i32>,
    /// Error text.
    pub error: Option<String>,
}

/// The upstream status a new or closed challenge gets from the outbox rows written with
/// it: `queued` when one of them is an upstream result, `none` otherwise.
pub fn upstream_status_for(outbox: &[NewOutbox]) -> UpstreamStatus {
    if outbox.iter().any(|o| o.kind == OutboxKind::Upstream) {
        UpstreamStatus::Queued
    } else {
        UpstreamStatus::None
    }
}

impl NewChallenge {
    /// Refuses a planned challenge for another provider, reference or cardholder than
    /// the one `challenge_create_planned` looked up and locked.
    pub fn check_planned(
        &self,
        provider: Provider,
        reference: &ProviderRef,
        cardholder: &CardholderId,
    ) -> crate::StoreResult<()> {
        if self.provider != provider
            || &self.provider_ref != reference
            || &self.cardholder != cardholder
        {
            return Err(crate::StoreError::Backend(
                "planned challenge differs from the looked-up provider, reference or cardholder"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The record as it stands right after its insert: pending, not closed.
    pub fn into_created(self, upstream: UpstreamStatus) -> Challenge {
        Challenge {
            id: self.id,
            cardholder: self.cardholder,
            provider: self.provider,
            provider_ref: self.provider_ref,
            kind: self.kind,
            amount: self.amount,
            payee: self.payee,
            nonce: self.nonce,
            txn_digest: self.txn_digest,
            deadline: self.deadline,
            upstream_deadline: self.upstream_deadline,
            processor_input: self.processor_input,
            context: self.context,
            status: ChallengeStatus::Pending,
            upstream,
            closed_at: None,
            final_status: None,
            created_at: self.created_at,
        }
    }
}

impl NewDevice {
    /// The record as it stands right after enrollment: active, no failures.
    pub fn into_enrolled(self, cardholder: CardholderId) -> Device {
        Device {
            id: self.id,
            cardholder,
            status: DeviceStatus::Active,
            platform: self.platform,
            label: self.label,
            device_key: self.device_key,
            approval_key: self.approval_key,
            agreement_key: self.agreement_key,
            push: self.push,
            failures: 0,
            server_kid: self.server_kid,
            created_at: self.created_at,
            updated_at: self.created_at,
        }
    }
}

impl OutboxNext {
    /// What an attempt's consequence writes: the row's new status, the retry time (if
    /// rescheduled), and for upstream rows the challenge's new upstream status (`None`
    /// while it stays queued).
    pub fn effects(self) -> (OutboxStatus, Option<Millis>, Option<UpstreamStatus>) {
        match self {
            OutboxNext::Done => (OutboxStatus::Done, None, Some(UpstreamStatus::Delivered)),
            OutboxNext::RetryAt(at) => (OutboxStatus::Pending, Some(at), None),
            OutboxNext::Failed => (OutboxStatus::Failed, None, Some(UpstreamStatus::Failed)),
            OutboxNext::TooLate => (OutboxStatus::TooLate, None, Some(UpstreamStatus::TooLate)),
            OutboxNext::Unknown => (OutboxStatus::Failed, None, Some(UpstreamStatus::Failed)),
        }
    }
}

/// The error text recorded with an attempt: a stale holder's attempt (its claim was
/// taken over, or the row was already final) is recorded as such, and changed nothing.
pub fn stale_error(stale: bool, error: Option<&str>) -> Option<String> {
    match (stale, error) {
        (false, e) => e.map(str::to_owned),
        (true, Some(e)) => Some(format!("{e} (stale claim: not applied)")),
        (true, None) => Some("stale claim: not applied".to_owned()),
    }
}

/// The last part of the audit action for a final outbox row: its status, or
/// `outcome_unknown` when the row was given up without knowing what the processor has.
pub fn final_action(next: OutboxNext, status: OutboxStatus) -> &'static str {
    if next == OutboxNext::Unknown {
        "outcome_unknown"
    } else {
        status.as_str()
    }
}

/// The audit entry written when an outbox row reaches a final status
/// (`outbox.<kind>.<status>`).
#[allow(
    clippy::too_many_arguments,
    reason = "one entry, every field named at the call"
)]
pub fn outbox_final_audit(
    id: OutboxId,
    kind: OutboxKind,
    status: &str,
    attempts: i64,
    attempt: &AttemptRecord,
    challenge: &ChallengeId,
    cardholder: &CardholderId,
    device: Option<&DeviceId>,
    source: (&str, &str),
) -> crate::AuditDraft {
    let draft = crate::AuditDraft::new(attempt.at, "system", format!("outbox.{kind}.{status}"))
        .challenge(challenge)
        .cardholder(cardholder)
        .details(serde_json::json!({
            "outbox_id": id.0,
            "attempts": attempts,
            "http_status": attempt.http_status,
            "error": attempt.error,
            "provider": source.0,
            "reference": source.1,
        }));
    match device {
        Some(d) => draft.device(d),
        None => draft,
    }
}
