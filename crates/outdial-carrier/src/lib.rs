//! # outdial-carrier
//!
//! Everything outdial knows about the carrier: how a call or a text is placed and how the
//! carrier reports back (product §2, §5.6 "Originate", §5 "Outcomes and resolution", §6).
//! The simulator speaking the same protocol is the crate `outdial-carrier-sim`, apart so
//! that production binaries do not link it.
//!
//! ## Protocol
//!
//! The carrier protocol is Twilio's REST API, version `2010-04-01`:
//!
//! 1. **Originate**: `POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json` with HTTP
//!    basic auth (account sid, auth token) and a form body (`To`, `From`, `Url`,
//!    `StatusCallback`, `StatusCallbackEvent`…, `MachineDetection`). A `201` carries the
//!    call's `sid`; a `4xx`/`5xx` carries `{code, message, status}`.
//! 2. **Status callbacks**: the carrier `POST`s form-encoded progress reports (`CallStatus`
//!    `initiated` → `ringing` → `in-progress` → `completed` | `busy` | `no-answer` | `failed`
//!    | `canceled`) to the `StatusCallback` URL, signed in the `X-Twilio-Signature` header.
//! 3. **SMS**: `POST …/Messages.json` (`To`, `From`, `Body`, `StatusCallback`), then
//!    `MessageStatus` callbacks `sending` → `sent` → `delivered` | `undelivered` | `failed`.
//!
//! ## Modules
//!
//! | item | what it is |
//! |---|---|
//! | [`VoiceProvider`], [`MessagingProvider`] | the traits the dialer calls; [`CarrierError`] says whether to retry |
//! | [`TwilioRest`] | the REST client implementing both traits |
//! | [`signature`] | `X-Twilio-Signature`: HMAC-SHA1 signing and constant-time verification |
//! | [`callback`] | parsing status callbacks and mapping them to a [`Disposition`] |
//!
//! [`Disposition`]: outdial_domain::contact::Disposition

pub mod callback;
mod provider;
pub mod signature;
mod twilio;

pub use provider::{
    CarrierError, INVALID_NUMBER_CODES, MessagingProvider, OriginateRequest, OriginateResponse,
    SendSmsRequest, SendSmsResponse, VoiceProvider,
};
pub use twilio::{CALL_EVENTS, TwilioRest, error_chain};
