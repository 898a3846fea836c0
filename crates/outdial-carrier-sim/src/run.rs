//! Simulation tasks: walk a call's or message's timeline and deliver its signed status
//! callbacks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::meter;
use crate::outcome::{CallPlan, SmsOutcome, call_timeline, sms_timeline};
use crate::state::Sim;
use outdial_carrier::signature;

/// Real-time backoff before each retry of a failed callback `POST` (3 retries).
const RETRY_BACKOFF_MS: [u64; 3] = [200, 400, 800];

/// A call accepted by `POST …/Calls.json`.
pub(crate) struct CallJob {
    pub(crate) sid: String,
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) status_callback: Option<String>,
    /// Requested `StatusCallbackEvent`s (`initiated`, `ringing`, `answered`, `completed`).
    pub(crate) events: BTreeSet<String>,
    pub(crate) machine_detection: bool,
    pub(crate) plan: CallPlan,
}

/// A message accepted by `POST …/Messages.json`.
pub(crate) struct MessageJob {
    pub(crate) sid: String,
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) status_callback: Option<String>,
    pub(crate) outcome: SmsOutcome,
}

/// Counts the call inactive when its task ends, also when it is aborted at shutdown.
struct ActiveGuard(Arc<Sim>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.call_inactive();
    }
}

async fn wait(real: Duration) {
    if !real.is_zero() {
        tokio::time::sleep(real).await;
    }
}

fn param(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

/// Plays `job`'s timeline: waits, sends each requested callback, always sends the final one.
pub(crate) async fn run_call(sim: Arc<Sim>, job: CallJob) {
    let _active = ActiveGuard(Arc::clone(&sim));
    let mut sequence = 0u32;
    for step in call_timeline(job.plan, job.machine_detection, sim.cfg.no_answer_ring_s) {
        wait(sim.real_wait(step.wait_ms)).await;
        let wanted = step.event.is_none_or(|event| job.events.contains(event));
        if let (true, Some(url)) = (wanted, &job.status_callback) {
            let mut params = vec![
                param("AccountSid", sim.cfg.account_sid.as_str()),
                param("ApiVersion", "2010-04-01"),
                param("CallSid", job.sid.as_str()),
                param("CallStatus", step.status),
                param("CallbackSource", "call-progress-events"),
                param("Called", job.to.as_str()),
                param("Caller", job.from.as_str()),
                param("Direction", "outbound-api"),
                param("From", job.from.as_str()),
                param("SequenceNumber", sequence.to_string()),
                param("To", job.to.as_str()),
            ];
            if let Some(fin) = &step.fin {
                params.push(param("CallDuration", fin.duration_s.to_string()));
                params.push(param("SipResponseCode", fin.sip.to_string()));
                if let Some(answered_by) = fin.answered_by {
                    params.push(param("AnsweredBy", answered_by));
                }
                if fin.spam {
                    params.push(param("SpamFlagged", "true"));
                }
            }
            deliver(&sim, &job.sid, url, &params).await;
            sequence += 1;
        }
        if step.fin.is_some() {
            sim.ended(&job.sid);
        }
    }
    tracing::debug!(call_sid = %job.sid, outcome = job.plan.outcome.as_str(), "call simulation done");
}

/// Plays `job`'s message timeline, sending every status.
pub(crate) async fn run_message(sim: Arc<Sim>, job: MessageJob) {
    for (wait_ms, status, error_code) in sms_timeline(job.outcome, sim.cfg.sms_delay_ms) {
        wait(sim.real_wait(wait_ms)).await;
        let Some(url) = &job.status_callback else {
            continue;
        };
        let mut params = vec![
            param("AccountSid", sim.cfg.account_sid.as_str()),
            param("ApiVersion", "2010-04-01"),
            param("From", job.from.as_str()),
            param("MessageSid", job.sid.as_str()),
            param("MessageStatus", status),
            param("SmsSid", job.sid.as_str()),
            param("SmsStatus", status),
            param("To", job.to.as_str()),
        ];
        if let Some(code) = error_code {
            params.push(param("ErrorCode", code.to_string()));
        }
        deliver(&sim, &job.sid, url, &params).await;
    }
    sim.ended(&job.sid);
    sim.message_inactive();
}

/// POSTs one signed callback, retrying connect errors, timeouts and `5xx` after
/// [`RETRY_BACKOFF_MS`]; other answers (`4xx`, `3xx`) are not retried.
async fn deliver(sim: &Sim, sid: &str, url: &str, params: &[(String, String)]) {
    let signature = signature::sign(&sim.cfg.auth_token, url, params);
    let mut retries = RETRY_BACKOFF_MS.iter();
    loop {
        let problem = match sim
            .http
            .post(url)
            .header(signature::HEADER, &signature)
            .form(params)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => {
                // Read the (ignored) body so the connection goes back to the pool.
                let _ = response.bytes().await;
                sim.callback_done(sid, true);
                return;
            }
            Ok(response) => {
                let status = response.status();
                if !status.is_server_error() {
                    tracing::warn!(sid, url, %status, "status callback refused; not retrying");
                    sim.callback_done(sid, false);
                    return;
                }
                format!("HTTP {status}")
            }
            Err(error) => outdial_carrier::error_chain(&error),
        };
        let Some(&backoff_ms) = retries.next() else {
            tracing::warn!(
                sid,
                url,
                problem,
                "status callback failed; retries exhausted"
            );
            sim.callback_done(sid, false);
            return;
        };
        tracing::debug!(
            sid,
            url,
            problem,
            backoff_ms,
            "status callback failed; retrying"
        );
        meter::callback("retried");
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
    }
}
