//! Voice pacing and the start of one attempt (product §5 "Campaign pacing", "One attempt").
//!
//! A dialing voice campaign has exactly one tick job (id `tick:<campaign>`). Each tick starts
//! one contact that a dispatch cycle admitted (`locked`), then hands over to the next tick
//! planned `1000 / cps` ms after this one's *planned* time — so the campaign starts exactly
//! `calls_per_second` calls a second whatever the processing time. With nothing admitted,
//! the tick sleeps (until the next window opening, or at most ten poll intervals); the
//! dispatch cycle wakes it as soon as it admits a contact for it.
//!
//! Starting an attempt is decided by [`outdial_domain::start::decide_start`] — DNC → the
//! number its attempt index dials → the calling window in that number's zones → caller ID —
//! from what one read returned, and executed in one place. The checks read without locks;
//! every write is a compare-and-set on the contact still being admitted (`locked`), and the
//! attempt row is recorded by the same statement that moves the contact to `dialing` — so a
//! sweep, pause or cancel that changes the contact meanwhile wins, and no contact is
//! started twice.

use chrono::{DateTime, Duration, Utc};
use outdial_control::effects;
use outdial_domain::campaign::{CampaignStatus, Channel};
use outdial_domain::contact::{ContactStatus, EndReason, channel_holder};
use outdial_domain::pacing::{next_tick_us, resume_on_grid_us, tick_interval_us, us_to_due_ms};
use outdial_domain::start::{CampaignTerms, StartDecision, StartFacts, decide_start};
use outdial_domain::{CampaignId, ContactId};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::DialerJob;
use outdial_queue::NewJob;
use outdial_store::campaigns::Campaign;
use outdial_store::contacts::Contact;
use outdial_store::dialing::{self, CallAttempt, Claimed, NewAttempt};
use outdial_store::dids::{Did, usable_dids};
use outdial_worker::{Done, JobContext, JobError};
use sqlx::PgConnection;

use crate::Dialer;

/// Why an admitted contact was not called (product §5 "One attempt"); the `reason` label of
/// `outdial_dialer_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// On the suppression list → cancelled, reason `dnc` (product §5.1).
    Dnc,
    /// The number to dial is outside its calling window → back to queued, due at its next
    /// opening plus jitter (product §5.2).
    Window,
    /// Channel pool full → back to queued for `dialer.backpressure_requeue_ms` (product §5.3).
    ChannelFull,
    /// No number left for its attempt index → exhausted, reason `no_numbers_left`
    /// (product §5.4).
    Exhausted,
    /// No usable caller ID → back to queued; a campaign auto-pauses (product §5.5).
    NoDids,
    /// The contact stopped being admitted while it was checked (swept back to queued,
    /// paused, cancelled): nothing is written.
    Withdrawn,
}

