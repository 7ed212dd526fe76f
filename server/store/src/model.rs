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
use crate::devices::Device;
use crate::outbox::NewOutbox;
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
    /// no longer parses gives no details: the rebuilt transaction then differs from the
    /// one created, which [`Challenge::bound_transaction`] refuses (fails closed).
    pub fn details(&self) -> TxnDetails {
        self.context
            .get(TXN_DETAILS_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The transaction rebuilt from the stored fields, if its digest is the one stored
    /// at creation: what a device is shown and its proof is checked against. `None`
    /// when this build rebuilds something else (stored details it cannot parse, say,
    /// after a rollback to an older version): never show or accept a reduced
    /// transaction.
    pub fn bound_transaction(&self) -> Option<Transaction> {
        let t = self.transaction();
        (t.digest() == self.txn_digest).then_some(t)
    }

    /// The transaction rebuilt from the stored fields (unchecked: see
    /// [`Challenge::bound_transaction`]).
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
        /// The rows the plan wrote already claimed (`NewOutbox::claimed_until`), as
        /// items for the caller to deliver (claim 1).
        claimed: Vec<crate::OutboxItem>,
        /// The cardholder's devices as the transaction saw them (what the plan saw).
        devices: Vec<Device>,
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
