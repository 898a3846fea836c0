//! Calls: originating through the carrier, and ending an attempt exactly once (product §5.6,
//! §5.7).
//!
//! An attempt ends by the carrier's status callback (relayed by the API as a `CallStatus`
//! job), by its durable timeout job (`CallTimeout`, 30 minutes by default), or by an
//! originate failure. Whichever comes first wins — the completion is a compare-and-set in
//! Postgres — and only the winner releases the channel, records the caller ID's health event
//! (in the completing statement) and asks for its re-score, publishes the event and resolves
//! the contact.

use outdial_carrier::callback::CallStatusCallback;
use outdial_carrier::{CarrierError, OriginateRequest};
use outdial_control::effects;
use outdial_domain::AttemptId;
use outdial_domain::contact::{CompletedBy, Disposition};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::{DialerJob, HealthJob};
use outdial_store::dialing::{AttemptOutcome, Completion};
use outdial_worker::{Done, JobError};
use tracing::Instrument;

use crate::Dialer;

impl Dialer {
    /// The URL the carrier posts status callbacks of attempt `id` to.
    pub fn status_callback_url(&self, id: AttemptId) -> String {
        format!(
            "{}/carrier/voice/status?attempt={id}",
            self.svc.config.api.public_url.trim_end_matches('/')
        )
    }

