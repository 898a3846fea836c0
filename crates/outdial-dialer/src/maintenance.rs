//! Maintenance (product §3 "Postgres is the source of truth", §4 channel leases, §7 lifecycle).
//!
//! `Maintenance` (singleton, every `maintenance_interval_ms`):
//! - renews the channel lease of every contact that is `locked` or `dialing` (their calls
//!   live), re-taking holders Redis lost;
//! - reconciles Redis with Postgres: every dialing campaign has its tick, every open attempt
//!   its timeout job (and a `pending` one its originate job), every open text message its
//!   send and delivery-timeout jobs, every completed attempt its health job, and the
//!   singleton jobs exist. All enqueues are deduplicated by id, so this
//!   is a no-op when nothing was lost.
//!
//! `DidLifecycle` (singleton, every 60 s): cooling → warming once the cooldown ends,
//! warming → active once warming ends (product §7).

use std::collections::BTreeMap;

use chrono::Duration;
use outdial_domain::campaign::{CampaignStatus, Channel};
use outdial_domain::contact::AttemptStatus;
use outdial_domain::did::lifecycle_step;
use outdial_domain::pacing::{phase_us, tick_interval_us, us_to_due_ms};
use outdial_fleet::events::{Event, names};
use outdial_fleet::jobs::DialerJob;
use outdial_queue::NewJob;
use outdial_worker::{Done, JobContext, JobError};

use crate::Dialer;

/// Open attempts looked at per maintenance run.
const RECONCILE_LIMIT: i64 = 10_000;

impl Dialer {
    pub(crate) async fn maintenance(&self, ctx: &JobContext) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let now_ms = now.timestamp_millis();
        let cfg = &self.svc.config.dialer;

        self.restore_channel_holders(now_ms).await?;
        for status in self.svc.channels.status_all(now_ms).await? {
            metrics::gauge!("outdial_channels_in_use", "pool" => status.pool.clone())
                .set(status.count as f64);
            metrics::gauge!("outdial_channels_max", "pool" => status.pool)
                .set(f64::from(status.max));
        }

        // Reconcile queues with Postgres.
        let control: Vec<NewJob<DialerJob>> = vec![
            DialerJob::Dispatch.at(now_ms),
            DialerJob::DidLifecycle.at(now_ms),
        ];
        self.svc.dispatch_queue.enqueue(&control, now_ms).await?;
        // A missing voice tick is restored within one tick interval, at its campaign's phase:
        // restored all at `now`, every campaign would tick in lockstep afterwards.
        let mut jobs: Vec<NewJob<DialerJob>> = Vec::new();
        for c in self
            .svc
            .store
            .campaigns_in_status(CampaignStatus::Dialing)
            .await?
        {
            jobs.push(match c.channel {
                Channel::Voice => {
                    let planned =
                        now_ms * 1_000 + phase_us(c.id.0, tick_interval_us(c.calls_per_second));
                    DialerJob::VoiceTick {
                        campaign_id: c.id,
                        planned_us: Some(planned),
                    }
                    .at(us_to_due_ms(planned))
                }
                Channel::Sms => DialerJob::SmsTick { campaign_id: c.id }.at(now_ms),
            });
        }
        let grace = Duration::milliseconds(cfg.maintenance_interval_ms);
        for (attempt, status, created) in self.svc.store.open_attempts(RECONCILE_LIMIT).await? {
            jobs.push(
                DialerJob::CallTimeout {
                    attempt_id: attempt,
                }
                .at(created.timestamp_millis() + cfg.completion_timeout_ms),
            );
            if status == AttemptStatus::Pending && created < now - grace {
                jobs.push(
                    DialerJob::Originate {
                        attempt_id: attempt,
                    }
                    .at(now_ms),
                );
            }
        }
        for (contact, created, pending) in self
            .svc
            .store
            .stalled_sms(now - grace, RECONCILE_LIMIT)
            .await?
        {
            if pending {
                jobs.push(
                    DialerJob::SmsSend {
                        contact_id: contact,
                    }
                    .at(now_ms),
                );
            }
            jobs.push(
                DialerJob::SmsTimeout {
                    contact_id: contact,
                }
                .at(created.timestamp_millis() + cfg.sms_delivery_timeout_ms),
            );
        }
        self.svc.dialer_queue.enqueue(&jobs, now_ms).await?;
        let next = ctx.scheduled_ms.max(now_ms - cfg.maintenance_interval_ms)
            + cfg.maintenance_interval_ms;
        Ok(Done::then(vec![DialerJob::Maintenance.at(next)]))
    }

    /// Renews the channel lease of every `locked` or `dialing` contact (their calls live),
    /// re-taking holders Redis lost (product §4 "Channels").
    ///
    /// Errors: Postgres or Redis failures.
    pub(crate) async fn restore_channel_holders(&self, now_ms: i64) -> Result<(), JobError> {
        let mut by_pool: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (pool, holder) in self.svc.store.live_channel_holders().await? {
            by_pool.entry(pool).or_default().push(holder);
        }
        for (pool, holders) in &by_pool {
            for chunk in holders.chunks(1_000) {
                self.svc.channels.acquire(pool, chunk, now_ms).await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn did_lifecycle(
        &self,
        ctx: &JobContext,
    ) -> Result<Done<DialerJob>, JobError> {
        let now = self.clock().now();
        let lifecycle = self.svc.config.health.lifecycle();
        for did in self.svc.store.dids_due_lifecycle(now).await? {
            let Some(t) = lifecycle_step(
                did.state,
                did.cooldown_until,
                did.warming_until,
                now,
                &lifecycle,
            ) else {
                continue;
            };
            if self
                .svc
                .store
                .apply_did_transition(did.id, did.state, &t, now)
                .await?
            {
                tracing::info!(did = %did.id, from = %did.state, to = %t.to, "DID lifecycle step");
                let event = Event::new(names::DID_RECOVERED, did.org_id, now)
                    .did(did.id)
                    .data(serde_json::json!({ "e164": did.e164, "from": did.state, "to": t.to, "warming_until": t.warming_until }));
                self.svc.events.publish(&event).await;
            }
        }
        let mut per_state: BTreeMap<&'static str, f64> = outdial_domain::did::DidState::ALL
            .iter()
            .map(|s| (s.as_str(), 0.0))
            .collect();
        for did in self.svc.store.dids(None).await? {
            *per_state.entry(did.state.as_str()).or_default() += 1.0;
        }
        for (state, n) in per_state {
            metrics::gauge!("outdial_dids", "state" => state).set(n);
        }
        let every = self.svc.config.dialer.did_lifecycle_interval_ms;
        let next = ctx.scheduled_ms.max(now.timestamp_millis() - every) + every;
        Ok(Done::then(vec![DialerJob::DidLifecycle.at(next)]))
    }
}
