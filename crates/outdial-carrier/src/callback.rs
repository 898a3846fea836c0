//! Status callbacks: the form parameters the carrier `POST`s to a call's or message's
//! `StatusCallback` URL, and what a final one means for the attempt (product §5 "Outcomes and
//! resolution", §6).
//!
//! Verify the request first with [`crate::signature::verify`]; then parse the decoded form
//! with [`CallStatusCallback::from_params`] or [`MessageStatusCallback::from_params`].
//! Unknown parameters are ignored and unknown status values are kept (they are simply not
//! final), so a carrier adding either does not break the webhook.

use outdial_domain::contact::Disposition;

/// A status callback could not be read; names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// A required parameter is absent or empty.
    #[error("status callback is missing the {0} parameter")]
    Missing(&'static str),
    /// A parameter is present but cannot be read as its type.
    #[error("status callback parameter {field} has an invalid value {value:?}")]
    Invalid {
        /// The parameter name, e.g. `"CallDuration"`.
        field: &'static str,
        /// The raw text received for it.
        value: String,
    },
}

/// The first non-empty value of `key` (Twilio sends each once; empty means absent).
fn get<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

fn required(params: &[(String, String)], key: &'static str) -> Result<String, CallbackError> {
    get(params, key)
        .map(str::to_owned)
        .ok_or(CallbackError::Missing(key))
}

fn number<T: std::str::FromStr>(
    params: &[(String, String)],
    key: &'static str,
) -> Result<Option<T>, CallbackError> {
    get(params, key)
        .map(|v| {
            v.trim().parse::<T>().map_err(|_| CallbackError::Invalid {
                field: key,
                value: v.to_owned(),
            })
        })
        .transpose()
}

/// `AnsweredBy` values that mean a machine (or fax) picked up: the call is voicemail.
const MACHINE_ANSWERS: [&str; 5] = [
    "machine_start",
    "machine_end_beep",
    "machine_end_silence",
    "machine_end_other",
    "fax",
];

/// SIP response codes on a `failed` call that mean the number does not exist:
/// 404 Not Found, 484 Address Incomplete.
const INVALID_NUMBER_SIP: [u16; 2] = [404, 484];

/// One call status callback (`CallStatus` = `initiated`, `ringing`, `in-progress`,
/// `completed`, `busy`, `no-answer`, `failed` or `canceled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStatusCallback {
    /// `CallSid`: which call (the `call_sid` returned by originate).
    pub call_sid: String,
    /// `CallStatus`, as sent.
    pub call_status: String,
    /// `CallDuration`: seconds from answer to hang-up, on the final callback.
    pub call_duration_s: Option<u32>,
    /// `AnsweredBy` (`human`, `machine_end_beep`, `fax`, `unknown`, …) when machine
    /// detection was requested.
    pub answered_by: Option<String>,
    /// `SipResponseCode` of the far end (200, 404, 486 …), when the carrier reports one.
    pub sip_response_code: Option<u16>,
    /// `SpamFlagged=true`: the carrier's call analytics (or the called party) reported this
    /// call as spam. Not a Twilio parameter; carriers that label calls send it, the
    /// simulator's `spam_reported` outcome does. Feeds the spam-clean component (product §7).
    pub spam_flagged: bool,
}

impl CallStatusCallback {
    /// Reads the decoded form parameters of a call status callback.
    ///
    /// Errors: [`CallbackError::Missing`] without `CallSid` or `CallStatus`;
    /// [`CallbackError::Invalid`] when `CallDuration` or `SipResponseCode` is not a number.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, CallbackError> {
        Ok(Self {
            call_sid: required(params, "CallSid")?,
            call_status: required(params, "CallStatus")?,
            call_duration_s: number(params, "CallDuration")?,
            answered_by: get(params, "AnsweredBy").map(str::to_owned),
            sip_response_code: number(params, "SipResponseCode")?,
            spam_flagged: get(params, "SpamFlagged")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        })
    }

    /// Whether this is the call's last callback: `completed`, `busy`, `no-answer`, `failed`
    /// or `canceled`.
    pub fn is_final(&self) -> bool {
        matches!(
            self.call_status.as_str(),
            "completed" | "busy" | "no-answer" | "failed" | "canceled"
        )
    }

    /// How the attempt ended, or `None` for a non-final callback (product §5 "Outcomes").
    ///
    /// - `completed`, answered by a machine or fax → `Voicemail`; by a human, `unknown` or
    ///   without machine detection → `HumanConnected` if `CallDuration` ≥
    ///   `hangup_threshold_s` seconds, else `HumanHangup` (a missing duration counts as 0 s);
    /// - `busy` → `Busy`; `no-answer` → `NoAnswer`;
    /// - `failed` with SIP 404 or 484 → `InvalidNumber`, other `failed` → `Failed`;
    /// - `canceled` → `Failed`.
    pub fn disposition(&self, hangup_threshold_s: u32) -> Option<Disposition> {
        let disposition = match self.call_status.as_str() {
            "completed" => match self.answered_by.as_deref() {
                Some(answer) if MACHINE_ANSWERS.contains(&answer) => Disposition::Voicemail,
                _ if self.call_duration_s.unwrap_or(0) >= hangup_threshold_s => {
                    Disposition::HumanConnected
                }
                _ => Disposition::HumanHangup,
            },
            "busy" => Disposition::Busy,
            "no-answer" => Disposition::NoAnswer,
            "failed" => match self.sip_response_code {
                Some(code) if INVALID_NUMBER_SIP.contains(&code) => Disposition::InvalidNumber,
                _ => Disposition::Failed,
            },
            "canceled" => Disposition::Failed,
            _ => return None,
        };
        Some(disposition)
    }
}

