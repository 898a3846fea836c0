//! [`TwilioRest`]: the carrier REST client (Twilio API `2010-04-01`), also spoken by the
//! simulator in [`crate::sim`].

use std::time::Duration;

use serde::Deserialize;

use crate::provider::{
    CarrierError, INVALID_NUMBER_CODES, MessagingProvider, OriginateRequest, OriginateResponse,
    SendSmsRequest, SendSmsResponse, VoiceProvider,
};

/// The call progress events requested on every originate, in order.
/// Every call progress event a carrier can report (`StatusCallbackEvent` values).
pub const CALL_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// A Twilio-compatible REST client: [`VoiceProvider`] and [`MessagingProvider`] over
/// `POST …/Calls.json` and `POST …/Messages.json` with HTTP basic auth.
///
/// Cheap to clone (the HTTP connection pool is shared). Redirects are not followed: a `3xx`
/// means the base URL is wrong and is reported as [`CarrierError::Rejected`].
#[derive(Clone)]
pub struct TwilioRest {
    client: reqwest::Client,
    calls_url: String,
    messages_url: String,
    account_sid: String,
    auth_token: String,
}

impl std::fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioRest")
            .field("calls_url", &self.calls_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Twilio's error body, `{code, message, more_info, status}`; every field optional so a
/// proxy's or load balancer's body still parses.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// The fields we read from a `201` body.
#[derive(Debug, Deserialize)]
struct CreatedBody {
    sid: String,
    status: String,
}

impl TwilioRest {
    /// A client for the account `account_sid` at `base_url` (`"https://api.twilio.com"`, or
    /// the simulator's `"http://127.0.0.1:7070"`; a trailing `/` is ignored). `timeout`
    /// bounds each whole request (connect, send, response).
    ///
    /// Errors: [`CarrierError::Rejected`] with `status: 0` when `base_url` is not an
    /// `http(s)://` URL, `account_sid` is empty or not alphanumeric, or the HTTP client
    /// cannot be built.
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        timeout: Duration,
    ) -> Result<Self, CarrierError> {
        let config_error = |message: String| CarrierError::Rejected {
            status: 0,
            code: None,
            message,
        };
        let base = base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| config_error(format!("carrier base url {base_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(config_error(format!(
                "carrier base url {base_url:?} is not http(s)"
            )));
        }
        if account_sid.is_empty() || !account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(config_error(format!(
                "account sid {account_sid:?} is not alphanumeric"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("outdial-carrier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config_error(format!("http client: {e}")))?;
        let account = format!("{base}/2010-04-01/Accounts/{account_sid}");
        Ok(Self {
            client,
            calls_url: format!("{account}/Calls.json"),
            messages_url: format!("{account}/Messages.json"),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        })
    }

    /// POSTs `form` to `url` and reads the `201` body's `sid` and `status`.
    async fn create(&self, url: &str, form: &[(&str, &str)]) -> Result<CreatedBody, CarrierError> {
        let response = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .map_err(|e| CarrierError::Transient {
                status: None,
                message: error_chain(&e),
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| CarrierError::Transient {
                status: Some(status.as_u16()),
                message: format!("reading response body: {}", error_chain(&e)),
            })?;
        if status.is_success() {
            return serde_json::from_slice::<CreatedBody>(&body).map_err(|e| {
                CarrierError::Transient {
                    status: Some(status.as_u16()),
                    message: format!("unreadable success body: {e}"),
                }
            });
        }
        Err(classify(status.as_u16(), &body))
    }
}

/// Maps a non-success response to a [`CarrierError`] (see its variants).
fn classify(status: u16, body: &[u8]) -> CarrierError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let message = parsed.message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {status}")
        } else {
            text.chars().take(200).collect()
        }
    });
    match (status, parsed.code) {
        (400, Some(code)) if INVALID_NUMBER_CODES.contains(&code) => {
            CarrierError::InvalidNumber { code, message }
        }
        (429 | 500..=599, _) => CarrierError::Transient {
            status: Some(status),
            message,
        },
        (_, code) => CarrierError::Rejected {
            status,
            code,
            message,
        },
    }
}

