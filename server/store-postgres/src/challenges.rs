//! Challenges and decisions: creation with duplicate collapse, first-decision-wins,
//! closing, and the listings the device API, the expiry sweeper and the admin API use.
//!
//! The state changes are conditional updates (`… WHERE status = 'pending' AND …`):
//! the row count says whether this call won, and a losing call writes nothing.
//!
//! The queries of one cardholder's pending challenges compare `deadline + 0`, not
//! `deadline`: the expression keeps PostgreSQL from answering them through
//! `challenges_pending_by_deadline` (every pending challenge of everyone, filtered by
//! cardholder), which its generic plan of the prepared statement chose for about one
//! creation in five under load while the table grew (seen in `pg_stat_user_indexes`:
//! ~3,400 rows read per creation); they use `challenges_pending_by_cardholder`
//! (cardholder, deadline) instead.

use pushauth_core::ids::{CardholderId, ChallengeId, Provider, ProviderRef};
use pushauth_store::*;
use sqlx::PgConnection;

use crate::PgStore;
use crate::audit::append;
use crate::devices::list_in;
use crate::error::{classify, db};
use crate::outbox::insert_rows;
use crate::rows::{ChallengeRow, DecisionRow, cardholder_id, challenge_id};
use pushauth_store::decode::parse_enum;

/// Largest page a listing returns.
const MAX_PAGE: i64 = 500;

pub(crate) async fn get_in(conn: &mut PgConnection, id: &str) -> StoreResult<Option<Challenge>> {
    let row = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(ChallengeRow::decode).transpose()
}

async fn find_in(
    conn: &mut PgConnection,
    provider: &str,
    provider_ref: &str,
) -> StoreResult<Option<Challenge>> {
    let row = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE provider = $1 AND provider_ref = $2",
        provider,
        provider_ref
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.map(ChallengeRow::decode).transpose()
}