/// One message status callback (`MessageStatus` = `queued`, `sending`, `sent`, `delivered`,
/// `undelivered` or `failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatusCallback {
    /// `MessageSid` (or the legacy `SmsSid`): which message.
    pub message_sid: String,
    /// `MessageStatus` (or the legacy `SmsStatus`), as sent.
    pub message_status: String,
    /// `ErrorCode` on `undelivered`/`failed` (e.g. 30003 unreachable handset, 30005 unknown
    /// handset).
    pub error_code: Option<u32>,
}

impl MessageStatusCallback {
    /// Reads the decoded form parameters of a message status callback.
    ///
    /// Errors: [`CallbackError::Missing`] without `MessageSid` (and `SmsSid`) or
    /// `MessageStatus` (and `SmsStatus`); [`CallbackError::Invalid`] when `ErrorCode` is not
    /// a number.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, CallbackError> {
        let message_sid = get(params, "MessageSid").or_else(|| get(params, "SmsSid"));
        let message_status = get(params, "MessageStatus").or_else(|| get(params, "SmsStatus"));
        Ok(Self {
            message_sid: message_sid
                .ok_or(CallbackError::Missing("MessageSid"))?
                .to_owned(),
            message_status: message_status
                .ok_or(CallbackError::Missing("MessageStatus"))?
                .to_owned(),
            error_code: number(params, "ErrorCode")?,
        })
    }

    /// Whether this is the message's last callback: `delivered`, `undelivered` or `failed`
    /// (`sent` is still in progress, product §6).
    pub fn is_final(&self) -> bool {
        matches!(
            self.message_status.as_str(),
            "delivered" | "undelivered" | "failed"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn call(
        status: &str,
        duration: Option<u32>,
        answered_by: Option<&str>,
        sip: Option<u16>,
    ) -> CallStatusCallback {
        CallStatusCallback {
            call_sid: "CA1".into(),
            call_status: status.into(),
            call_duration_s: duration,
            answered_by: answered_by.map(str::to_owned),
            sip_response_code: sip,
            spam_flagged: false,
        }
    }

    #[test]
    fn parses_a_final_call_callback() {
        let cb = CallStatusCallback::from_params(&params(&[
            ("AccountSid", "AC0"),
            ("CallSid", "CA42"),
            ("CallStatus", "completed"),
            ("CallDuration", "37"),
            ("AnsweredBy", "human"),
            ("SipResponseCode", "200"),
            ("SequenceNumber", "3"),
        ]))
        .expect("valid callback");
        assert_eq!(
            cb,
            call("completed", Some(37), Some("human"), Some(200)).with_sid("CA42")
        );
        assert!(cb.is_final());
    }

    impl CallStatusCallback {
        fn with_sid(mut self, sid: &str) -> Self {
            sid.clone_into(&mut self.call_sid);
            self
        }
    }

    #[test]
    fn parses_a_progress_callback_without_optional_fields() {
        let cb = CallStatusCallback::from_params(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "ringing"),
            ("AnsweredBy", ""),
        ]))
        .expect("valid callback");
        assert_eq!(cb, call("ringing", None, None, None));
        assert!(!cb.is_final());
        assert_eq!(cb.disposition(10), None);
    }

    #[test]
    fn call_errors_name_the_field() {
        let missing = CallStatusCallback::from_params(&params(&[("CallStatus", "completed")]));
        assert_eq!(missing, Err(CallbackError::Missing("CallSid")));
        let empty =
            CallStatusCallback::from_params(&params(&[("CallSid", "CA1"), ("CallStatus", "")]));
        assert_eq!(empty, Err(CallbackError::Missing("CallStatus")));
        let bad = CallStatusCallback::from_params(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "completed"),
            ("CallDuration", "ten"),
        ]));
        assert_eq!(
            bad,
            Err(CallbackError::Invalid {
                field: "CallDuration",
                value: "ten".into()
            })
        );
        let err = bad.expect_err("invalid").to_string();
        assert!(err.contains("CallDuration") && err.contains("ten"), "{err}");
        let sip = CallStatusCallback::from_params(&params(&[
            ("CallSid", "CA1"),
            ("CallStatus", "failed"),
            ("SipResponseCode", "70000"),
        ]));
        assert!(matches!(
            sip,
            Err(CallbackError::Invalid {
                field: "SipResponseCode",
                ..
            })
        ));
    }

    #[test]
    fn finality() {
        for status in ["completed", "busy", "no-answer", "failed", "canceled"] {
            assert!(call(status, None, None, None).is_final(), "{status}");
        }
        for status in [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "something-new",
        ] {
            assert!(!call(status, None, None, None).is_final(), "{status}");
            assert_eq!(
                call(status, Some(60), None, None).disposition(10),
                None,
                "{status}"
            );
        }
    }

    #[test]
    fn human_answers_split_on_the_threshold() {
        use Disposition::{HumanConnected, HumanHangup};
        for answered_by in [Some("human"), Some("unknown"), None] {
            assert_eq!(
                call("completed", Some(10), answered_by, None).disposition(10),
                Some(HumanConnected)
            );
            assert_eq!(
                call("completed", Some(11), answered_by, None).disposition(10),
                Some(HumanConnected)
            );
            assert_eq!(
                call("completed", Some(9), answered_by, None).disposition(10),
                Some(HumanHangup)
            );
            assert_eq!(
                call("completed", None, answered_by, None).disposition(10),
                Some(HumanHangup)
            );
        }
        assert_eq!(
            call("completed", Some(0), Some("human"), None).disposition(0),
            Some(HumanConnected)
        );
    }

    #[test]
    fn machines_are_voicemail_whatever_the_duration() {
        for answered_by in MACHINE_ANSWERS {
            for duration in [Some(1), Some(30), None] {
                assert_eq!(
                    call("completed", duration, Some(answered_by), None).disposition(10),
                    Some(Disposition::Voicemail),
                    "{answered_by}"
                );
            }
        }
    }

    #[test]
    fn unanswered_and_failed_calls() {
        assert_eq!(
            call("busy", Some(0), None, Some(486)).disposition(10),
            Some(Disposition::Busy)
        );
        assert_eq!(
            call("no-answer", Some(0), None, Some(487)).disposition(10),
            Some(Disposition::NoAnswer)
        );
        assert_eq!(
            call("failed", None, None, Some(404)).disposition(10),
            Some(Disposition::InvalidNumber)
        );
        assert_eq!(
            call("failed", None, None, Some(484)).disposition(10),
            Some(Disposition::InvalidNumber)
        );
        assert_eq!(
            call("failed", None, None, Some(503)).disposition(10),
            Some(Disposition::Failed)
        );
        assert_eq!(
            call("failed", None, None, None).disposition(10),
            Some(Disposition::Failed)
        );
        assert_eq!(
            call("canceled", None, None, None).disposition(10),
            Some(Disposition::Failed)
        );
        assert_eq!(
            call("canceled", None, None, Some(404)).disposition(10),
            Some(Disposition::Failed)
        );
    }

    #[test]
    fn parses_message_callbacks() {
        let sent = MessageStatusCallback::from_params(&params(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "sent"),
        ]))
        .expect("valid callback");
        assert_eq!(
            sent,
            MessageStatusCallback {
                message_sid: "SM1".into(),
                message_status: "sent".into(),
                error_code: None
            }
        );
        assert!(!sent.is_final());

        let undelivered = MessageStatusCallback::from_params(&params(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .expect("valid callback");
        assert_eq!(undelivered.error_code, Some(30003));
        assert!(undelivered.is_final());

        let legacy = MessageStatusCallback::from_params(&params(&[
            ("SmsSid", "SM2"),
            ("SmsStatus", "delivered"),
        ]))
        .expect("valid callback");
        assert_eq!(legacy.message_sid, "SM2");
        assert!(legacy.is_final());
    }

    #[test]
    fn message_finality_and_errors() {
        for (status, is_final) in [
            ("queued", false),
            ("sending", false),
            ("sent", false),
            ("delivered", true),
            ("undelivered", true),
            ("failed", true),
        ] {
            let cb = MessageStatusCallback {
                message_sid: "SM1".into(),
                message_status: status.into(),
                error_code: None,
            };
            assert_eq!(cb.is_final(), is_final, "{status}");
        }
        assert_eq!(
            MessageStatusCallback::from_params(&params(&[("MessageStatus", "sent")])),
            Err(CallbackError::Missing("MessageSid"))
        );
        assert_eq!(
            MessageStatusCallback::from_params(&params(&[("MessageSid", "SM1")])),
            Err(CallbackError::Missing("MessageStatus"))
        );
        assert_eq!(
            MessageStatusCallback::from_params(&params(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "failed"),
                ("ErrorCode", "x")
            ])),
            Err(CallbackError::Invalid {
                field: "ErrorCode",
                value: "x".into()
            })
        );
    }
}
