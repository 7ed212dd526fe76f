//! Cardholder status changes. Blocking closes what the cardholder could still
//! answer: every pending challenge is cancelled with the processor's negative result
//! (where the connector sends one) and the prompts are dismissed on their devices, in
//! the transaction that blocks.

use pushauth_core::ids::CardholderId;
use pushauth_store::{AuditDraft, BlockOutcome, Challenge, ChallengeStatus, Device};

use crate::error::{ApiError, ApiResult};
use crate::services::decisions::{dismiss_rows_among, upstream_row};
use crate::state::{AppState, now};
use crate::upstream::Outcome;

/// Blocks `id`; the challenges cancelled with it.
pub async fn block(
    state: &AppState,
    actor: String,
    id: &CardholderId,
) -> ApiResult<Vec<Challenge>> {
    let t = now();
    let audit = AuditDraft::new(t, actor.clone(), "cardholder.blocked").cardholder(id);
    let planner_state = state.clone();
    let cancel = Box::new(move |c: &Challenge, devices: &[Device]| {
        let mut rows = dismiss_rows_among(&planner_state, c, devices, None);
        rows.extend(upstream_row(&planner_state, c, Outcome::Cancelled));
        let audit = AuditDraft::new(t, actor.clone(), "challenge.cancelled")
            .challenge(&c.id)
            .cardholder(&c.cardholder)
            .details(serde_json::json!({
                "reason": "cardholder_blocked",
                "status": ChallengeStatus::Cancelled,
            }));
        (rows, audit)
    });
    match state.store.cardholder_block(id, t, audit, cancel).await? {
        BlockOutcome::NotFound => Err(ApiError::not_found("cardholder")),
        BlockOutcome::Blocked { cancelled } => {
            if !cancelled.is_empty() {
                tracing::info!(cardholder = %id, cancelled = cancelled.len(), "cardholder blocked; pending challenges cancelled");
            }
            Ok(cancelled)
        }
    }
}
