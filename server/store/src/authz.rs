//! Authorisation checked where state changes: what a decision is refused for when
//! the device or the cardholder lost the right to answer, and what blocking a
//! cardholder closes with it.

use crate::audit::AuditDraft;
use crate::devices::Device;
use crate::model::Challenge;
use crate::outbox::NewOutbox;
use crate::states::DeviceStatus;

/// Why `challenge_decide` refused a decision that was otherwise in time: checked in
/// the same transaction as the conditional update, so a device revoked or locked (or
/// a cardholder blocked) by a transaction that committed first always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideRefusal {
    /// The answering device is not active (locked or revoked), or not the
    /// challenge's cardholder's, or unknown.
    DeviceNotActive(Option<DeviceStatus>),
    /// The challenge's cardholder is blocked.
    CardholderBlocked,
}

/// What closing one challenge of a cardholder being blocked writes beside the
/// status change: its outbox rows (the processor's negative result, dismiss pushes)
/// and its audit entry. Called inside the blocking transaction with the pending
/// challenge and all the cardholder's devices; it must be quick and must not block.
pub type CancelPlanner =
    Box<dyn Fn(&Challenge, &[Device]) -> (Vec<NewOutbox>, AuditDraft) + Send + Sync>;

/// Result of `cardholder_block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOutcome {
    /// No such cardholder; nothing written.
    NotFound,
    /// Blocked (or already blocked); these pending challenges were cancelled with it.
    Blocked {
        /// The challenges cancelled, in creation order.
        cancelled: Vec<Challenge>,
    },
}

/// Why a decision that lost its conditional update was not authorised, from the
/// answering device's row (`status`, whether it belongs to the challenge's
/// cardholder), if any, and the cardholder's status, as read in the deciding
/// transaction. `None`: it was authorised (so it lost for another reason).
pub fn decide_refusal(
    device: Option<(&str, bool)>,
    cardholder_status: &str,
) -> Result<Option<DecideRefusal>, crate::StoreError> {
    use crate::decode::parse_enum;
    use crate::states::CardholderStatus;
    let device = match device {
        None => return Ok(Some(DecideRefusal::DeviceNotActive(None))),
        Some((status, same)) => (
            parse_enum("devices.status", status, DeviceStatus::parse)?,
            same,
        ),
    };
    if device != (DeviceStatus::Active, true) {
        return Ok(Some(DecideRefusal::DeviceNotActive(
            device.1.then_some(device.0),
        )));
    }
    let holder = parse_enum(
        "cardholders.status",
        cardholder_status,
        CardholderStatus::parse,
    )?;
    Ok((holder != CardholderStatus::Active).then_some(DecideRefusal::CardholderBlocked))
}
