//! A tick's reads and its writes that end an admission without a call (product §5 "One
//! attempt"): the next admitted contact with what its checks need, a direct call's contact,
//! and the compare-and-set endings (ended, re-queued).

use chrono::{DateTime, Utc};
use outdial_domain::contact::{ContactStatus, EndReason};
use outdial_domain::{CampaignId, ContactId};
use sqlx::PgConnection;

use crate::Result;
use crate::contacts::{CONTACT_COLUMNS, Contact, ContactRow};

/// A contact about to be started — admitted for a voice tick or a direct call, or just
/// claimed by an SMS tick — with what its first check needs, read in the same statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// its row as claimed: `locked`, or `sending` for an SMS tick
    pub contact: Contact,
    /// whether one of its numbers is on its organization's suppression list (product §5.1)
    pub suppressed: bool,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    #[sqlx(flatten)]
    contact: ContactRow,
    suppressed: bool,
}

pub(crate) const SUPPRESSED: &str = "EXISTS (SELECT 1 FROM suppressions s WHERE s.org_id = contacts.org_id AND s.phone = ANY(contacts.phone_numbers)) AS suppressed";

pub(crate) fn claimed(row: Option<ClaimedRow>) -> Result<Option<Claimed>> {
    row.map(|r| {
        Ok(Claimed {
            contact: r.contact.try_into()?,
            suppressed: r.suppressed,
        })
    })
    .transpose()
}

/// What a voice tick reads to start its next contact, in one statement
/// ([`next_admitted`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NextAdmitted {
    /// the admitted contact to start, with its suppression check
    pub claimed: Claimed,
    /// the campaign row's version ([`crate::campaigns::CampaignHead::version`], Postgres'
    /// `xmin`) as this statement saw it: a caller holding the campaign's settings at this
    /// version need not read them again
    pub campaign_version: i64,
    /// the DIDs of the contact's organization that could place the call (state `active` or
    /// `warming`, by id, as [`crate::dids::usable_dids`] returns them): the caller ID is
    /// chosen among them (product §5.5)
    pub org_dids: Vec<crate::dids::Did>,
}

#[derive(sqlx::FromRow)]
struct NextAdmittedRow {
    #[sqlx(flatten)]
    claimed: ClaimedRow,
    campaign_version: i64,
    org_dids: sqlx::types::Json<Vec<crate::dids::DidRow>>,
}

/// The admitted (`locked`) contact of `campaign` a tick starts next — oldest admission first — and
/// only while the campaign is still dialing, so a pause or cancel stops new attempts at once; with
/// the campaign's row version and its organization's usable caller IDs. One statement, where a tick
/// used to make three (campaign, contact, caller IDs): a round trip costs the fleet more CPU than
/// any of the three reads (docs/BENCHMARKS.md, dispatch findings). A read without row locks: the
/// attempt is recorded by [`super::start_admitted`], whose compare-and-set on `locked` makes a
/// concurrent change (sweep, pause, cancel) win over it. `None` when none is admitted or the
/// campaign is not dialing. product §5 "Campaign pacing": one admitted contact per tick.
///
/// Errors: database failures, a stored contact or DID that does not parse.
pub async fn next_admitted(
    conn: &mut PgConnection,
    campaign: CampaignId,
) -> Result<Option<NextAdmitted>> {
    let row: Option<NextAdmittedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.*, k.xmin::text::bigint AS campaign_version,
                COALESCE((SELECT json_agg(d ORDER BY d.id) FROM (
                    SELECT {DID_COLUMNS} FROM dids WHERE dids.org_id = c.org_id AND {USABLE}) d),
                  '[]') AS org_dids
         FROM campaigns k CROSS JOIN LATERAL (
             SELECT {CONTACT_COLUMNS}, {SUPPRESSED} FROM contacts
             WHERE org_id = k.org_id AND campaign_id = k.id AND status = 'locked'
             ORDER BY locked_at, id LIMIT 1) c
         WHERE k.id = $1 AND k.status = 'dialing'",
        DID_COLUMNS = crate::dids::DID_COLUMNS,
        USABLE = crate::dids::usable_state_sql(),
    )))
    .bind(campaign.0)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(NextAdmitted {
            claimed: Claimed {
                contact: r.claimed.contact.try_into()?,
                suppressed: r.claimed.suppressed,
            },
            campaign_version: r.campaign_version,
            org_dids: r
                .org_dids
                .0
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
        })
    })
    .transpose()
}

/// Contact `id` if it is admitted (`locked`): a direct call (product §5, `POST /api/calls`)
/// about to start. `None` otherwise (already started, or no longer admitted).
///
/// Errors: database failures.
pub async fn admitted_contact(conn: &mut PgConnection, id: ContactId) -> Result<Option<Claimed>> {
    // By id alone, the status checked here: see `start_admitted` on `status = 'locked'` plans.
    let row: Option<ClaimedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTACT_COLUMNS}, {SUPPRESSED} FROM contacts WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(conn)
    .await?;
    Ok(claimed(row)?.filter(|c| c.contact.status == ContactStatus::Locked))
}

/// Ends `contact` without a call: status `to` (`cancelled`, `exhausted`, `failed`) with
/// `reason` — only if it is still in status `from` (`locked` for a voice contact about to
/// be started, `sending` for a claimed SMS prospect; product §5.1, §5.4, §6). Returns
/// whether it was.
///
/// Errors: database failures.
pub async fn end_contact(
    conn: &mut PgConnection,
    contact: &Contact,
    from: ContactStatus,
    to: ContactStatus,
    reason: EndReason,
    now: DateTime<Utc>,
) -> Result<bool> {
    debug_assert!(to.is_terminal(), "{to} does not end a contact");
    // With the organization: see `start_admitted`.
    let done = sqlx::query(
        "UPDATE contacts SET status = $3, status_reason = $4, locked_at = NULL, updated_at = $5
         WHERE id = $1 AND status = $2 AND org_id = $6",
    )
    .bind(contact.id.0)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(reason.as_str())
    .bind(now)
    .bind(contact.org_id.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts admitted (`locked`) `contact` back to `queued`, due at `retry_after`, without
/// using up an attempt (outside its window, no channel, no caller ID: product §5.2, §5.3,
/// §5.5). Returns whether it was still admitted.
///
/// Errors: database failures.
pub async fn requeue_admitted(
    conn: &mut PgConnection,
    contact: &Contact,
    retry_after: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    // With the organization: see `start_admitted`.
    let done = sqlx::query(
        "UPDATE contacts SET status = 'queued', retry_after = $2, locked_at = NULL, updated_at = $3
         WHERE id = $1 AND status = 'locked' AND org_id = $4",
    )
    .bind(contact.id.0)
    .bind(retry_after)
    .bind(now)
    .bind(contact.org_id.0)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
