//! SMS campaigns (product §6): the drip tick, the send, delivery receipts and their timeout.
//!
//! A dialing SMS campaign has exactly one tick job (id `sms-tick:<campaign>`). Each tick
//! texts at most one prospect, then plans the next tick `gap / usable DIDs` ms after its own
//! planned time, recomputing the DID count every tick (10 DIDs and the 15-minute gap → one
//! text every 90 s). In one transaction the tick claims a due prospect whose window is open
//! (DNC prospects are cancelled on the way), claims a DID whose last text is at least the
//! gap ago (atomic on `last_sms_at`, see [`outdial_store::sms`]) and records the message;
//! the carrier is called afterwards by the `SmsSend` job, and a `SmsTimeout` job ends a
//! message whose delivery receipt never comes.
//!
//! No usable DID pauses the campaign (`campaign.paused.no_dids`) until it is resumed. With
//! every DID inside its gap, the tick sleeps until the first one is free; with every zone
//! outside its window, until the earliest opening (plus jitter).

use chrono::{DateTime, Utc};
use outdial_carrier::{CarrierError, SendSmsRequest};
use outdial_control::effects;
use outdial_domain::campaign::{CampaignStatus, Channel};
use outdial_domain::contact::{ContactStatus, Disposition, EndReason};
use outdial_domain::sms::{DripFacts, DripPlan, SmsStatus, plan_drip};
use outdial_domain::{CampaignId, ContactId};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::DialerJob;
use outdial_store::campaigns::Campaign;
use outdial_store::dialing;
use outdial_store::sms::{self, NewSms, SmsDidFilter, SmsUpdate};
use outdial_worker::{Done, JobContext, JobError};
use sqlx::PgConnection;

use crate::Dialer;

/// Prospects a tick may cancel for DNC before it gives up until the next tick.
const DNC_SKIPS_PER_TICK: usize = 50;

/// What an SMS tick's claims did ([`Dialer::claim_and_record`]).
#[derive(Debug, Default)]
struct Texted {
    /// prospects cancelled as suppressed (their events follow the commit)
    dnc: Vec<ContactId>,
    /// the message recorded, if one was
    sent: Option<sms::SmsMessage>,
    /// another pod took the last free DID since the tick counted them
    did_taken: bool,
}

impl Dialer {
    /// The URL the carrier posts delivery receipts of prospect `contact`'s message to.
    pub fn sms_callback_url(&self, contact: ContactId) -> String {
        format!(
            "{}/carrier/sms/status?contact={contact}",
            self.svc.config.api.public_url.trim_end_matches('/')
        )
    }