/// `error: cause: cause…` — an error with its whole source chain on one line, because
/// reqwest's top-level message hides the interesting part.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl VoiceProvider for TwilioRest {
    #[tracing::instrument(skip_all, fields(to = %req.to, from = %req.from), err)]
    async fn originate(&self, req: &OriginateRequest) -> Result<OriginateResponse, CarrierError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("To", &req.to),
            ("From", &req.from),
            ("Url", &req.url),
            ("StatusCallback", &req.status_callback),
            ("StatusCallbackMethod", "POST"),
        ];
        form.extend(
            req.status_events
                .iter()
                .map(|event| ("StatusCallbackEvent", event.as_str())),
        );
        if req.machine_detection {
            form.push(("MachineDetection", "Enable"));
        }
        let created = self.create(&self.calls_url, &form).await?;
        tracing::debug!(call_sid = %created.sid, status = %created.status, "call accepted");
        Ok(OriginateResponse {
            call_sid: created.sid,
            status: created.status,
        })
    }
}

#[async_trait::async_trait]
impl MessagingProvider for TwilioRest {
    #[tracing::instrument(skip_all, fields(to = %req.to, from = %req.from), err)]
    async fn send_sms(&self, req: &SendSmsRequest) -> Result<SendSmsResponse, CarrierError> {
        let form = [
            ("To", req.to.as_str()),
            ("From", req.from.as_str()),
            ("Body", req.body.as_str()),
            ("StatusCallback", req.status_callback.as_str()),
        ];
        let created = self.create(&self.messages_url, &form).await?;
        tracing::debug!(message_sid = %created.sid, status = %created.status, "message accepted");
        Ok(SendSmsResponse {
            message_sid: created.sid,
            status: created.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_error_responses() {
        let body = br#"{"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}"#;
        assert_eq!(
            classify(400, body),
            CarrierError::InvalidNumber {
                code: 21211,
                message: "Invalid 'To' Phone Number".into()
            }
        );
        for code in INVALID_NUMBER_CODES {
            let body = format!(r#"{{"code": {code}, "message": "m", "status": 400}}"#);
            assert!(
                matches!(classify(400, body.as_bytes()), CarrierError::InvalidNumber { code: c, .. } if c == code)
            );
        }
        // An invalid-number code on another status, or another code on 400, is our problem.
        assert!(matches!(
            classify(404, body),
            CarrierError::Rejected {
                status: 404,
                code: Some(21211),
                ..
            }
        ));
        let from = br#"{"code": 21212, "message": "Invalid From Number", "status": 400}"#;
        assert!(matches!(
            classify(400, from),
            CarrierError::Rejected {
                status: 400,
                code: Some(21212),
                ..
            }
        ));
        assert!(matches!(
            classify(401, b""),
            CarrierError::Rejected {
                status: 401,
                code: None,
                ..
            }
        ));
        assert!(matches!(
            classify(302, b""),
            CarrierError::Rejected { status: 302, .. }
        ));
        assert!(
            matches!(classify(429, b"slow down"), CarrierError::Transient { status: Some(429), ref message } if message == "slow down")
        );
        assert!(matches!(
            classify(503, b"<html>"),
            CarrierError::Transient {
                status: Some(503),
                ..
            }
        ));
        assert!(
            matches!(classify(500, b""), CarrierError::Transient { status: Some(500), ref message } if message == "HTTP 500")
        );
    }

    #[test]
    fn new_rejects_unusable_configuration() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            TwilioRest::new("not a url", "AC1", "t", t),
            Err(CarrierError::Rejected { status: 0, .. })
        ));
        assert!(matches!(
            TwilioRest::new("ftp://x", "AC1", "t", t),
            Err(CarrierError::Rejected { status: 0, .. })
        ));
        assert!(matches!(
            TwilioRest::new("http://x", "AC/../x", "t", t),
            Err(CarrierError::Rejected { status: 0, .. })
        ));
        let rest =
            TwilioRest::new("http://127.0.0.1:7070/", "AC1", "secret", t).expect("valid config");
        assert_eq!(
            rest.calls_url,
            "http://127.0.0.1:7070/2010-04-01/Accounts/AC1/Calls.json"
        );
        assert_eq!(
            rest.messages_url,
            "http://127.0.0.1:7070/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert!(!format!("{rest:?}").contains("secret"));
    }
}
