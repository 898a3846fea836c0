//! Campaigns, their status transitions and contact time zones (product §5, §8).

use chrono::{DateTime, NaiveTime, Utc};
use outdial_domain::campaign::{CampaignCommand, CampaignStatus, Channel, transition};
use outdial_domain::contact::{ContactStatus, RetryPolicy};
use outdial_domain::phone::E164;
use outdial_domain::window::{CallingWindow, Weekdays};
use outdial_domain::{CampaignId, ContactId, OrgId};
use serde::Serialize;

use crate::{Result, Store, StoreError, corrupt, stored_numbers};

/// A campaign as the dialer uses it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    /// row id; `campaign:<id>` is its event channel (product §9)
    pub id: CampaignId,
    /// the organization that owns it; only its tokens see it (product §10)
    pub org_id: OrgId,
    /// name given at creation; need not be unique
    pub name: String,
    /// voice or SMS
    pub channel: Channel,
    /// state machine status (product §8)
    pub status: CampaignStatus,
    /// higher dials first within the organization
    pub priority: i32,
    /// voice pace: call starts per second (product §5)
    pub calls_per_second: f64,
    /// retry settings (product §5 outcomes)
    pub retry: RetryPolicy,
    /// local calling window, already clipped to the legal one
    pub window: CallingWindow,
    /// fallback zone for contacts without one
    pub timezone: String,
    /// allowed caller IDs; empty = any of the organization's
    pub caller_ids: Vec<E164>,
    /// SIP channel pool its calls use
    pub sip_pool: String,
    /// the body texted to every prospect; `None` for voice
    pub message_body: Option<String>,
    /// when it was created (injected clock)
    pub created_at: DateTime<Utc>,
    /// first started
    pub started_at: Option<DateTime<Utc>>,
    /// completed or cancelled
    pub finished_at: Option<DateTime<Utc>>,
}

/// Settings of a campaign to create; [`NewCampaign::voice`] gives product §12 defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    /// the organization it will belong to
    pub org_id: OrgId,
    /// shown in lists; need not be unique
    pub name: String,
    /// voice or SMS
    pub channel: Channel,
    /// dial priority (higher first)
    pub priority: i32,
    /// call starts per second, (0, 1000]
    pub calls_per_second: f64,
    /// attempts per number, retry delay, voicemail and busy handling
    pub retry: RetryPolicy,
    /// calling window (clip it with [`CallingWindow::narrowed`] first)
    pub window: CallingWindow,
    /// fallback time zone (IANA)
    pub timezone: String,
    /// allowed caller IDs; empty = any of the organization's
    pub caller_ids: Vec<E164>,
    /// SIP channel pool its calls take (default `campaign`)
    pub sip_pool: String,
    /// the body to text; required for SMS, `None` for voice
    pub message_body: Option<String>,
}

impl NewCampaign {
    /// A voice campaign with product §12 defaults: 1 cps, 2 attempts per number, 60 min retry
    /// delay, 08:00–21:00 every day, America/Los_Angeles fallback, pool `campaign`.
    pub fn voice(org_id: OrgId, name: impl Into<String>) -> Self {
        Self {
            org_id,
            name: name.into(),
            channel: Channel::Voice,
            priority: 0,
            calls_per_second: 1.0,
            retry: RetryPolicy::default(),
            window: CallingWindow::voice_legal(),
            timezone: "America/Los_Angeles".into(),
            caller_ids: Vec::new(),
            sip_pool: "campaign".into(),
            message_body: None,
        }
    }

