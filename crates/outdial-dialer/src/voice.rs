//! Voice pacing and the start of one attempt (SPEC §5 "Campaign pacing", "One attempt").
//!
//! A dialing voice campaign has exactly one tick job (id `tick:<campaign>`). Each tick starts
//! one contact that a dispatch cycle admitted (`locked`), then hands over to the next tick
//! planned `1000 / cps` ms after this one's *planned* time — so the campaign starts exactly
//! `calls_per_second` calls a second whatever the processing time. With nothing admitted,
//! the tick sleeps (until the next window opening, or at most ten poll intervals); the
//! dispatch cycle wakes it as soon as it admits a contact for it.
//!
//! Starting an attempt runs SPEC §5's steps in order: DNC → calling window in the contact's
//! zone → channel → phone number by attempt index → caller ID → the `call_attempts` row,
//! committed before the carrier is called. The checks read without locks; every write is a
//! compare-and-set on the contact still being admitted (`locked`), and the attempt row is
//! recorded by the same statement that moves the contact to `dialing` — so a sweep, pause
//! or cancel that changes the contact meanwhile wins, and no contact is started twice.

use chrono::{DateTime, Duration, Utc};
use outdial_control::{effects, transition};
use outdial_domain::campaign::{CampaignCommand, CampaignStatus, Channel};
use outdial_domain::contact::{PhoneChoice, channel_holder, select_phone};
use outdial_domain::did::select_did;
use outdial_domain::pacing::{next_tick_us, resume_on_grid_us, tick_interval_us, us_to_due_ms};
use outdial_domain::phone::{area_code, parse_timezone_key};
use outdial_domain::{CampaignId, ContactId};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::DialerJob;
use outdial_queue::NewJob;
use outdial_store::StoreError;
use outdial_store::campaigns::Campaign;
use outdial_store::dialing::{self, CallAttempt, Claimed, NewAttempt};
use outdial_store::dids::{Did, usable_dids};
use outdial_worker::{Done, JobContext, JobError};
use sqlx::PgConnection;

use crate::Dialer;

/// Why a claimed contact was not called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// On the suppression list → cancelled.
    Dnc,
    /// Outside its calling window → back to queued until the next opening.
    Window,
    /// Channel pool full → back to queued for the backpressure delay.
    ChannelFull,
    /// No number left for its attempt index → exhausted.
    Exhausted,
    /// No usable caller ID → back to queued; the campaign pauses.
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

