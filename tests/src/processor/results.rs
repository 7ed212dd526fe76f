//! The result calls each processor must receive for each ending of a challenge, and
//! their checks (split from `processor.rs`, which builds the webhooks and runs the
//! mock processors).

use serde_json::{Value, json};

use super::{ADYEN_SDK_OUTPUT, Call, Ending, Processor};

impl Processor {
    /// The result call the processor must receive for `ending`, or `None` when the
    /// connector sends nothing (the processor times out on its own).
    pub fn expected_result(self, ending: Ending) -> Option<Value> {
        use Ending::*;
        match (self, ending) {
            (Processor::Enfuce, Approved) => Some(json!({"result": "SUCCESS"})),
            (Processor::Enfuce, Denied | NotMe) => Some(json!({"result": "FAIL"})),
            (Processor::Enfuce, TimedOut) => Some(json!({"result": "TIMEOUT"})),
            (Processor::Adyen, Approved) => Some(json!({"completed": true})),
            (Processor::Adyen, Denied | NotMe) => Some(json!({"completed": false})),
            (Processor::Adyen, TimedOut) => None,
            (Processor::Paysafe, Approved) => Some(json!({
                "walletOperationId": "7767a3c3-c461-41ed-99d2-010861f3cee4",
                // docs/providers/paysafe.md: our push approval is reported as
                // BIOMETRIC over PUSH_NOTIFICATION; the one-time value is sent only
                // with `attempt_send_value`.
                "verification": {"method": "BIOMETRIC", "channel": "PUSH_NOTIFICATION"},
            })),
            (Processor::Paysafe, _) => None,
            // The signature is the device's approval JWS, checked apart.
            (Processor::Treezor, Approved) => Some(json!({"authenticationResult": "OK"})),
            (Processor::Treezor, Denied | NotMe) => {
                Some(json!({"authenticationResult": "KO_AUTH_FAILED"}))
            }
            (Processor::Treezor, TimedOut) => Some(json!({"authenticationResult": "FALLBACK"})),
        }
    }

    /// Checks one result call against what `ending` must produce.
    pub fn check_result(self, call: &Call, ending: Ending, reference: &str) {
        assert!(
            call.accepted,
            "{} result call without the right credentials: {call:#?}",
            self.name()
        );
        let expected = self.expected_result(ending).unwrap();
        let mut body = call.json();
        match self {
            Processor::Enfuce => assert!(
                call.path.ends_with(&format!("/{reference}")),
                "{}",
                call.path
            ),
            Processor::Adyen => {
                assert_eq!(call.path, format!("/acs/v1/challenges/{reference}"));
                if ending == Ending::Approved {
                    let sca = format!("SCA realm=\"Challenge\" authparm1=\"{ADYEN_SDK_OUTPUT}\"");
                    assert_eq!(call.header("www-authenticate"), Some(sca.as_str()));
                }
            }
            Processor::Paysafe => {
                assert_eq!(call.path, format!("/sca/events/{reference}/attempts"))
            }
            Processor::Treezor => {
                assert_eq!(call.path, format!("/v1/auth-requests/{reference}/result"));
                if ending == Ending::Approved {
                    let sig = body
                        .as_object_mut()
                        .unwrap()
                        .remove("authenticationSignature")
                        .expect("authenticationSignature");
                    assert_eq!(
                        sig.as_str().unwrap().split('.').count(),
                        3,
                        "a compact JWS: {sig}"
                    );
                }
            }
        }
        assert_eq!(body, expected, "{} result for {ending:?}", self.name());
    }

    /// The status of the challenge's upstream leg once `ending` is settled.
    pub fn expected_upstream(self, ending: Ending) -> &'static str {
        if self.expected_result(ending).is_some() {
            "delivered"
        } else {
            "none"
        }
    }
}
