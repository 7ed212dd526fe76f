//! State machines and closed vocabularies, one enum each (no free strings). Each
//! has `as_str`/`parse` for its database column.

use std::fmt;

macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// All values.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The column / wire text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parses the column / wire text.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(
    /// Challenge life cycle: `pending → approved | denied | expired | cancelled`.
    ChallengeStatus {
        /// Waiting for the cardholder.
        Pending = "pending",
        /// Approved by a device (first valid answer).
        Approved = "approved",
        /// Denied by a device (any reason, `not_me` included).
        Denied = "denied",
        /// The deadline passed without a valid answer.
        Expired = "expired",
        /// Cancelled by the issuer or the processor.
        Cancelled = "cancelled",
    }
);

impl ChallengeStatus {
    /// Whether no further transition is possible.
    pub fn is_final(self) -> bool {
        self != ChallengeStatus::Pending
    }
}

str_enum!(
    /// The upstream leg: `none → queued → delivered | failed | too_late`.
    UpstreamStatus {
        /// Nothing to send upstream (yet, or ever for this provider).
        None = "none",
        /// A result waits in the outbox.
        Queued = "queued",
        /// The processor accepted the result.
        Delivered = "delivered",
        /// The processor refused it for good (4xx, or our attempt budget is spent).
        Failed = "failed",
        /// The processor's deadline passed before delivery.
        TooLate = "too_late",
    }
);

str_enum!(
    /// Cardholder status.
    CardholderStatus {
        /// Normal.
        Active = "active",
        /// No new challenges; webhooks answered with the processor's refusal.
        Blocked = "blocked",
    }
);

str_enum!(
    /// Device status.
    DeviceStatus {
        /// Receives challenges and may answer.
        Active = "active",
        /// Locked after too many refused proofs or by an operator; can be unlocked.
        Locked = "locked",
        /// Unenrolled or revoked; final.
        Revoked = "revoked",
    }
);

str_enum!(
    /// Device platform, which decides the push service.
    Platform {
        /// iOS / iPadOS: APNs.
        Ios = "ios",
        /// Android: FCM.
        Android = "android",
        /// A Web Push subscription (RFC 8030): UnifiedPush on Android without Google
        /// services, or a browser. The push token is the subscription JSON.
        #[serde(rename = "webpush")]
        WebPush = "webpush",
        /// Anything else (tests, desktop): no push, polling only.
        Other = "other",
    }
);

str_enum!(
    /// APNs environment of a device token.
    PushEnvironment {
        /// `api.sandbox.push.apple.com`.
        Sandbox = "sandbox",
        /// `api.push.apple.com`.
        Production = "production",
    }
);

str_enum!(
    /// Kind of outbox row.
    OutboxKind {
        /// Notify a device of a new challenge.
        Push = "push",
        /// Tell a device to remove the prompt (another device answered, or closed).
        Dismiss = "dismiss",
        /// Send the result to the processor.
        Upstream = "upstream",
    }
);

/// Which outbox rows a claim takes. The server claims each lane with its own
/// worker, so slow processor calls cannot hold up pushes to devices, and a burst of
/// pushes cannot delay results the processor is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxLane {
    /// Every kind.
    All,
    /// Rows for devices: `push` and `dismiss`.
    Devices,
    /// Rows for the processor: `upstream`.
    Upstream,
}

impl OutboxLane {
    /// Whether the lane takes `push` and `dismiss` rows.
    pub fn takes_device_rows(self) -> bool {
        matches!(self, OutboxLane::All | OutboxLane::Devices)
    }
    /// Whether the lane takes `upstream` rows.
    pub fn takes_upstream_rows(self) -> bool {
        matches!(self, OutboxLane::All | OutboxLane::Upstream)
    }
}

str_enum!(
    /// Outbox row status.
    OutboxStatus {
        /// Waiting for (another) attempt.
        Pending = "pending",
        /// Delivered.
        Done = "done",
        /// Given up: refused for good.
        Failed = "failed",
        /// Given up: deadline passed.
        TooLate = "too_late",
    }
);

str_enum!(
    /// Outcome of one delivery attempt.
    AttemptOutcome {
        /// Delivered.
        Ok = "ok",
        /// Failed in a way worth retrying.
        Retry = "retry",
        /// Failed for good.
        Fatal = "fatal",
    }
);

str_enum!(
    /// The cardholder's decision as stored.
    DecisionKind {
        /// Approved.
        Approve = "approve",
        /// Denied.
        Deny = "deny",
    }
);

str_enum!(
    /// Why denied, as stored.
    DenyReasonKind {
        /// "Not me": fraud signal.
        NotMe = "not_me",
        /// Declined.
        Declined = "declined",
    }
);

str_enum!(
    /// Transaction kind, as stored (mirrors `pushauth_core::TransactionKind`).
    KindColumn {
        /// Payment.
        Payment = "payment",
        /// Recurring.
        Recurring = "recurring",
        /// Wallet operation.
        WalletOperation = "wallet_operation",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        for s in ChallengeStatus::ALL {
            assert_eq!(ChallengeStatus::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in UpstreamStatus::ALL {
            assert_eq!(UpstreamStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(ChallengeStatus::parse("PENDING"), None);
        assert!(!ChallengeStatus::Pending.is_final());
        assert!(ChallengeStatus::Expired.is_final());
    }
}

str_enum!(
    /// What an admin API key may do.
    AdminScope {
        /// Read-only: `GET` requests only.
        Read = "read",
        /// Everything.
        Full = "full",
    }
);

str_enum!(
    /// Where an admin API key came from.
    KeyOrigin {
        /// `security.admin_key`; revoked at start-up once another key is configured.
        Configured = "configured",
        /// Generated on first start and written to `<data_dir>/admin-key`.
        Generated = "generated",
        /// Created through the admin API or `pushauth admin-key create`.
        Created = "created",
    }
);

str_enum!(
    /// Type of an issuer event (docs/api.md "Issuer events"). Stable: receivers switch
    /// on it; new types may be added, never renamed.
    IssuerEventType {
        /// A cardholder approved, denied or answered "not me".
        ChallengeDecided = "challenge.decided",
        /// Nobody answered before the deadline.
        ChallengeExpired = "challenge.expired",
        /// The processor refused the result for good, or its outcome is unknown.
        UpstreamFailed = "upstream.failed",
        /// The processor's deadline passed before the result reached it.
        UpstreamTooLate = "upstream.too_late",
        /// A device was enrolled.
        DeviceEnrolled = "device.enrolled",
        /// A device was locked (refused proofs, or an operator).
        DeviceLocked = "device.locked",
        /// A device was revoked by an operator or unenrolled itself.
        DeviceRevoked = "device.revoked",
        /// The push service reported the device's token dead.
        DevicePushUnreachable = "device.push_unreachable",
        /// A cardholder was blocked.
        CardholderBlocked = "cardholder.blocked",
    }
);

str_enum!(
    /// Status of one event's delivery to one endpoint.
    DeliveryStatus {
        /// Waiting for (another) attempt.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Done = "done",
        /// Given up (retry window spent, or the endpoint refused it for good).
        Failed = "failed",
    }
);