/// What starting an attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// The attempt is recorded; originate it.
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
        let campaign = match cached {
            Some(c) => c,
            None => match outdial_store::campaigns::campaign_in(&mut conn, campaign_id).await {
                Ok(c) => std::sync::Arc::new(c),
                Err(StoreError::NotFound { .. }) => {
                    return Err(JobError::abort(format!(
                        "campaign {campaign_id} does not exist"
                    )));
                }
                Err(e) => return Err(e.into()),
            },
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

    /// A tick that found nothing admitted: complete the campaign if nothing is left, else
    /// sleep until the next window opening (when every zone is closed) or ten poll
    /// intervals. The dispatch cycle wakes the tick earlier when it admits a contact; the
    /// tick then starts no earlier than `next_planned_us`, the grid time after this one.
    async fn idle_tick(
        &self,
        campaign: &Campaign,
        next_planned_us: i64,
        now: DateTime<Utc>,
    ) -> Result<Done<DialerJob>, JobError> {
        if self.complete_if_done(campaign.id).await? {
            return Ok(Done::nothing());
        }
        let zones = self.svc.store.campaign_timezones(campaign.id).await?;
        let wake = self.reopening(campaign, &zones, now).unwrap_or_else(|| {
            now + Duration::milliseconds(self.svc.config.dialer.poll_interval_ms * 10)
        });
        Ok(Done::then(vec![
            DialerJob::VoiceTick {
                campaign_id: campaign.id,
                planned_us: Some(next_planned_us),
            }
            .at(wake.timestamp_millis().max(us_to_due_ms(next_planned_us))),
        ]))
    }

    /// When `campaign`'s window next opens, plus [`Self::jitter`], if it is closed now in
    /// every one of its zone keys `keys` (`"America/Chicago"`, or zones joined by `&`);
    /// `None` when a zone is open now, a key does not parse, a zone never opens, or there
    /// are no keys (SPEC §5.2: sleep until the earliest opening instead of spinning).
    pub(crate) fn reopening(
        &self,
        campaign: &Campaign,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let openings: Vec<Option<DateTime<Utc>>> = keys
            .iter()
            .map(|k| {
                parse_timezone_key(k)
                    .ok()
                    .and_then(|tzs| campaign.window.next_opening_in_all(&tzs, now))
            })
            .collect();
        if openings.is_empty() || !openings.iter().all(|o| o.is_some_and(|t| t > now)) {
            return None;
        }
        openings
            .into_iter()
            .flatten()
            .min()
            .map(|t| t + self.jitter())
    }

    /// Random delay in `[0, window_jitter_ms]` added to window openings so they are spread
    /// out instead of bursting (the seed's "re-queue storm").
    pub(crate) fn jitter(&self) -> Duration {
        let max = self.svc.config.dialer.window_jitter_ms.max(0);
        Duration::milliseconds(if max == 0 {
            0
        } else {
            rand::random_range(0..=max)
        })
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
            DialerJob::Originate {
                attempt_id: a.attempt_id(),
            }
            .at(self.clock().now_ms()),
            DialerJob::CallTimeout {
                attempt_id: a.attempt_id(),
            }
            .at(timeout_at),
        ]
    }

    /// Starts one attempt for admitted (`locked`) contact `claimed` by SPEC §5's steps (module
    /// docs). Each outcome is one compare-and-set statement on `conn`; when the contact is no
    /// longer admitted by then, nothing is written and the result is
    /// [`Skip::Withdrawn`]. `org_dids`: the usable caller IDs of the contact's organization
    /// when the caller already read them with the contact
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
        let now_ms = now.timestamp_millis();
        let cfg = &self.svc.config.dialer;
        let holder = channel_holder(contact.id, contact.attempt_count);
        let pool = contact.sip_pool.clone();
        let release = vec![(pool.clone(), holder.clone())];

        // 1. DNC / suppression.
        if suppressed {
            if !dialing::end_contact(conn, &contact, "locked", "cancelled", "dnc", now).await? {
                return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
            }
            effects::release_channels(&self.svc, &release, now_ms).await;
            let event = Event::new(names::PROSPECT_DNC, contact.org_id, now)
                .maybe_campaign(contact.campaign_id)
                .contact(contact.id);
            self.svc.events.publish(&event).await;
            return Ok(self.skipped(Skip::Dnc, contact.campaign_id).await);
        }
        // 2. Calling window in the contact's zone (direct calls bypass windows).
        if let Some(c) = campaign {
            let zones = parse_timezone_key(&contact.timezone).unwrap_or_default();
            if !c.window.is_open_in_all(&zones, now) {
                let opening = c
                    .window
                    .next_opening_in_all(&zones, now)
                    .unwrap_or(now + Duration::days(1))
                    + self.jitter();
                if !dialing::requeue_admitted(conn, &contact, opening, now).await? {
                    return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
                }
                effects::release_channels(&self.svc, &release, now_ms).await;
                return Ok(self.skipped(Skip::Window, contact.campaign_id).await);
            }
        }
        // 3. Channel: held since admission under the same holder id. Within half a lease of
        //    the admission it cannot have lapsed; older admissions take it again (full pool →
        //    backpressure).
        let lease_ms = self.svc.channels.config().lease_ms;
        let fresh = contact
            .locked_at
            .is_some_and(|t| (now - t).num_milliseconds() < lease_ms / 2);
        // What to give back if the contact turns out withdrawn: a channel taken here (one
        // held since admission was released by whatever withdrew the contact).
        let retaken: &[(String, String)] = if fresh { &[] } else { &release };
        if !fresh
            && self
                .svc
                .channels
                .acquire(&pool, std::slice::from_ref(&holder), now_ms)
                .await
                .map_err(JobError::retry)?
                == 0
        {
            let skip = if dialing::requeue_admitted(
                conn,
                &contact,
                now + Duration::milliseconds(cfg.backpressure_requeue_ms),
                now,
            )
            .await?
            {
                Skip::ChannelFull
            } else {
                Skip::Withdrawn
            };
            return Ok(self.skipped(skip, contact.campaign_id).await);
        }
        // 4. Phone number by attempt index.
        let per_number = campaign.map_or(2, |c| c.retry.max_attempts_per_phone_number);
        let attempt_index = u32::try_from(contact.attempt_count).unwrap_or(u32::MAX);
        let to = match select_phone(contact.phone_numbers.len(), attempt_index, per_number) {
            PhoneChoice::Dial { index } => contact.phone_numbers[index].clone(),
            PhoneChoice::Exhausted => {
                if !dialing::end_contact(
                    conn,
                    &contact,
                    "locked",
                    "exhausted",
                    "no_numbers_left",
                    now,
                )
                .await?
                {
                    effects::release_channels(&self.svc, retaken, now_ms).await;
                    return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
                }
                effects::release_channels(&self.svc, &release, now_ms).await;
                return Ok(self.skipped(Skip::Exhausted, contact.campaign_id).await);
            }
        };
        // 5. Caller ID.
        let lifecycle = self.svc.config.health.lifecycle();
        let dids = match org_dids {
            Some(d) => d,
            None => usable_dids(conn, contact.org_id).await?,
        };
        let min_calls = self.svc.config.health.min_calls;
        let candidates: Vec<_> = dids
            .iter()
            .map(|d| d.voice_candidate(now, &lifecycle, min_calls))
            .collect();
        let caller_ids: &[String] = campaign.map_or(&[], |c| c.caller_ids.as_slice());
        let Some(did) = select_did(
            &candidates,
            area_code(&to),
            caller_ids,
            cfg.did_score_threshold,
        ) else {
            let retry_at = if campaign.is_some() {
                now
            } else {
                now + Duration::milliseconds(cfg.backpressure_requeue_ms)
            };
            if !dialing::requeue_admitted(conn, &contact, retry_at, now).await? {
                effects::release_channels(&self.svc, retaken, now_ms).await;
                return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
            }
            effects::release_channels(&self.svc, &release, now_ms).await;
            if let Some(c) = campaign {
                self.pause_for_no_dids(c).await?;
            }
            return Ok(self.skipped(Skip::NoDids, contact.campaign_id).await);
        };
        // 6. The contact to dialing and the attempt row in one statement, before the carrier
        //    is called (idempotency key); it also marks the caller ID called.
        let new = NewAttempt {
            contact_id: contact.id,
            attempt_index: contact.attempt_count,
            org_id: contact.org_id,
            did_id: did.id,
            from_number: did.e164.clone(),
            to_number: to,
            channel_pool: pool.clone(),
        };
        let Some(attempt) = dialing::start_admitted(conn, &new, now).await? else {
            effects::release_channels(&self.svc, retaken, now_ms).await;
            return Ok(self.skipped(Skip::Withdrawn, contact.campaign_id).await);
        };
        metrics::counter!("outdial_dialer_attempts_started_total", "pool" => pool).increment(1);
        Ok(Start::Started(Box::new(attempt)))
    }

    async fn skipped(&self, why: Skip, campaign: Option<CampaignId>) -> Start {
        metrics::counter!("outdial_dialer_skipped_total", "reason" => why.label()).increment(1);
        if let Some(c) = campaign {
            effects::request_stats(&self.svc, c).await;
        }
        Start::Skipped(why)
    }

    /// Auto-pause (SPEC §5.5, §6): campaign `c` has no usable caller ID. The pause takes
    /// every path's effects ([`outdial_control::transition::apply`]: its admitted contacts
    /// back to `queued` with their channels released, `campaign.status.changed`, stats),
    /// then `campaign.paused.no_dids` is published. The campaign stays paused until resumed.
    /// Another pod pausing it first is not an error.
    ///
    /// Errors: Postgres failures.
    pub(crate) async fn pause_for_no_dids(&self, c: &Campaign) -> Result<(), JobError> {
        let paused = transition::apply_if_allowed(
            &self.svc,
            c.id,
            CampaignCommand::Pause,
            "dialer",
            Some("no healthy caller ID"),
        )
        .await?;
        if paused.is_some() {
            tracing::warn!(campaign = %c.id, "no usable caller ID: campaign paused");
            let event =
                Event::new(names::PAUSED_NO_DIDS, c.org_id, self.clock().now()).campaign(c.id);
            self.svc.events.publish(&event).await;
        }
        Ok(())
    }
}