    /// An SMS campaign with product §6 defaults: 08:00–19:00 window, one try per number.
    pub fn sms(org_id: OrgId, name: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            channel: Channel::Sms,
            window: CallingWindow::sms_default(),
            retry: RetryPolicy {
                max_attempts_per_phone_number: 1,
                ..RetryPolicy::default()
            },
            message_body: Some(body.into()),
            ..Self::voice(org_id, name)
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    id: i64,
    org_id: i64,
    name: String,
    channel: String,
    status: String,
    priority: i32,
    calls_per_second: f64,
    max_attempts_per_phone_number: i32,
    retry_delay_ms: i64,
    voicemail_drop: bool,
    retry_busy: bool,
    window_start: NaiveTime,
    window_end: NaiveTime,
    window_days: i16,
    timezone: String,
    caller_ids: Vec<String>,
    sip_pool: String,
    message_body: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, org_id, name, channel, status, priority, calls_per_second, \
    max_attempts_per_phone_number, retry_delay_ms, voicemail_drop, retry_busy, window_start, window_end, \
    window_days, timezone, caller_ids, sip_pool, message_body, created_at, started_at, finished_at";

impl TryFrom<CampaignRow> for Campaign {
    type Error = StoreError;
    fn try_from(r: CampaignRow) -> Result<Self> {
        Ok(Self {
            id: CampaignId(r.id),
            org_id: OrgId(r.org_id),
            name: r.name,
            channel: r.channel.parse().map_err(corrupt)?,
            status: r.status.parse().map_err(corrupt)?,
            priority: r.priority,
            calls_per_second: r.calls_per_second,
            retry: RetryPolicy {
                max_attempts_per_phone_number: u32::try_from(r.max_attempts_per_phone_number)
                    .map_err(corrupt)?,
                retry_delay_ms: r.retry_delay_ms,
                voicemail_drop: r.voicemail_drop,
                retry_busy: r.retry_busy,
            },
            window: CallingWindow {
                start: r.window_start,
                end: r.window_end,
                days: Weekdays(u8::try_from(r.window_days).map_err(corrupt)?),
            },
            timezone: r.timezone,
            caller_ids: stored_numbers(r.caller_ids)?,
            sip_pool: r.sip_pool,
            message_body: r.message_body,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        })
    }
}

/// A status change that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transitioned {
    /// the campaign after the change
    pub campaign: Campaign,
    /// status before
    pub from: CampaignStatus,
    /// contacts a cancel marked `cancelled`
    pub cancelled_contacts: usize,
    /// admitted (`locked`) contacts the change took back — cancelled by a cancel, returned
    /// to `queued` by a pause — as `(id, attempt_count, sip_pool)`: their channels must be
    /// released
    pub released: Vec<(ContactId, i32, String)>,
}

/// One recorded status change (product §8: who/what caused it).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TransitionRecord {
    /// status before
    pub from_status: String,
    /// status after
    pub to_status: String,
    /// what was asked: `start`, `pause`, `resume`, `cancel` or `complete`
    pub command: String,
    /// who: `api:token:<id>`, `cli`, `dialer`, …
    pub actor: String,
    /// why, when given
    pub reason: Option<String>,
    /// when it was recorded (injected clock)
    pub at: DateTime<Utc>,
}

