//! What the voice ticks, the SMS ticks and completion share about a campaign (one home per
//! effect): its auto-pause for lack of caller IDs, its completion, and an idle tick's
//! wake-up at the next window opening.

use chrono::{DateTime, Duration, Utc};
use outdial_control::transition;
use outdial_domain::CampaignId;
use outdial_domain::campaign::CampaignCommand;
use outdial_fleet::events::{Event, names};
use outdial_store::campaigns::Campaign;
use outdial_worker::JobError;

use crate::Dialer;

impl Dialer {
    /// Auto-pause (product §5.5, §6): campaign `c` has no usable caller ID. The pause takes
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

    /// Completes campaign `id` (product §8: voice when no contact is queued, locked or dialing;
    /// SMS when every prospect is delivered, failed or cancelled) if it has no open contact
    /// left. Returns whether nothing was left.
    ///
    /// Errors: Postgres failures.
    pub(crate) async fn complete_if_done(&self, id: CampaignId) -> Result<bool, JobError> {
        if self.svc.store.campaign_has_open_contacts(id).await? {
            return Ok(false);
        }
        self.complete_campaign(id).await?;
        Ok(true)
    }

    /// Marks a dialing campaign completed (product §8) once nothing is left to do, with every
    /// transition's effects ([`outdial_control::transition::apply`]); a campaign in any
    /// other status is left alone.
    ///
    /// Errors: Postgres failures.
    pub(crate) async fn complete_campaign(&self, id: CampaignId) -> Result<(), JobError> {
        let done = transition::apply_if_allowed(
            &self.svc,
            id,
            CampaignCommand::Complete,
            "dialer",
            Some("every contact is finished"),
        )
        .await?;
        if done.is_some() {
            tracing::info!(campaign = %id, "campaign completed");
        }
        Ok(())
    }

    /// When an idle tick of `campaign` (zone keys `keys`) runs next, ms, or `None` when the
    /// campaign completed because nothing is left (product §8). It sleeps until the earliest
    /// window opening plus jitter when every zone is closed ([`Self::reopening`]), else ten
    /// poll intervals — never before `not_before_ms`, its next time on its pacing grid.
    ///
    /// Errors: Postgres failures.
    pub(crate) async fn idle_wake(
        &self,
        campaign: &Campaign,
        keys: &[String],
        not_before_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, JobError> {
        if self.complete_if_done(campaign.id).await? {
            return Ok(None);
        }
        let wake = self.reopening(campaign, keys, now).unwrap_or_else(|| {
            now + Duration::milliseconds(self.svc.config.dialer.poll_interval_ms * 10)
        });
        Ok(Some(wake.timestamp_millis().max(not_before_ms)))
    }

    /// When `campaign`'s window next opens, plus [`Self::jitter`], if it is closed now in
    /// every one of its zone keys `keys` (`"America/Chicago"`, or zones joined by `&`);
    /// `None` when a zone is open now, a key does not parse, a zone never opens, or there
    /// are no keys (product §5.2: sleep until the earliest opening instead of spinning).
    pub(crate) fn reopening(
        &self,
        campaign: &Campaign,
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let openings: Vec<Option<DateTime<Utc>>> = keys
            .iter()
            .map(|k| campaign.window.next_opening_for_key(k, now))
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
}
