//! The provider traits the dialer calls, their request/response shapes, and the error that
//! tells the caller what to do next (product §5 "Outcomes and resolution").

use serde::{Deserialize, Serialize};

/// Twilio error codes on a `400` that mean "this destination number is invalid or
/// unallocated" — a permanent failure for that number only (product §5.4: the number is
/// skipped for the rest of its attempts).
///
/// 21211 invalid `To`, 21214 `To` cannot be reached, 21217 number does not appear valid,
/// 21401 invalid phone number, 21421 phone number is invalid.
pub const INVALID_NUMBER_CODES: [u32; 5] = [21211, 21214, 21217, 21401, 21421];

/// One outbound call to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginateRequest {
    /// Destination, E.164 (`"+12125550100"`).
    pub to: String,
    /// Caller ID (one of our DIDs), E.164.
    pub from: String,
    /// URL the carrier fetches call instructions (TwiML) from once answered.
    pub url: String,
    /// URL the carrier `POST`s signed status callbacks to.
    pub status_callback: String,
    /// Progress events to report there, each sent as a repeated `StatusCallbackEvent` field
    /// (`initiated`, `ringing`, `answered`, `completed`); the carrier reports the final
    /// status (`completed`, `busy`, `no-answer`, `failed`, `canceled`) in any case.
    pub status_events: Vec<String>,
    /// Ask for answering-machine detection (`MachineDetection=Enable`), so the final
    /// callback carries `AnsweredBy`.
    pub machine_detection: bool,
}

/// The carrier accepted the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginateResponse {
    /// The carrier's call id (`"CA"` + 32 hex digits); status callbacks carry it as `CallSid`.
    pub call_sid: String,
    /// The carrier's status at acceptance, normally `"queued"`.
    pub status: String,
}

/// One text message to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSmsRequest {
    /// Destination, E.164.
    pub to: String,
    /// Sending DID, E.164.
    pub from: String,
    /// The SMS text, sent as the `Body` parameter.
    pub body: String,
    /// URL the carrier `POST`s signed `MessageStatus` callbacks to.
    pub status_callback: String,
}

/// The carrier accepted the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSmsResponse {
    /// The carrier's message id (`"SM"` + 32 hex digits), `MessageSid` in callbacks.
    pub message_sid: String,
    /// The carrier's status at acceptance, normally `"queued"`.
    pub status: String,
}

/// Why the carrier did not accept a request, sorted by what the caller should do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// `400` with one of [`INVALID_NUMBER_CODES`]: the destination number is invalid or
    /// unallocated. Permanent for *that number*; skip it (disposition `invalid_number`).
    #[error("invalid number (carrier code {code}): {message}")]
    InvalidNumber {
        /// The carrier's error code, e.g. 21211.
        code: u32,
        /// The carrier's message.
        message: String,
    },
    /// Any other `4xx` (bad credentials, bad caller ID, malformed request) or an unexpected
    /// `3xx`: our request or configuration is wrong, so sending the same request again will
    /// fail the same way. `status` is `0` when no HTTP exchange took place (an unusable base
    /// URL or account sid given to [`crate::TwilioRest::new`]).
    #[error("carrier rejected the request (HTTP {status}, code {code:?}): {message}")]
    Rejected {
        /// HTTP status, or `0` for a configuration error caught before sending.
        status: u16,
        /// The carrier's error code when its body had one.
        code: Option<u32>,
        /// The carrier's message, or a description of the local problem.
        message: String,
    },
    /// `5xx`, `429`, connect errors, timeouts and unreadable success bodies: worth retrying
    /// later. After a timeout the carrier may still have placed the call.
    #[error("transient carrier failure (HTTP {status:?}): {message}")]
    Transient {
        /// HTTP status when there was a response; `None` for connect errors and timeouts.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
}

impl CarrierError {
    /// Whether retrying the same request later may succeed (only [`Self::Transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// Places outbound calls. Implemented by [`crate::TwilioRest`]; the dialer holds an
/// `Arc<dyn VoiceProvider>`.
#[async_trait::async_trait]
pub trait VoiceProvider: Send + Sync + 'static {
    /// Asks the carrier to place `req`. `Ok` means accepted (the outcome arrives later as
    /// status callbacks); errors are classified as in [`CarrierError`].
    async fn originate(&self, req: &OriginateRequest) -> Result<OriginateResponse, CarrierError>;
}

/// Sends text messages. Implemented by [`crate::TwilioRest`].
#[async_trait::async_trait]
pub trait MessagingProvider: Send + Sync + 'static {
    /// Asks the carrier to send `req`. `Ok` means accepted (delivery arrives later as
    /// `MessageStatus` callbacks); errors are classified as in [`CarrierError`].
    async fn send_sms(&self, req: &SendSmsRequest) -> Result<SendSmsResponse, CarrierError>;
}