impl Store {
    /// Creates a campaign in status `created`.
    ///
    /// Errors: [`StoreError::Invalid`] for settings the schema refuses (cps outside
    /// (0, 1000], attempts per number outside 1..=20, unknown time zone),
    /// [`StoreError::NotFound`] for an unknown organization.
    pub async fn create_campaign(&self, c: &NewCampaign, now: DateTime<Utc>) -> Result<Campaign> {
        if c.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(StoreError::Invalid(format!(
                "unknown time zone {:?}",
                c.timezone
            )));
        }
        self.org(c.org_id).await?;
        let row: CampaignRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO campaigns (org_id, name, channel, priority, calls_per_second, max_attempts_per_phone_number,
                retry_delay_ms, voicemail_drop, retry_busy, window_start, window_end, window_days, timezone,
                caller_ids, sip_pool, message_body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
             RETURNING {CAMPAIGN_COLUMNS}"
        )))
        .bind(c.org_id.0)
        .bind(&c.name)
        .bind(c.channel.as_str())
        .bind(c.priority)
        .bind(c.calls_per_second)
        .bind(crate::int_param(c.retry.max_attempts_per_phone_number, "max_attempts_per_phone_number")?)
        .bind(c.retry.retry_delay_ms)
        .bind(c.retry.voicemail_drop)
        .bind(c.retry.retry_busy)
        .bind(c.window.start)
        .bind(c.window.end)
        .bind(i16::from(c.window.days.0))
        .bind(&c.timezone)
        .bind(c.caller_ids.iter().map(E164::as_str).collect::<Vec<_>>())
        .bind(&c.sip_pool)
        .bind(&c.message_body)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    /// The campaign `id`; with `org`, only if it belongs to that organization.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn campaign(&self, id: CampaignId, org: Option<OrgId>) -> Result<Campaign> {
        let row: Option<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 AND ($2::bigint IS NULL OR org_id = $2)"
        )))
        .bind(id.0)
        .bind(org.map(|o| o.0))
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::not_found("campaign", id))?
            .try_into()
    }

    /// Campaigns in `status` (all channels), by id.
    ///
    /// Errors: database failures.
    pub async fn campaigns_in_status(&self, status: CampaignStatus) -> Result<Vec<Campaign>> {
        let rows: Vec<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = $1 ORDER BY id"
        )))
        .bind(status.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Campaigns of `org` (or all), newest first.
    ///
    /// Errors: database failures.
    pub async fn campaigns(&self, org: Option<OrgId>) -> Result<Vec<Campaign>> {
        let rows: Vec<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE ($1::bigint IS NULL OR org_id = $1) ORDER BY id DESC"
        )))
        .bind(org.map(|o| o.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Applies `command` to campaign `id` atomically (product §8): the row is locked, the state
    /// machine decides, the change and its `actor`/`reason` are recorded in one transaction,
    /// so concurrent pause/resume from several pods end consistent. A cancel also marks the
    /// campaign's queued and locked contacts `cancelled`, and a pause returns its admitted
    /// (`locked`) contacts to `queued`, in the same transaction; both report the admitted
    /// contacts whose channels must be released.
    ///
    /// Errors: [`StoreError::IllegalTransition`] (409 with the current status),
    /// [`StoreError::NotFound`] (also when `org` is given and does not own it).
    pub async fn transition_campaign(
        &self,
        id: CampaignId,
        org: Option<OrgId>,
        command: CampaignCommand,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Transitioned> {
        let mut tx = self.pool.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1 AND ($2::bigint IS NULL OR org_id = $2) FOR UPDATE")
                .bind(id.0)
                .bind(org.map(|o| o.0))
                .fetch_optional(&mut *tx)
                .await?;
        let from: CampaignStatus = current
            .ok_or_else(|| StoreError::not_found("campaign", id))?
            .parse()
            .map_err(corrupt)?;
        let to = transition(from, command)?;
        let row: CampaignRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE campaigns SET status = $2, updated_at = $3,
                 started_at = CASE WHEN $2 = 'dialing' THEN COALESCE(started_at, $3) ELSE started_at END,
                 finished_at = CASE WHEN $2 IN ('completed', 'cancelled') THEN $3 ELSE finished_at END
             WHERE id = $1 RETURNING {CAMPAIGN_COLUMNS}"
        )))
        .bind(id.0)
        .bind(to.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO campaign_transitions (campaign_id, from_status, to_status, command, actor, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.0)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(command.as_str())
        .bind(actor)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (cancelled_contacts, released) = match to {
            CampaignStatus::Cancelled => {
                // `=` arms, not `IN`: each arm then matches a partial index's predicate
                // (`contacts_campaign_due`, `contacts_admitted`; migration 20261122000006).
                let rows: Vec<(i64, i32, String, String)> = sqlx::query_as(
                    "WITH c AS (
                         SELECT id, attempt_count, sip_pool, status FROM contacts
                         WHERE campaign_id = $1 AND (status = 'queued' OR status = 'locked') FOR UPDATE)
                     UPDATE contacts SET status = 'cancelled', status_reason = 'campaign_cancelled', locked_at = NULL, updated_at = $2
                     FROM c WHERE contacts.id = c.id
                     RETURNING c.id, c.attempt_count, c.sip_pool, c.status",
                )
                .bind(id.0)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                let released = rows
                    .iter()
                    .filter(|r| r.3 == ContactStatus::Locked.as_str())
                    .map(|(id, a, p, _)| (ContactId(*id), *a, p.clone()))
                    .collect();
                (rows.len(), released)
            }
            CampaignStatus::Paused => {
                // Admitted contacts would hold their slots until the stale sweep; give them back.
                let rows: Vec<(i64, i32, String)> = sqlx::query_as(
                    "UPDATE contacts SET status = 'queued', locked_at = NULL, updated_at = $2
                     WHERE campaign_id = $1 AND status = 'locked' RETURNING id, attempt_count, sip_pool",
                )
                .bind(id.0)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                (
                    0,
                    rows.into_iter()
                        .map(|(id, a, p)| (ContactId(id), a, p))
                        .collect(),
                )
            }
            _ => (0, Vec::new()),
        };
        tx.commit().await?;
        Ok(Transitioned {
            campaign: row.try_into()?,
            from,
            cancelled_contacts,
            released,
        })
    }

    /// The recorded status changes of a campaign, oldest first.
    ///
    /// Errors: database failures.
    pub async fn campaign_transitions(&self, id: CampaignId) -> Result<Vec<TransitionRecord>> {
        Ok(sqlx::query_as(
            "SELECT from_status, to_status, command, actor, reason, at FROM campaign_transitions WHERE campaign_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Distinct contact time-zone keys of a campaign (kept up to date by imports).
    ///
    /// Errors: database failures.
    pub async fn campaign_timezones(&self, id: CampaignId) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT timezone FROM campaign_timezones WHERE campaign_id = $1 ORDER BY timezone",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A dialing campaign as the dispatch cycle sees it before reading its settings: the row's
/// version and the contact time-zone keys it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignHead {
    /// the campaign, key of the cycle's settings cache
    pub id: CampaignId,
    /// The campaign row's version: Postgres' `xmin`, the transaction that wrote the current
    /// row. Every change to the row (status, pace, window, caller IDs, …) writes a new row
    /// with a new `xmin`, so a cached copy whose version still matches is current.
    pub version: i64,
    /// Time-zone keys of its contacts (`campaign_timezones`, kept up to date by imports).
    pub timezones: Vec<String>,
}

/// Every campaign in status `dialing` on `channel`, by id, with its row version and contact
/// time-zone keys — a few bytes per campaign, so a caller that caches campaign settings
/// ([`campaigns_by_id`]) reads the full rows only when they changed (the dispatch cycle,
/// product §5: 2,000 campaigns' full rows every second cost more than the rest of its reads).
///
/// Errors: database failures.
pub async fn dialing_campaign_heads(
    conn: &mut sqlx::PgConnection,
    channel: Channel,
) -> Result<Vec<CampaignHead>> {
    let rows: Vec<(i64, i64, Vec<String>)> = sqlx::query_as(
        "SELECT c.id, c.xmin::text::bigint,
                ARRAY(SELECT ct.timezone FROM campaign_timezones ct
                      WHERE ct.campaign_id = c.id ORDER BY ct.timezone)
         FROM campaigns c WHERE c.status = 'dialing' AND c.channel = $1 ORDER BY c.id",
    )
    .bind(channel.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, version, timezones)| CampaignHead {
            id: CampaignId(id),
            version,
            timezones,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct VersionedCampaignRow {
    version: i64,
    #[sqlx(flatten)]
    row: CampaignRow,
}

/// The campaigns `ids` (any status; missing ids are left out), each with its row version as
/// in [`CampaignHead::version`], in id order: the dispatch cycle's re-read of changed
/// campaign settings (product §5 "Dispatch cycle").
///
/// Errors: database failures, or a stored value that does not parse.
pub async fn campaigns_by_id(
    conn: &mut sqlx::PgConnection,
    ids: &[CampaignId],
) -> Result<Vec<(i64, Campaign)>> {
    let ids: Vec<i64> = ids.iter().map(|c| c.0).collect();
    let rows: Vec<VersionedCampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT xmin::text::bigint AS version, {CAMPAIGN_COLUMNS} FROM campaigns
         WHERE id = ANY($1) ORDER BY id"
    )))
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.version, r.row.try_into()?)))
        .collect()
}

/// Campaigns in status `paused` on `channel`, by id.
///
/// Errors: database failures, or a stored value that does not parse.
pub async fn paused_campaigns(
    conn: &mut sqlx::PgConnection,
    channel: Channel,
) -> Result<Vec<Campaign>> {
    let rows: Vec<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'paused' AND channel = $1 ORDER BY id"
    )))
    .bind(channel.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// The campaign `id`, read inside the caller's transaction.
///
/// Errors: [`StoreError::NotFound`]; database failures.
pub async fn campaign_in(conn: &mut sqlx::PgConnection, id: CampaignId) -> Result<Campaign> {
    let row: Option<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| StoreError::not_found("campaign", id))?
        .try_into()
}
