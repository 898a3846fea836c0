//! Contacts and uploads (product §5.4, §11).

use chrono::{DateTime, Utc};
use outdial_domain::campaign::Channel;
use outdial_domain::contact::{ContactStatus, Disposition, EndReason};
use outdial_domain::phone::E164;
use outdial_domain::{CampaignId, ContactId, OrgId, UploadId};
use serde::Serialize;

use crate::{Result, Store, StoreError, corrupt, parse_stored, stored_numbers};

/// A contact (prospect): the person a campaign calls or texts, and its progress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    /// row id; its channel holder is `contact:<id>:<attempt_count>` (product §4)
    pub id: ContactId,
    /// organization: its suppression list, caller IDs and limits apply
    pub org_id: OrgId,
    /// campaign; `None` for a direct API call
    pub campaign_id: Option<CampaignId>,
    /// caller's own id for the contact
    pub external_id: Option<String>,
    /// the CSV `name` or the direct call's `name`, if given
    pub name: Option<String>,
    /// numbers in dialing order
    pub phone_numbers: Vec<E164>,
    /// each number's time-zone key, in the same order: the zones (`&`-joined IANA names)
    /// that must all be open for it to be dialed (product §5.2)
    pub phone_timezones: Vec<String>,
    /// the time-zone key of the number the next attempt dials (kept in step with
    /// `attempt_count` by the completion); the dispatch cycle filters on it
    pub timezone: String,
    /// where it is in its life: `queued`, `locked`, `dialing`, … ([`ContactStatus`])
    pub status: ContactStatus,
    /// last attempt's disposition (call or text)
    pub disposition: Option<Disposition>,
    /// why it ended without a call, when it did
    pub status_reason: Option<EndReason>,
    /// attempts made = index of the next attempt
    pub attempt_count: i32,
    /// due when this has passed
    pub retry_after: DateTime<Utc>,
    /// when it was admitted by a dispatch cycle
    pub locked_at: Option<DateTime<Utc>>,
    /// pool its calls take a channel from: the campaign's, or `api` for a direct call
    pub sip_pool: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    id: i64,
    org_id: i64,
    campaign_id: Option<i64>,
    external_id: Option<String>,
    name: Option<String>,
    phone_numbers: Vec<String>,
    phone_timezones: Vec<String>,
    timezone: String,
    status: String,
    disposition: Option<String>,
    status_reason: Option<String>,
    attempt_count: i32,
    retry_after: DateTime<Utc>,
    locked_at: Option<DateTime<Utc>>,
    sip_pool: String,
}

pub(crate) const CONTACT_COLUMNS: &str = "id, org_id, campaign_id, external_id, name, phone_numbers, phone_timezones, timezone, status, \
    disposition, status_reason, attempt_count, retry_after, locked_at, sip_pool";

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;
    fn try_from(r: ContactRow) -> Result<Self> {
        Ok(Self {
            id: ContactId(r.id),
            org_id: OrgId(r.org_id),
            campaign_id: r.campaign_id.map(CampaignId),
            external_id: r.external_id,
            name: r.name,
            phone_numbers: stored_numbers(r.phone_numbers)?,
            phone_timezones: r.phone_timezones,
            timezone: r.timezone,
            status: r.status.parse().map_err(corrupt)?,
            disposition: parse_stored(r.disposition)?,
            status_reason: parse_stored(r.status_reason)?,
            attempt_count: r.attempt_count,
            retry_after: r.retry_after,
            locked_at: r.locked_at,
            sip_pool: r.sip_pool,
        })
    }
}

/// One validated contact to insert (rows come from [`outdial_domain::import::parse_contacts_csv`]).
pub use outdial_domain::import::ContactRow as NewContact;
/// A row that was not imported, with its 1-based data row number.
pub use outdial_domain::import::Rejection;

/// What an import did (product §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// the upload row tying the contacts to their file
    pub upload_id: UploadId,
    /// data rows read
    pub rows_read: usize,
    /// contacts inserted
    pub imported: usize,
    /// rows rejected as malformed
    pub malformed: usize,
    /// rows dropped as duplicates (within the file or already in the campaign)
    pub duplicates: usize,
    /// imported contacts with a number on the suppression list (cancelled at dial time)
    pub suppressed: usize,
    /// every malformed or duplicate row with its reason
    pub rejections: Vec<Rejection>,
}