    pub(crate) async fn originate(&self, id: AttemptId) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        // pending → originating is the point of no return: a job that runs again (after a
        // crash or a lost lease) finds the attempt no longer pending and never calls twice.
        let Some(attempt) = self.svc.store.begin_originate(id, now).await? else {
            return Ok(Done::nothing());
        };
        let req = OriginateRequest {
            to: attempt.to_number.to_string(),
            from: attempt.from_number.to_string(),
            url: self.svc.config.dialer.call_url.clone(),
            status_callback: self.status_callback_url(id),
            status_events: self
                .svc
                .config
                .dialer
                .call_status_events
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            machine_detection: true,
        };
        let span = tracing::info_span!("originate", attempt = %id, contact = %attempt.contact_id, did = ?attempt.did_id);
        match self.voice.originate(&req).instrument(span).await {
            Ok(resp) => {
                self.call_sids.submit((id, resp.call_sid.clone())).await?;
                let event = Event::new(names::CALL_INITIATED, attempt.org_id, now)
                    .maybe_campaign(attempt.campaign_id)
                    .contact(attempt.contact_id)
                    .attempt(id)
                    .data(serde_json::json!({ "to": attempt.to_number, "from": attempt.from_number, "call_sid": resp.call_sid }));
                self.svc.events.publish(&event).await;
                Ok(Done::nothing())
            }
            Err(e) => {
                let disposition = match &e {
                    CarrierError::InvalidNumber { .. } => Disposition::InvalidNumber,
                    CarrierError::Rejected { .. } | CarrierError::Transient { .. } => {
                        Disposition::Failed
                    }
                };
                tracing::warn!(error = %e, "originate failed");
                let outcome = AttemptOutcome {
                    disposition,
                    carrier_status: None,
                    answered_by: None,
                    duration_s: None,
                    call_sid: None,
                    completed_by: CompletedBy::Originate,
                    error: Some(e.to_string()),
                    spam_flagged: false,
                };
                self.finish(id, &outcome).await?;
                Ok(Done::nothing().withdrawing(Self::timeout_job_id(id)))
            }
        }
    }

    /// The id of attempt `id`'s completion-timeout job: the job that completes the call
    /// withdraws it with its ack, so a finished call's timeout does not wait in Redis for
    /// the whole `completion_timeout_ms`.
    fn timeout_job_id(id: AttemptId) -> String {
        DialerJob::CallTimeout { attempt_id: id }.id()
    }

    pub(crate) async fn call_status(
        &self,
        id: AttemptId,
        cb: CallStatusCallback,
    ) -> Result<Done<DialerJob>, JobError> {
        let Some(disposition) = cb.disposition(self.svc.config.dialer.hangup_threshold_s) else {
            // ringing / answered: progress only; the sid may arrive here before the
            // originate response is recorded.
            self.call_sids.submit((id, cb.call_sid.clone())).await?;
            return Ok(Done::nothing());
        };
        let outcome = AttemptOutcome {
            disposition,
            carrier_status: Some(cb.call_status.clone()),
            answered_by: cb.answered_by.clone(),
            duration_s: cb.call_duration_s.and_then(|d| i32::try_from(d).ok()),
            call_sid: Some(cb.call_sid.clone()),
            completed_by: CompletedBy::Webhook,
            error: None,
            spam_flagged: cb.spam_flagged,
        };
        self.finish(id, &outcome).await?;
        Ok(Done::nothing().withdrawing(Self::timeout_job_id(id)))
    }

    pub(crate) async fn call_timeout(&self, id: AttemptId) -> Result<Done<DialerJob>, JobError> {
        let outcome = AttemptOutcome {
            disposition: Disposition::Timeout,
            carrier_status: None,
            answered_by: None,
            duration_s: None,
            call_sid: None,
            completed_by: CompletedBy::Timeout,
            error: Some("no completion signal within the completion timeout".into()),
            spam_flagged: false,
        };
        self.finish(id, &outcome).await?;
        Ok(Done::nothing())
    }

    /// Ends attempt `id` with `outcome` if nothing ended it before, then does the completion's
    /// effects: channel release, the caller ID's re-score, stats request, event, and campaign
    /// completion when this was its last open contact. Returns the completion, or `None` if the
    /// attempt had already ended.
    ///
    /// Errors: Postgres failures (the job retries; the compare-and-set makes that safe); an unknown
    /// attempt id is permanent (the job is dead-lettered at once).
    pub async fn finish(
        &self,
        id: AttemptId,
        outcome: &AttemptOutcome,
    ) -> Result<Option<Completion>, JobError> {
        let now = self.clock().now();
        let now_ms = now.timestamp_millis();
        // An unknown attempt is a NotFound, which no retry can change: dead-lettered at once.
        let Some(done) = self.completions.submit((id, outcome.clone(), now)).await? else {
            return Ok(None);
        };
        let a = &done.attempt;
        effects::release_channels(&self.svc, &[(a.channel_pool.clone(), a.holder())], now_ms).await;
        metrics::counter!("outdial_dialer_attempts_completed_total", "disposition" => outcome.disposition.as_str(), "completed_by" => outcome.completed_by.as_str())
            .increment(1);
        // The completion wrote the health event; the caller ID's score follows within
        // `rescore_delay_ms` (one re-score absorbs the calls completing meanwhile).
        if let Some(did_id) = a.did_id {
            let due = now_ms + self.svc.config.health.rescore_delay_ms;
            if let Err(e) = self
                .svc
                .health_queue
                .enqueue(&[HealthJob::Rescore { did_id }.at(due)], now_ms)
                .await
            {
                // The event is recorded; the DID's next completed call re-scores it.
                tracing::warn!(attempt = %id, did = %did_id, error = %e, "re-score not enqueued");
            }
        }
        let campaign = a.campaign_id;
        let event = Event::new(
            &format!("campaign.call.{}", outcome.disposition.as_str()),
            a.org_id,
            now,
        )
        .maybe_campaign(campaign)
        .contact(a.contact_id)
        .attempt(id)
        .data(serde_json::json!({
            "to": a.to_number,
            "from": a.from_number,
            "duration_s": outcome.duration_s,
            "contact_status": done.contact_status,
            "completed_by": outcome.completed_by,
        }));
        self.svc.events.publish(&event).await;
        if let Some(c) = campaign {
            effects::request_stats(&self.svc, c).await;
            if done.campaign_finished {
                self.complete_campaign(c).await?;
            }
        }
        Ok(Some(done))
    }
}