    fn sms_filter<'a>(&self, c: &'a Campaign) -> SmsDidFilter<'a> {
        SmsDidFilter {
            org: c.org_id,
            caller_ids: &c.caller_ids,
            rule: self.svc.config.caller_id_rule(),
            gap_ms: self.svc.config.dialer.sms_gap_ms,
        }
    }

    pub(crate) async fn sms_tick(
        &self,
        campaign_id: CampaignId,
        ctx: &JobContext,
    ) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let now_ms = now.timestamp_millis();
        // An unknown campaign is a NotFound: dead-lettered at once.
        let campaign = self.svc.store.campaign(campaign_id, None).await?;
        if campaign.status != CampaignStatus::Dialing || campaign.channel != Channel::Sms {
            return Ok(Done::nothing()); // paused, cancelled or completed: the ticks stop here
        }
        let filter = self.sms_filter(&campaign);
        // What the tick decides on, read without a transaction: the claims below re-check it
        // atomically (a DID's gap, a prospect's status), and most ticks claim nothing.
        let pool = sms::sms_did_pool(&mut *self.svc.store.acquire().await?, &filter, now).await?;
        let keys = self.svc.store.campaign_timezones(campaign_id).await?;
        let open: Vec<String> = keys
            .iter()
            .filter(|k| campaign.window.is_open_for_key(k, now))
            .cloned()
            .collect();
        let cfg = &self.svc.config.dialer;
        let plan = plan_drip(&DripFacts {
            usable_dids: u32::try_from(pool.usable).map_err(JobError::abort)?,
            next_free_at_ms: pool.next_free_at.map(|t| t.timestamp_millis()),
            any_zone_open: !open.is_empty(),
            planned_ms: ctx.scheduled_ms,
            now_ms,
            gap_ms: cfg.sms_gap_ms,
            max_lag_ms: cfg.max_tick_lag_ms,
        });
        let tick = |at: i64| DialerJob::SmsTick { campaign_id }.at(at);
        let next = match plan {
            DripPlan::Pause => {
                self.pause_for_no_dids(&campaign).await?;
                return Ok(Done::nothing());
            }
            DripPlan::Closed { next_ms } => {
                let Some(wake_ms) = self.idle_wake(&campaign, &keys, next_ms, now).await? else {
                    return Ok(Done::nothing());
                };
                return Ok(Done::then(vec![tick(wake_ms)]));
            }
            DripPlan::Busy { at_ms } => {
                return Ok(Done::then(vec![tick(at_ms)]));
            }
            DripPlan::Text { next_ms } => next_ms,
        };

        let mut tx = self.svc.store.begin().await?;
        let texted = self
            .claim_and_record(&mut tx, &campaign, &filter, &open, now)
            .await?;
        outdial_store::commit(tx).await?;
        let Texted {
            dnc,
            sent,
            did_taken,
        } = texted;
        // Another pod took the last free DID since the count: try again a poll later.
        let mut jobs = vec![tick(if did_taken {
            next.max(now_ms + self.svc.config.dialer.poll_interval_ms)
        } else {
            next
        })];
        for id in &dnc {
            metrics::counter!("outdial_dialer_skipped_total", "reason" => "dnc").increment(1);
            let event = Event::new(names::PROSPECT_DNC, campaign.org_id, now)
                .campaign(campaign_id)
                .contact(*id);
            self.svc.events.publish(&event).await;
        }
        if let Some(m) = &sent {
            metrics::counter!("outdial_dialer_sms_recorded_total").increment(1);
            let timeout =
                m.created_at.timestamp_millis() + self.svc.config.dialer.sms_delivery_timeout_ms;
            jobs.push(
                DialerJob::SmsSend {
                    contact_id: m.contact_id,
                }
                .at(now_ms),
            );
            jobs.push(
                DialerJob::SmsTimeout {
                    contact_id: m.contact_id,
                }
                .at(timeout),
            );
        } else if !did_taken && self.complete_if_done(campaign_id).await? {
            // Nothing queued, nothing in flight: the campaign is done.
            return Ok(Done::nothing());
        }
        if !dnc.is_empty() {
            effects::request_stats(&self.svc, campaign_id).await;
        }
        Ok(Done::then(jobs))
    }

    /// An SMS tick's claims, in its transaction `tx`: due prospects of `campaign` in the
    /// `open` zone keys are claimed one by one — a suppressed one is cancelled (`dnc`) and
    /// the next is claimed, up to [`DNC_SKIPS_PER_TICK`]; one without a number ends
    /// `failed` (`no_numbers_left`) before any DID is claimed for it — until one gets a free
    /// DID of `filter` and its message is recorded (product §6).
    ///
    /// Errors: Postgres failures (the caller's transaction rolls back).
    async fn claim_and_record(
        &self,
        tx: &mut PgConnection,
        campaign: &Campaign,
        filter: &SmsDidFilter<'_>,
        open: &[String],
        now: DateTime<Utc>,
    ) -> Result<Texted, JobError> {
        let mut out = Texted::default();
        for _ in 0..DNC_SKIPS_PER_TICK {
            let Some(claimed) = sms::claim_sms_prospect(tx, campaign.id, open, now).await? else {
                break;
            };
            let contact = claimed.contact;
            if claimed.suppressed {
                let (from, to) = (ContactStatus::Sending, ContactStatus::Cancelled);
                dialing::end_contact(tx, &contact, from, to, EndReason::Dnc, now).await?;
                out.dnc.push(contact.id);
                continue;
            }
            let Some(to) = contact.phone_numbers.first().cloned() else {
                let (from, to) = (ContactStatus::Sending, ContactStatus::Failed);
                dialing::end_contact(tx, &contact, from, to, EndReason::NoNumbersLeft, now).await?;
                continue;
            };
            let Some(did) = sms::claim_sms_did(tx, filter, now).await? else {
                sms::unclaim_sms_prospect(tx, contact.id).await?;
                out.did_taken = true;
                break;
            };
            let new = NewSms {
                contact_id: contact.id,
                org_id: contact.org_id,
                campaign_id: campaign.id,
                did_id: did.id,
                from_number: did.e164.clone(),
                to_number: to,
                body: campaign.message_body.clone().unwrap_or_default(),
            };
            out.sent = Some(sms::insert_sms(tx, &new, now).await?);
            break;
        }
        Ok(out)
    }

    /// Hands the recorded message of `contact` to the carrier, at most once: `pending →
    /// submitting` first, so a job that runs again never sends twice. A refused message
    /// ends `failed` (`campaign.sms.failed`); a transient failure goes back to `pending` and
    /// the job retries with backoff.
    pub(crate) async fn sms_send(&self, contact: ContactId) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let Some(m) = self.svc.store.begin_sms_submit(contact, now).await? else {
            return Ok(Done::nothing());
        };
        let req = SendSmsRequest {
            to: m.to_number.to_string(),
            from: m.from_number.to_string(),
            body: m.body.clone(),
            status_callback: self.sms_callback_url(contact),
        };
        match self.sms.send_sms(&req).await {
            Ok(resp) => {
                let status = SmsStatus::from_carrier(&resp.status).unwrap_or(SmsStatus::Queued);
                let u = SmsUpdate {
                    sid: Some(&resp.message_sid),
                    ..SmsUpdate::status(status)
                };
                self.sms_advance(contact, &u).await?;
                Ok(Done::nothing())
            }
            Err(e @ CarrierError::Transient { .. }) => {
                self.svc.store.retry_sms_submit(contact).await?;
                Err(JobError::retry(e))
            }
            Err(e) => {
                tracing::warn!(contact = %contact, error = %e, "text refused by the carrier");
                let code = match &e {
                    CarrierError::InvalidNumber { code, .. } => i32::try_from(*code).ok(),
                    CarrierError::Rejected { code, .. } => code.and_then(|c| i32::try_from(c).ok()),
                    CarrierError::Transient { .. } => None,
                };
                let disposition = matches!(e, CarrierError::InvalidNumber { .. })
                    .then_some(Disposition::InvalidNumber);
                let error = e.to_string();
                let u = SmsUpdate {
                    error_code: code,
                    error: Some(&error),
                    disposition,
                    ..SmsUpdate::status(SmsStatus::Failed)
                };
                self.sms_advance(contact, &u).await?;
                Ok(Done::nothing())
            }
        }
    }

    /// A verified delivery receipt (`MessageStatus`) for `contact`'s message.
    pub(crate) async fn sms_status(
        &self,
        contact: ContactId,
        sid: &str,
        status: &str,
        error_code: Option<u32>,
    ) -> Result<Done<DialerJob>, JobError> {
        let Some(status) = SmsStatus::from_carrier(status) else {
            return Ok(Done::nothing()); // a status outdial does not track
        };
        let code = error_code.and_then(|c| i32::try_from(c).ok());
        let u = SmsUpdate {
            sid: Some(sid),
            error_code: code,
            ..SmsUpdate::status(status)
        };
        self.sms_advance(contact, &u).await?;
        Ok(Done::nothing())
    }

    /// The delivery timeout of `contact`'s message: still not final → `failed`/`timeout`.
    pub(crate) async fn sms_timeout(
        &self,
        contact: ContactId,
    ) -> Result<Done<DialerJob>, JobError> {
        let u = SmsUpdate {
            error: Some("no delivery receipt within the delivery timeout"),
            disposition: Some(Disposition::Timeout),
            ..SmsUpdate::status(SmsStatus::Failed)
        };
        self.sms_advance(contact, &u).await?;
        Ok(Done::nothing())
    }

    /// Moves the message forward (a no-op for a duplicate or late status), then publishes
    /// its event, requests stats and completes the campaign when this was its last open
    /// prospect.
    async fn sms_advance(&self, contact: ContactId, u: &SmsUpdate<'_>) -> Result<(), JobError> {
        let now = self.clock().now();
        let status = u.status;
        // A prospect without a message is a NotFound: dead-lettered at once.
        let Some(m) = self.svc.store.advance_sms(contact, u, now).await? else {
            return Ok(()); // a duplicate or late status
        };
        let event_name = match status {
            SmsStatus::Sent => Some(names::SMS_SENT),
            SmsStatus::Delivered => Some(names::SMS_DELIVERED),
            // Never accepted by the carrier (no MessageSid: refused when handed over, or
            // never handed over) vs. reported failed by the network afterwards.
            SmsStatus::Failed if m.provider_sid.is_none() => Some(names::SMS_FAILED),
            SmsStatus::Failed | SmsStatus::Undelivered => Some(names::SMS_DELIVERY_FAILED),
            _ => None,
        };
        if let Some(name) = event_name {
            metrics::counter!("outdial_dialer_sms_total", "status" => status.as_str()).increment(1);
            let event = Event::new(name, m.org_id, now)
                .campaign(m.campaign_id)
                .contact(m.contact_id)
                .did(m.did_id)
                .data(serde_json::json!({
                    "to": m.to_number, "from": m.from_number, "status": m.status,
                    "message_sid": m.provider_sid, "error_code": m.error_code, "error": m.error,
                }));
            self.svc.events.publish(&event).await;
        }
        if status.is_final() {
            effects::request_stats(&self.svc, m.campaign_id).await;
            self.complete_if_done(m.campaign_id).await?;
        }
        Ok(())
    }
}