impl Skip {
    fn label(self) -> &'static str {
        match self {
            Self::Dnc => "dnc",
            Self::Window => "window",
            Self::ChannelFull => "channel_full",
            Self::Exhausted => "exhausted",
            Self::NoDids => "no_dids",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// What starting an attempt did ([`Dialer::start_attempt`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The attempt is recorded (product §5.6); its originate and completion-timeout jobs
    /// follow.
    Started(Box<CallAttempt>),
    /// The contact was not called.
    Skipped(Skip),
}

impl Dialer {
    pub(crate) async fn voice_tick(
        &self,
        campaign_id: CampaignId,
        planned_us: Option<i64>,
        ctx: &JobContext,
    ) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let now_us = now.timestamp_millis() * 1_000;
        // Woken by the dispatch cycle before its planned time: wait for it, reading nothing
        // (the pace does not allow a start yet; see below).
        if let Some(p) = planned_us
            && us_to_due_ms(p) != ctx.scheduled_ms
            && p > now_us
        {
            let tick = DialerJob::VoiceTick {
                campaign_id,
                planned_us: Some(p),
            };
            return Ok(Done::then(vec![tick.at(us_to_due_ms(p))]));
        }
        // One connection for the whole tick. Its first statement reads the next admitted
        // contact with the campaign's row version and the caller IDs; the campaign's
        // settings come from the cache while that version is current. With nothing
        // admitted (or the campaign not dialing) the campaign is read as it is now.
        let mut conn = self.svc.store.acquire().await?;
        let next = dialing::next_admitted(&mut conn, campaign_id).await?;
        let cached = match &next {
            Some(n) => {
                self.planner
                    .campaign_at_version(&mut conn, campaign_id, n.campaign_version)
                    .await?
            }
            None => None,
        };
        // An unknown campaign is a NotFound: dead-lettered at once.
        let campaign = match cached {
            Some(c) => c,
            None => std::sync::Arc::new(
                outdial_store::campaigns::campaign_in(&mut conn, campaign_id).await?,
            ),
        };
        if campaign.status != CampaignStatus::Dialing || campaign.channel != Channel::Voice {
            return Ok(Done::nothing()); // paused, cancelled or completed: the ticks stop here
        }
        let interval = tick_interval_us(campaign.calls_per_second);
        // The payload carries the planned time exact to the µs (the due time rounds it up
        // to the ms). The dispatch cycle may wake a tick early when it admits contacts: if
        // the pace does not allow a start yet, the tick waited for its planned time (above); a
        // tick woken after it (it slept with nothing admitted) resumes on its own grid, so
        // campaigns woken together keep their phases instead of starting in lockstep.
        let planned = match planned_us {
            Some(p) if us_to_due_ms(p) == ctx.scheduled_ms => p,
            Some(p) => resume_on_grid_us(p, interval, now_us),
            None => ctx.scheduled_ms * 1_000,
        };
        let lag = self.svc.config.dialer.max_tick_lag_ms * 1_000;
        let next_us = next_tick_us(planned, interval, now_us, lag);
        let Some(next) = next else {
            drop(conn);
            return self.idle_tick(&campaign, next_us, now).await;
        };
        let start = self
            .start_attempt(
                &mut conn,
                next.claimed,
                Some(&campaign),
                Some(next.org_dids),
                now,
            )
            .await?;
        let mut jobs = vec![
            DialerJob::VoiceTick {
                campaign_id,
                planned_us: Some(next_us),
            }
            .at(us_to_due_ms(next_us)),
        ];
        if let Start::Started(attempt) = &start {
            jobs.extend(self.attempt_jobs(attempt));
        }
        Ok(Done::then(jobs))
    }

    /// A tick that found nothing admitted: the campaign completes if nothing is left, else
    /// the tick sleeps ([`Self::idle_wake`]); the dispatch cycle wakes it earlier when it
    /// admits a contact, and it then starts no earlier than `next_planned_us`, the grid time
    /// after this one.
    async fn idle_tick(
        &self,
        campaign: &Campaign,
        next_planned_us: i64,
        now: DateTime<Utc>,
    ) -> Result<Done<DialerJob>, JobError> {
        let zones = self.svc.store.campaign_timezones(campaign.id).await?;
        let Some(wake_ms) = self
            .idle_wake(campaign, &zones, us_to_due_ms(next_planned_us), now)
            .await?
        else {
            return Ok(Done::nothing());
        };
        let tick = DialerJob::VoiceTick {
            campaign_id: campaign.id,
            planned_us: Some(next_planned_us),
        };
        Ok(Done::then(vec![tick.at(wake_ms)]))
    }