/// `INSERT … ON CONFLICT (provider, provider_ref) DO NOTHING`, then outbox rows and
/// audit; on conflict the existing challenge is returned and nothing is written.
pub(crate) async fn create(
    s: &PgStore,
    new: NewChallenge,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<CreateOutcome> {
    let mut tx = s.begin().await?;
    let (outcome, _) = insert_in(&mut tx, new, &outbox, &audit).await?;
    if let CreateOutcome::Created(c) = &outcome {
        tx.commit().await.map_err(db)?;
        s.committed(Some(&c.cardholder), wakes_workers(&outbox));
    }
    Ok(outcome)
}

/// Locks the cardholder's row (`FOR NO KEY UPDATE`: creations for one cardholder
/// queue, foreign-key checks of other writers do not), then the duplicate check and
/// pending count, the devices, the plan and the plan's writes, in one transaction.
pub(crate) async fn create_planned(
    s: &PgStore,
    provider: Provider,
    reference: &ProviderRef,
    cardholder: &CardholderId,
    now: Millis,
    plan: Planner,
) -> StoreResult<PlannedOutcome> {
    let (provider_s, reference_s, cardholder_s) =
        (provider.as_str(), reference.as_str(), cardholder.as_str());
    let mut tx = s.begin().await?;
    let status = sqlx::query_scalar!(
        "SELECT status FROM cardholders WHERE id = $1 FOR NO KEY UPDATE",
        cardholder_s
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    // After the lock, so that the count includes every creation that held it before.
    let seen = sqlx::query!(
        r#"SELECT (SELECT id FROM challenges WHERE provider = $1 AND provider_ref = $2) AS "existing?",
                  (SELECT count(*) FROM challenges
                    WHERE cardholder_id = $3 AND status = 'pending' AND deadline + 0 > $4) AS "pending!""#,
        provider_s,
        reference_s,
        cardholder_s,
        now.0,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if let Some(existing) = seen.existing {
        let challenge = get_in(&mut tx, &existing).await?.ok_or_else(|| {
            StoreError::Backend("duplicate challenge vanished inside its transaction".into())
        })?;
        // End the transaction (and the cardholder's row lock) now, not on the
        // connection's next use.
        tx.rollback().await.map_err(db)?;
        return Ok(PlannedOutcome::Duplicate(challenge));
    }
    let Some(status) = status else {
        tx.rollback().await.map_err(db)?;
        return Ok(PlannedOutcome::NoCardholder);
    };
    let mut context = CreateContext {
        cardholder_status: parse_enum("cardholders.status", &status, CardholderStatus::parse)?,
        devices: list_in(&mut tx, cardholder_s).await?,
        pending: seen.pending,
    };
    let (new, outbox, audit) = match plan(&context) {
        CreatePlan::Refuse(why) => {
            tx.rollback().await.map_err(db)?;
            return Ok(PlannedOutcome::Refused(why));
        }
        CreatePlan::Write { new, outbox, audit } => (new, outbox, audit),
    };
    new.check_planned(provider, reference, cardholder)?;
    match insert_in(&mut tx, new, &outbox, &audit).await? {
        (CreateOutcome::Created(c), ids) => {
            tx.commit().await.map_err(db)?;
            s.committed(Some(&c.cardholder), wakes_workers(&outbox));
            let (outbox_rows, at) = (outbox.len(), c.created_at);
            Ok(PlannedOutcome::Created {
                challenge: c,
                outbox_rows,
                claimed: claimed_items(outbox, &ids, at),
                devices: std::mem::take(&mut context.devices),
            })
        }
        (CreateOutcome::Duplicate(c), _) => Ok(PlannedOutcome::Duplicate(c)),
    }
}

/// Inserts the challenge, its outbox rows (their ids are returned) and audit entry on
/// `tx`, or finds the existing challenge of the same (provider, reference). The caller
/// commits a creation and announces it.
async fn insert_in(
    tx: &mut PgConnection,
    new: NewChallenge,
    outbox: &[NewOutbox],
    audit: &AuditDraft,
) -> StoreResult<(CreateOutcome, Vec<OutboxId>)> {
    let (provider, provider_ref) = (new.provider.as_str(), new.provider_ref.as_str());
    let amount = new.amount.map(|m| m.minor());
    let currency = new.amount.map(|m| m.currency().code());
    let payee = new.payee.as_ref().map(|p| p.as_str());
    let digest = new.txn_digest.to_string();
    let upstream = upstream_status_for(outbox);
    let inserted = sqlx::query!(
        "INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee,
                                 nonce, txn_digest, deadline, upstream_deadline, processor_input, context,
                                 status, upstream_status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending', $15, $16)
         ON CONFLICT (provider, provider_ref) DO NOTHING",
        new.id.as_str(),
        new.cardholder.as_str(),
        provider,
        provider_ref,
        new.kind.as_str(),
        amount,
        currency,
        payee,
        new.nonce.as_str(),
        digest,
        new.deadline.0,
        new.upstream_deadline.0,
        new.processor_input,
        new.context,
        upstream.as_str(),
        new.created_at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "challenge id exists", "cardholder"))?;
    if inserted.rows_affected() == 0 {
        let existing = find_in(tx, provider, provider_ref).await?;
        let existing = existing.map(CreateOutcome::Duplicate).ok_or_else(|| {
            StoreError::Backend("challenge conflict without a conflicting row".into())
        })?;
        return Ok((existing, Vec::new()));
    }
    let ids = insert_rows(tx, outbox, new.created_at).await?;
    append(tx, audit).await?;
    Ok((CreateOutcome::Created(new.into_created(upstream)), ids))
}

pub(crate) async fn get(s: &PgStore, id: &ChallengeId) -> StoreResult<Option<Challenge>> {
    let mut conn = s.pool().acquire().await.map_err(db)?;
    get_in(&mut conn, id.as_str()).await
}

pub(crate) async fn find(
    s: &PgStore,
    provider: Provider,
    provider_ref: &ProviderRef,
) -> StoreResult<Option<Challenge>> {
    let mut conn = s.pool().acquire().await.map_err(db)?;
    find_in(&mut conn, provider.as_str(), provider_ref.as_str()).await
}

pub(crate) async fn list(s: &PgStore, filter: ChallengeFilter) -> StoreResult<Vec<Challenge>> {
    let status = filter.status.map(|v| v.as_str());
    let cardholder = filter.cardholder.as_ref().map(|c| c.as_str());
    let provider = filter.provider.map(|p| p.as_str());
    let before = filter.before.map(|m| m.0);
    let since = filter.since.map(|m| m.0);
    let limit = filter.limit.clamp(0, MAX_PAGE);
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges
         WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR cardholder_id = $2)
           AND ($3::TEXT IS NULL OR provider = $3) AND ($4::BIGINT IS NULL OR created_at < $4)
           AND ($6::BIGINT IS NULL OR created_at >= $6)
         ORDER BY created_at DESC, id DESC LIMIT $5",
        status,
        cardholder,
        provider,
        before,
        limit,
        since
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

/// Pending challenges whose deadline is after `now`, oldest first.
pub(crate) async fn pending_for(
    s: &PgStore,
    cardholder: &CardholderId,
    now: Millis,
) -> StoreResult<Vec<Challenge>> {
    let cardholder = cardholder.as_str();
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges
         WHERE cardholder_id = $1 AND status = 'pending' AND deadline + 0 > $2
         ORDER BY created_at, id",
        cardholder,
        now.0
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

pub(crate) async fn count_pending(
    s: &PgStore,
    cardholder: &CardholderId,
    now: Millis,
) -> StoreResult<i64> {
    let cardholder = cardholder.as_str();
    sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM challenges
           WHERE cardholder_id = $1 AND status = 'pending' AND deadline + 0 > $2"#,
        cardholder,
        now.0
    )
    .fetch_one(s.pool())
    .await
    .map_err(db)
}

/// Pending challenges whose deadline passed, earliest deadline first.
pub(crate) async fn due(s: &PgStore, now: Millis, limit: i64) -> StoreResult<Vec<Challenge>> {
    let limit = limit.clamp(0, MAX_PAGE);
    let rows = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                deadline, upstream_deadline, processor_input, context, status, upstream_status, closed_at,
                final_status, created_at
         FROM challenges WHERE status = 'pending' AND deadline < $1
         ORDER BY deadline, id LIMIT $2",
        now.0,
        limit
    )
    .fetch_all(s.pool())
    .await
    .map_err(db)?;
    rows.into_iter().map(ChallengeRow::decode).collect()
}

/// First valid decision wins: the conditional update moves `pending → approved |
/// denied` only while pending and `at ≤ deadline`; the losers read the row to say why.
pub(crate) async fn decide(
    s: &PgStore,
    d: NewDecision,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<(DecideOutcome, Vec<OutboxItem>)> {
    let at = d.at;
    let mut ids = Vec::new();
    let outcome = decide_in(s, d, &outbox, audit, &mut ids).await?;
    Ok((outcome, claimed_items(outbox, &ids, at)))
}

/// [`decide`]; `ids` receives the inserted outbox rows' ids when accepted.
async fn decide_in(
    s: &PgStore,
    d: NewDecision,
    outbox: &[NewOutbox],
    audit: AuditDraft,
    ids: &mut Vec<OutboxId>,
) -> StoreResult<DecideOutcome> {
    let id = d.challenge.as_str();
    let status = match d.decision {
        DecisionKind::Approve => ChallengeStatus::Approved,
        DecisionKind::Deny => ChallengeStatus::Denied,
    };
    let (status, queue) = (
        status.as_str(),
        upstream_status_for(outbox) == UpstreamStatus::Queued,
    );
    let device = d.device.as_str();
    let mut tx = s.begin().await?;
    // Authorisation at commit: share-lock the cardholder, then lock the device, before
    // the conditional update. A block, lock or revocation committed first is seen (a
    // locking read returns the newest row version); one that comes later waits for
    // this commit. Cardholder before device before challenge, the order every writer
    // that takes more than one of these locks uses, so no deadlock. The device lock is
    // exclusive (`NO KEY UPDATE`, which foreign-key checks do not wait for) because the
    // winner resets the device's failure counter: with a shared lock, two decisions of
    // one device would each hold it while waiting for the other (measured: deadlocks
    // in `challenge_decide_first_wins`).
    let holder = sqlx::query_scalar!(
        "SELECT h.status FROM challenges c JOIN cardholders h ON h.id = c.cardholder_id
         WHERE c.id = $1 FOR SHARE OF h",
        id
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(holder) = holder else {
        return Ok(DecideOutcome::NotFound);
    };
    let answering = sqlx::query!(
        "SELECT d.status, d.cardholder_id = c.cardholder_id AS \"same!\"
         FROM devices d, challenges c WHERE d.id = $1 AND c.id = $2 FOR NO KEY UPDATE OF d",
        device,
        id
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    // The winning update returns the challenge as it is now (no read after it).
    let won = sqlx::query_as!(
        ChallengeRow,
        "UPDATE challenges
         SET status = $2, closed_at = $3,
             upstream_status = CASE WHEN $4::BOOLEAN THEN 'queued' ELSE upstream_status END
         WHERE id = $1 AND status = 'pending' AND deadline >= $3
           AND EXISTS (SELECT 1 FROM devices
                       WHERE devices.id = $5 AND devices.status = 'active'
                         AND devices.cardholder_id = challenges.cardholder_id)
           AND EXISTS (SELECT 1 FROM cardholders
                       WHERE cardholders.id = challenges.cardholder_id
                         AND cardholders.status = 'active')
         RETURNING id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce,
                   txn_digest, deadline, upstream_deadline, processor_input, context, status,
                   upstream_status, closed_at, final_status, created_at",
        id,
        status,
        d.at.0,
        queue,
        device,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(after) = won else {
        let Some(c) = get_in(&mut tx, id).await? else {
            return Ok(DecideOutcome::NotFound);
        };
        if c.status.is_final() {
            return Ok(DecideOutcome::AlreadyClosed(c));
        }
        let device_row = answering.as_ref().map(|r| (r.status.as_str(), r.same));
        return Ok(match decide_refusal(device_row, &holder)? {
            Some(why) => DecideOutcome::Refused(why),
            None => DecideOutcome::PastDeadline(c),
        });
    };
    let after = after.decode()?;
    let cardholder = after.cardholder.clone();
    // The decision, and the answering device's failure count reset (its row is written
    // only when it has failures to reset), in one statement.
    sqlx::query!(
        "WITH reset AS (UPDATE devices SET failures = 0, updated_at = $8 WHERE id = $2 AND failures <> 0)
         INSERT INTO decisions (challenge_id, device_id, decision, reason, user_verification, proof,
                                processor_output, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        device,
        d.decision.as_str(),
        d.reason.map(|r| r.as_str()),
        d.user_verification,
        d.proof,
        d.processor_output,
        d.at.0,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(e, "decision exists", "device"))?;
    *ids = insert_rows(&mut tx, outbox, d.at).await?;
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    s.committed(Some(&cardholder), wakes_workers(outbox));
    Ok(DecideOutcome::Accepted(after))
}

/// `pending → expired` (only once the deadline passed) or `pending → cancelled`.
pub(crate) async fn close(
    s: &PgStore,
    id: &ChallengeId,
    to: ChallengeStatus,
    now: Millis,
    outbox: Vec<NewOutbox>,
    audit: AuditDraft,
) -> StoreResult<bool> {
    if !matches!(to, ChallengeStatus::Expired | ChallengeStatus::Cancelled) {
        return Err(StoreError::Conflict(
            "a challenge can only be closed as expired or cancelled",
        ));
    }
    let (id, to, queue) = (
        id.as_str(),
        to.as_str(),
        upstream_status_for(&outbox) == UpstreamStatus::Queued,
    );
    let mut tx = s.begin().await?;
    let closed = sqlx::query_scalar!(
        "UPDATE challenges
         SET status = $2, closed_at = $3,
             upstream_status = CASE WHEN $4::BOOLEAN THEN 'queued' ELSE upstream_status END
         WHERE id = $1 AND status = 'pending' AND ($2 = 'cancelled' OR deadline < $3)
         RETURNING cardholder_id",
        id,
        to,
        now.0,
        queue,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(cardholder) = closed else {
        return Ok(false);
    };
    let cardholder = cardholder_id("challenges.cardholder_id", &cardholder)?;
    insert_rows(&mut tx, &outbox, now).await?;
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    s.committed(Some(&cardholder), wakes_workers(&outbox));
    Ok(true)
}

/// Stores the processor's final-status notification. The audit draft gets the
/// challenge and cardholder filled in when the caller left them empty (the caller
/// knows only the processor's reference).
pub(crate) async fn final_status(
    s: &PgStore,
    provider: Provider,
    provider_ref: &ProviderRef,
    status: serde_json::Value,
    mut audit: AuditDraft,
) -> StoreResult<bool> {
    let (provider, provider_ref) = (provider.as_str(), provider_ref.as_str());
    let mut tx = s.begin().await?;
    let row = sqlx::query!(
        "UPDATE challenges SET final_status = $3 WHERE provider = $1 AND provider_ref = $2
         RETURNING id, cardholder_id",
        provider,
        provider_ref,
        status,
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    let Some(row) = row else {
        return Ok(false);
    };
    if audit.challenge.is_none() {
        audit.challenge = Some(challenge_id("challenges.id", &row.id)?);
    }
    if audit.cardholder.is_none() {
        audit.cardholder = Some(cardholder_id(
            "challenges.cardholder_id",
            &row.cardholder_id,
        )?);
    }
    append(&mut tx, &audit).await?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

pub(crate) async fn decision_get(s: &PgStore, id: &ChallengeId) -> StoreResult<Option<Decision>> {
    let id = id.as_str();
    let row = sqlx::query_as!(
        DecisionRow,
        "SELECT challenge_id, device_id, decision, reason, user_verification, proof, processor_output, at
         FROM decisions WHERE challenge_id = $1",
        id
    )
    .fetch_optional(s.pool())
    .await
    .map_err(db)?;
    row.map(DecisionRow::decode).transpose()
}