impl Store {
    /// Inserts validated contacts for `campaign` in one transaction, with an upload row that
    /// records the file's report. Contacts whose primary number is already in the campaign
    /// are dropped as duplicates (reported with their row); `rejected` rows (malformed or
    /// duplicate within the file, found by the caller) are recorded as given. Nothing is
    /// half-written: on error the transaction rolls back.
    ///
    /// Errors: [`StoreError::NotFound`] for an unknown or foreign campaign; database failures.
    #[allow(clippy::too_many_arguments)]
    pub async fn import_contacts(
        &self,
        org: OrgId,
        campaign: Option<CampaignId>,
        filename: &str,
        rows_read: usize,
        contacts: &[NewContact],
        mut rejections: Vec<Rejection>,
        malformed: usize,
        now: DateTime<Utc>,
    ) -> Result<ImportReport> {
        let mut tx = self.pool.begin().await?;
        let (sip_pool, channel) = match campaign {
            Some(id) => {
                let found: Option<(String, String)> = sqlx::query_as(
                    "SELECT sip_pool, channel FROM campaigns WHERE id = $1 AND org_id = $2",
                )
                .bind(id.0)
                .bind(org.0)
                .fetch_optional(&mut *tx)
                .await?;
                let (pool, channel) = found.ok_or_else(|| StoreError::not_found("campaign", id))?;
                (pool, channel.parse::<Channel>().map_err(corrupt)?)
            }
            None => ("api".to_owned(), Channel::Voice),
        };
        let upload_id: i64 = sqlx::query_scalar(
            "INSERT INTO uploads (org_id, campaign_id, filename, rows_read, imported, malformed, duplicates, suppressed, created_at)
             VALUES ($1, $2, $3, $4, 0, 0, 0, 0, $5) RETURNING id",
        )
        .bind(org.0)
        .bind(campaign.map(|c| c.0))
        .bind(filename)
        .bind(crate::int_param(rows_read, "rows_read")?)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;

        let ext: Vec<Option<String>> = contacts.iter().map(|c| c.external_id.clone()).collect();
        let names: Vec<Option<String>> = contacts.iter().map(|c| c.name.clone()).collect();
        let phones: Vec<String> = contacts
            .iter()
            .map(|c| {
                c.phone_numbers
                    .iter()
                    .map(E164::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        let zones: Vec<String> = contacts
            .iter()
            .map(|c| c.phone_timezones.join(","))
            .collect();
        let rows: Vec<i64> = contacts
            .iter()
            .map(|c| i64::try_from(c.row).map_err(|_| crate::too_large("row", c.row)))
            .collect::<Result<_>>()?;
        // product §11 dedup against the campaign: a row is imported only if its primary number
        // is new to `campaign_numbers` (the first row of the file holding it, if several do).
        // Concurrent imports into one campaign serialize on that table's primary key, each
        // taking the numbers in the same (sorted) order, so they never deadlock.
        let inserted: Vec<(i64, String)> = sqlx::query_as(
            "WITH x AS (SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
                        AS x(ext, name, phones, tz, row)),
                  firsts AS (SELECT DISTINCT ON (split_part(phones, ',', 1)) row, split_part(phones, ',', 1) AS phone
                             FROM x ORDER BY split_part(phones, ',', 1), row),
                  numbers AS (INSERT INTO campaign_numbers (campaign_id, phone)
                              SELECT $2, phone FROM firsts WHERE $2::bigint IS NOT NULL ORDER BY phone
                              ON CONFLICT DO NOTHING RETURNING phone)
             INSERT INTO contacts (org_id, campaign_id, upload_id, external_id, name, phone_numbers, phone_timezones,
                                   timezone, sip_pool, retry_after, created_at, updated_at)
             SELECT $1, $2, $3, x.ext, x.name, string_to_array(x.phones, ','), string_to_array(x.tz, ','),
                    split_part(x.tz, ',', 1), $4, $5, $5, $5
             FROM x
             WHERE $2::bigint IS NULL
                OR x.row IN (SELECT f.row FROM firsts f JOIN numbers n ON n.phone = f.phone)
             ORDER BY x.row
             RETURNING id, phone_numbers[1]",
        )
        .bind(org.0)
        .bind(campaign.map(|c| c.0))
        .bind(upload_id)
        .bind(&sip_pool)
        .bind(now)
        .bind(&ext)
        .bind(&names)
        .bind(&phones)
        .bind(&zones)
        .bind(&rows)
        .fetch_all(&mut *tx)
        .await?;

        let inserted_primaries: std::collections::HashSet<&str> =
            inserted.iter().map(|(_, p)| p.as_str()).collect();
        let mut duplicates = rejections.len().saturating_sub(malformed);
        for c in contacts {
            if !inserted_primaries.contains(c.phone_numbers[0].as_str()) {
                duplicates += 1;
                rejections.push(Rejection {
                    row: c.row,
                    error: format!(
                        "duplicate: {} is already in the campaign",
                        c.phone_numbers[0]
                    ),
                });
            }
        }
        rejections.sort_by_key(|r| r.row);

        if let Some(id) = campaign {
            // The zone keys the campaign's contacts can be due in (product §5.2): a call moves
            // a contact to its next number's zone after its first number's attempts, so a
            // voice campaign has every number's key; a text goes to the first number only.
            let keys: std::collections::BTreeSet<&str> = contacts
                .iter()
                .flat_map(|c| match channel {
                    Channel::Voice => &c.phone_timezones[..],
                    Channel::Sms => &c.phone_timezones[..c.phone_timezones.len().min(1)],
                })
                .map(String::as_str)
                .collect();
            let keys: Vec<&str> = keys.into_iter().collect();
            sqlx::query(
                "INSERT INTO campaign_timezones (campaign_id, timezone)
                 SELECT $1::bigint, tz FROM unnest($2::text[]) AS tz ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(&keys)
            .execute(&mut *tx)
            .await?;
        }
        let ids: Vec<i64> = inserted.iter().map(|(id, _)| *id).collect();
        let suppressed: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT c.id) FROM contacts c JOIN suppressions s ON s.org_id = c.org_id AND s.phone = ANY(c.phone_numbers)
             WHERE c.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
        let report = ImportReport {
            upload_id: UploadId(upload_id),
            rows_read,
            imported: inserted.len(),
            malformed,
            duplicates,
            suppressed: usize::try_from(suppressed).map_err(corrupt)?,
            rejections,
        };
        let stored: Vec<&Rejection> = report.rejections.iter().take(1000).collect();
        sqlx::query("UPDATE uploads SET imported = $2, malformed = $3, duplicates = $4, suppressed = $5, rejections = $6 WHERE id = $1")
            .bind(upload_id)
            .bind(crate::int_param(report.imported, "imported")?)
            .bind(crate::int_param(report.malformed, "malformed")?)
            .bind(crate::int_param(report.duplicates, "duplicates")?)
            .bind(crate::int_param(report.suppressed, "suppressed")?)
            .bind(serde_json::to_value(&stored).map_err(corrupt)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Creates a direct call (product §5, issue "Direct calls"): a contact with no campaign,
    /// due now, on the `api` pool; it bypasses calling windows and sorts first.
    ///
    /// Errors: [`StoreError::Invalid`] without numbers; database failures.
    pub async fn create_direct_contact(
        &self,
        org: OrgId,
        phone_numbers: &[E164],
        timezone: &str,
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Contact> {
        if phone_numbers.is_empty() {
            return Err(StoreError::Invalid(
                "a call needs at least one phone number".into(),
            ));
        }
        let row: ContactRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO contacts (org_id, name, phone_numbers, phone_timezones, timezone, sip_pool, retry_after, created_at, updated_at)
             VALUES ($1, $2, $3, array_fill($4::text, ARRAY[cardinality($3::text[])]), $4, 'api', $5, $5, $5)
             RETURNING {CONTACT_COLUMNS}"
        )))
        .bind(org.0)
        .bind(name)
        .bind(phone_numbers.iter().map(E164::as_str).collect::<Vec<_>>())
        .bind(timezone)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    /// The contact `id`.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn contact(&self, id: ContactId) -> Result<Contact> {
        let row: Option<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::not_found("contact", id))?
            .try_into()
    }

    /// All contacts of a campaign, by id (for tests and reports on small campaigns).
    ///
    /// Errors: database failures.
    pub async fn campaign_contacts(&self, campaign: CampaignId) -> Result<Vec<Contact>> {
        let rows: Vec<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE {of_campaign} ORDER BY id",
            of_campaign = crate::statuses::campaign_contacts_sql(
                "$1",
                "(SELECT org_id FROM campaigns WHERE id = $1)"
            ),
        )))
        .bind(campaign.0)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