    pub(crate) async fn start_direct(
        &self,
        contact_id: ContactId,
    ) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let mut conn = self.svc.store.acquire().await?;
        let Some(contact) = dialing::admitted_contact(&mut conn, contact_id).await? else {
            return Ok(Done::nothing()); // already started, or no longer admitted
        };
        match self
            .start_attempt(&mut conn, contact, None, None, now)
            .await?
        {
            Start::Started(attempt) => Ok(Done::then(self.attempt_jobs(&attempt))),
            Start::Skipped(_) => Ok(Done::nothing()),
        }
    }

    /// The jobs that follow a recorded attempt: originate now, and the durable completion
    /// timeout.
    pub(crate) fn attempt_jobs(&self, a: &CallAttempt) -> Vec<NewJob<DialerJob>> {
        let timeout_at =
            a.created_at.timestamp_millis() + self.svc.config.dialer.completion_timeout_ms;
        vec![
            DialerJob::Originate { attempt_id: a.id }.at(self.clock().now_ms()),
            DialerJob::CallTimeout { attempt_id: a.id }.at(timeout_at),
        ]
    }

    /// Starts one attempt for admitted (`locked`) contact `claimed`: decides with
    /// [`decide_start`] (DNC → number → window → caller ID) from what was read, then executes
    /// the decision here, in one place — each outcome one compare-and-set statement on
    /// `conn`. When the contact is no longer admitted by then (swept back to queued, paused,
    /// cancelled), nothing is written and the result is [`Skip::Withdrawn`]; whatever
    /// withdrew it released the channel it held since admission, so only a channel this
    /// start took itself is given back then. `org_dids`: the organization's caller IDs in a
    /// usable state when the caller read them with the contact
    /// ([`outdial_store::dialing::NextAdmitted::org_dids`]); `None` reads them here.
    ///
    /// Errors: Postgres or Redis failures (nothing was written, or one whole statement was:
    /// the job retries and finds the contact still admitted, or no longer).
    pub async fn start_attempt(
        &self,
        conn: &mut PgConnection,
        claimed: Claimed,
        campaign: Option<&Campaign>,
        org_dids: Option<Vec<Did>>,
        now: DateTime<Utc>,
    ) -> Result<Start, JobError> {
        let Claimed {
            contact,
            suppressed,
        } = claimed;
        let cfg = &self.svc.config.dialer;
        let rule = self.svc.config.caller_id_rule();
        let dids = match org_dids {
            Some(d) => d,
            None => usable_dids(conn, contact.org_id).await?,
        };
        let candidates: Vec<_> = dids.iter().map(|d| d.candidate(now, &rule)).collect();
        let facts = StartFacts {
            suppressed,
            phone_numbers: &contact.phone_numbers,
            phone_timezones: &contact.phone_timezones,
            attempt_index: u32::try_from(contact.attempt_count).map_err(JobError::abort)?,
            campaign: campaign.map(|c| CampaignTerms {
                window: &c.window,
                max_attempts_per_phone_number: c.retry.max_attempts_per_phone_number,
                caller_ids: &c.caller_ids,
            }),
            dids: &candidates,
            threshold: rule.threshold,
            now,
            jitter: self.jitter(),
            backpressure: Duration::milliseconds(cfg.backpressure_requeue_ms),
        };
        let decision = decide_start(&facts);
        self.execute_start(conn, &contact, campaign, decision, now)
            .await
    }

    /// Carries out `decision` for admitted `contact` (see [`Self::start_attempt`]): the
    /// write, then the effects every ending shares — the held channel released when the
    /// contact leaves `locked` without a call, the skip counted, stats requested.
    async fn execute_start(
        &self,
        conn: &mut PgConnection,
        contact: &Contact,
        campaign: Option<&Campaign>,
        decision: StartDecision,
        now: DateTime<Utc>,
    ) -> Result<Start, JobError> {
        let now_ms = now.timestamp_millis();
        // The channel held since admission, under the attempt's holder id.
        let held: effects::Hold = (
            contact.sip_pool.clone(),
            channel_holder(contact.id, contact.attempt_count),
        );
        // Each arm: whether the write found the contact still admitted, and the skip.
        let (written, skip) = match decision {
            StartDecision::Suppressed => {
                let ended = dialing::end_contact(
                    conn,
                    contact,
                    ContactStatus::Locked,
                    ContactStatus::Cancelled,
                    EndReason::Dnc,
                    now,
                )
                .await?;
                if ended {
                    let event = Event::new(names::PROSPECT_DNC, contact.org_id, now)
                        .maybe_campaign(contact.campaign_id)
                        .contact(contact.id);
                    self.svc.events.publish(&event).await;
                }
                (ended, Skip::Dnc)
            }
            StartDecision::Exhausted => {
                let ended = dialing::end_contact(
                    conn,
                    contact,
                    ContactStatus::Locked,
                    ContactStatus::Exhausted,
                    EndReason::NoNumbersLeft,
                    now,
                )
                .await?;
                (ended, Skip::Exhausted)
            }
            StartDecision::WindowClosed { retry_at } => {
                let requeued = dialing::requeue_admitted(conn, contact, retry_at, now).await?;
                (requeued, Skip::Window)
            }
            StartDecision::NoCallerId { retry_at } => {
                let requeued = dialing::requeue_admitted(conn, contact, retry_at, now).await?;
                if requeued && let Some(c) = campaign {
                    // The pause gives back the campaign's other admitted contacts; this one
                    // is queued already, its channel released below.
                    self.pause_for_no_dids(c).await?;
                }
                (requeued, Skip::NoDids)
            }
            StartDecision::Dial { to, did, from, .. } => {
                let new = NewAttempt {
                    contact_id: contact.id,
                    attempt_index: contact.attempt_count,
                    org_id: contact.org_id,
                    did_id: did,
                    from_number: from,
                    to_number: to,
                    channel_pool: contact.sip_pool.clone(),
                };
                return self.dial(conn, contact, &new, &held, now).await;
            }
        };
        if written {
            effects::release_channels(&self.svc, std::slice::from_ref(&held), now_ms).await;
            Ok(self.skipped(skip, contact.campaign_id).await)
        } else {
            Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await)
        }
    }

    /// The [`StartDecision::Dial`] ending: makes sure the contact holds its SIP channel
    /// `held` (product §5.3: held since admission; within half a lease of the admission it
    /// cannot have lapsed, an older admission takes it again — a full pool is backpressure),
    /// then moves the contact to `dialing` and records attempt `new` in one statement, before
    /// the carrier is called (the idempotency key); that statement also marks the caller ID
    /// called.
    async fn dial(
        &self,
        conn: &mut PgConnection,
        contact: &Contact,
        new: &NewAttempt,
        held: &effects::Hold,
        now: DateTime<Utc>,
    ) -> Result<Start, JobError> {
        let now_ms = now.timestamp_millis();
        let lease_ms = self.svc.channels.config().lease_ms;
        let fresh = contact
            .locked_at
            .is_some_and(|t| (now - t).num_milliseconds() < lease_ms / 2);
        // What to give back if the contact turns out withdrawn: only a channel taken here.
        let retaken: &[effects::Hold] = if fresh {
            &[]
        } else {
            std::slice::from_ref(held)
        };
        if !fresh
            && self
                .svc
                .channels
                .acquire(&held.0, std::slice::from_ref(&held.1), now_ms)
                .await?
                == 0
        {
            let retry_at =
                now + Duration::milliseconds(self.svc.config.dialer.backpressure_requeue_ms);
            let skip = if dialing::requeue_admitted(conn, contact, retry_at, now).await? {
                Skip::ChannelFull
            } else {
                Skip::Withdrawn
            };
            return Ok(self.skipped(skip, contact.campaign_id).await);
        }
        let Some(attempt) = dialing::start_admitted(conn, new, now).await? else {
            effects::release_channels(&self.svc, retaken, now_ms).await;
            return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
        };
        metrics::counter!("outdial_dialer_attempts_started_total", "pool" => contact.sip_pool.clone())
            .increment(1);
        Ok(Start::Started(Box::new(attempt)))
    }

    /// Counts skip `why` and, when the contact changed (not [`Skip::Withdrawn`]), asks for
    /// its campaign's stats.
    async fn skipped(&self, why: Skip, campaign: Option<CampaignId>) -> Start {
        metrics::counter!("outdial_dialer_skipped_total", "reason" => why.label()).increment(1);
        if let Some(c) = campaign
            && why != Skip::Withdrawn
        {
            effects::request_stats(&self.svc, c).await;
        }
        Start::Skipped(why)
    }
}
