//! Ending an attempt exactly once (product §5.7) and resolving its contact by the outcome
//! table (product §5 "Outcomes and resolution"), many completions in two statements.

use std::collections::{HashMap, HashSet};

use outdial_domain::contact::{
    AttemptStatus, CompletedBy, ContactStatus, Disposition, PhoneChoice, Resolution, RetryPolicy,
    resolve, select_phone,
};

use super::attempts::{CallAttempt, CallAttemptRow, qualified_attempt_columns, record_sids_sql};
use chrono::{DateTime, Utc};
use outdial_domain::AttemptId;
use serde::Serialize;

use crate::{Result, Store, StoreError, corrupt};

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: i64,
    attempt_status: String,
    attempt_index: i32,
    phone_count: Option<i32>,
    max_attempts_per_phone_number: Option<i32>,
    retry_delay_ms: Option<i64>,
    voicemail_drop: Option<bool>,
    retry_busy: Option<bool>,
    /// the attempt's campaign, `None` for a direct call
    campaign_id: Option<i64>,
}

impl PolicyRow {
    /// What attempt `self` ending with `disposition` at `now` makes of its contact (the
    /// outcome table, [`resolve`]), with the contact's new status, attempt count, due time
    /// and next number. (A retry in a campaign cancelled by then becomes `cancelled` in the
    /// completing statement, which sees the campaign's status under its lock.)
    fn resolve(&self, disposition: Disposition, now: DateTime<Utc>) -> Result<ContactWrite> {
        let policy = match self.campaign_id {
            Some(_) => {
                // The campaign's columns, NULL only when it is gone (a direct call): the
                // defaults are the direct call's policy.
                let defaults = RetryPolicy::default();
                RetryPolicy {
                    max_attempts_per_phone_number: match self.max_attempts_per_phone_number {
                        Some(n) => u32::try_from(n).map_err(corrupt)?,
                        None => defaults.max_attempts_per_phone_number,
                    },
                    retry_delay_ms: self.retry_delay_ms.unwrap_or(defaults.retry_delay_ms),
                    voicemail_drop: self.voicemail_drop.unwrap_or(defaults.voicemail_drop),
                    retry_busy: self.retry_busy.unwrap_or(defaults.retry_busy),
                }
            }
            None => RetryPolicy::default(),
        };
        let index = u32::try_from(self.attempt_index).map_err(corrupt)?;
        let phones = usize::try_from(self.phone_count.unwrap_or(0)).map_err(corrupt)?;
        let resolution = resolve(disposition, index, phones, &policy, now);
        let (status, next_index, retry_after, number_index) = match resolution {
            Resolution::Retry {
                next_attempt_index,
                retry_after,
            } => {
                // The number the retry dials: its zone key becomes the contact's.
                let number = match select_phone(
                    phones,
                    next_attempt_index,
                    policy.max_attempts_per_phone_number,
                ) {
                    PhoneChoice::Dial { index } => Some(i32::try_from(index).map_err(corrupt)?),
                    PhoneChoice::Exhausted => None,
                };
                (
                    ContactStatus::Queued,
                    i32::try_from(next_attempt_index).map_err(corrupt)?,
                    Some(retry_after),
                    number,
                )
            }
            other => (other.status(), self.attempt_index + 1, None, None),
        };
        Ok(ContactWrite {
            resolution,
            status,
            next_index,
            retry_after,
            number_index,
        })
    }
}

/// A completion's effect on its contact ([`PolicyRow::resolve`]).
#[derive(Clone, Copy)]
struct ContactWrite {
    resolution: Resolution,
    status: ContactStatus,
    next_index: i32,
    retry_after: Option<DateTime<Utc>>,
    /// the index of the number a retry dials (its zone key becomes the contact's
    /// `timezone`, product §5.2); `None` when the contact is not queued again
    number_index: Option<i32>,
}

/// The completing statement's input, one array per column (bound to `unnest`).
#[derive(Default)]
struct CompletionWrites {
    item: Vec<i32>,
    id: Vec<i64>,
    disposition: Vec<&'static str>,
    carrier_status: Vec<Option<String>>,
    answered_by: Vec<Option<String>>,
    duration_s: Vec<Option<i32>>,
    call_sid: Vec<Option<String>>,
    completed_by: Vec<&'static str>,
    error: Vec<Option<String>>,
    ended_at: Vec<DateTime<Utc>>,
    spam_flagged: Vec<bool>,
    contact_status: Vec<&'static str>,
    next_index: Vec<i32>,
    retry_after: Vec<Option<DateTime<Utc>>>,
    number_index: Vec<Option<i32>>,
    resolution: HashMap<i32, Resolution>,
}

impl CompletionWrites {
    fn push(
        &mut self,
        item: i32,
        id: AttemptId,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
        w: ContactWrite,
    ) {
        self.item.push(item);
        self.id.push(id.0);
        self.disposition.push(outcome.disposition.as_str());
        self.carrier_status.push(outcome.carrier_status.clone());
        self.answered_by.push(outcome.answered_by.clone());
        self.duration_s.push(outcome.duration_s);
        self.call_sid.push(outcome.call_sid.clone());
        self.completed_by.push(outcome.completed_by.as_str());
        self.error.push(outcome.error.clone());
        self.ended_at.push(now);
        self.spam_flagged.push(outcome.spam_flagged);
        self.contact_status.push(w.status.as_str());
        self.next_index.push(w.next_index);
        self.retry_after.push(w.retry_after);
        self.number_index.push(w.number_index);
        self.resolution.insert(item, w.resolution);
    }
}

#[derive(sqlx::FromRow)]
struct CompletedRow {
    /// the batch item it completes
    item: i32,
    #[sqlx(flatten)]
    attempt: CallAttemptRow,
    contact_status: String,
    campaign_finished: bool,
}

/// How an attempt ended, as reported by the carrier or decided by a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// how it ended (product §5 "Outcomes and resolution")
    pub disposition: Disposition,
    /// carrier's CallStatus
    pub carrier_status: Option<String>,
    /// carrier's AnsweredBy
    pub answered_by: Option<String>,
    /// talk time, s
    pub duration_s: Option<i32>,
    /// carrier call id
    pub call_sid: Option<String>,
    /// what ended the attempt
    pub completed_by: CompletedBy,
    /// what went wrong, in words, for failures
    pub error: Option<String>,
    /// the carrier reported the call as flagged spam (product §7 spam-clean component)
    pub spam_flagged: bool,
}

/// A completion that happened (exactly once per attempt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// the attempt, now completed
    pub attempt: CallAttempt,
    /// what the contact became
    pub resolution: Resolution,
    /// the contact's new status
    pub contact_status: ContactStatus,
    /// the contact is finished and no other contact of its campaign is open (queued,
    /// locked, dialing, sending, sent): the campaign can complete (product §8). Two
    /// completions racing for a campaign's last two contacts may both see the other still
    /// open (within one [`Store::complete_attempts`] batch they do not); the campaign's
    /// idle tick completes it then.
    pub campaign_finished: bool,
}

impl Store {
    /// Ends attempt `id` with `outcome` exactly once (product §5.7): the first completion (by
    /// webhook, timeout or originate failure) wins and resolves the contact by the outcome
    /// table with the campaign's retry policy; later ones return `None` and change nothing.
    /// If the campaign was cancelled meanwhile, a retry becomes `cancelled`. One completion of
    /// [`Store::complete_attempts`].
    ///
    /// Errors: [`StoreError::NotFound`] for an unknown attempt, database failures.
    pub async fn complete_attempt(
        &self,
        id: AttemptId,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Completion>> {
        let mut results = self
            .complete_attempts(&[(id, outcome.clone(), now)])
            .await?;
        results.pop().unwrap_or(Ok(None))
    }

    /// Ends a batch of attempts (product §5.7), each `(attempt, outcome, time it ended)`, as
    /// [`Store::complete_attempt`] ends one — in two statements for the whole batch, so many
    /// calls ending at once share the round trips and the commit (the dialer gathers them,
    /// `dialer.write_gather_ms`). Returns one result per item, in order.
    ///
    /// The statements, no transaction: a read of what the outcome table needs (the attempt
    /// index, the contact's number count, the campaign's policy — none of which a concurrent
    /// completion changes), then one statement that share-locks the batch's campaigns (so a
    /// retry in a campaign cancelled at that moment becomes `cancelled`, never `queued`),
    /// ends each attempt only if it is still open (the compare-and-set), writes its caller
    /// ID's `did_health_events` row
    /// (product §7: exactly one per attempt with a DID, so no outcome can be lost between the
    /// completion and the health worker; its caller ID and attempt are copied from the
    /// attempt row, hence no foreign keys of its own — migration `20261121000004`) and
    /// resolves its contact with it, atomically. The same statement tells whether the
    /// campaign has no open contact left ([`Completion::campaign_finished`]); contacts that
    /// the same batch closes do not count as open.
    ///
    /// An attempt named twice in one batch is completed by its first item; the later ones
    /// return `None`, as a second completion would.
    ///
    /// Errors: per item, [`StoreError::NotFound`] for an unknown attempt and
    /// [`StoreError::Corrupt`] for a stored value that does not parse (the other items are
    /// completed); for the whole batch (nothing written), database failures.
    pub async fn complete_attempts(
        &self,
        items: &[(AttemptId, AttemptOutcome, DateTime<Utc>)],
    ) -> Result<Vec<Result<Option<Completion>>>> {
        let ids: Vec<i64> = items.iter().map(|(id, _, _)| id.0).collect();
        let policies: Vec<PolicyRow> = sqlx::query_as(
            "SELECT a.id, a.status AS attempt_status, a.attempt_index, cardinality(c.phone_numbers) AS phone_count,
                    k.max_attempts_per_phone_number, k.retry_delay_ms, k.voicemail_drop, k.retry_busy, k.id AS campaign_id
             FROM call_attempts a JOIN contacts c ON c.id = a.contact_id LEFT JOIN campaigns k ON k.id = a.campaign_id
             WHERE a.id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let policies: HashMap<i64, PolicyRow> = policies.into_iter().map(|p| (p.id, p)).collect();
        let mut results: Vec<Result<Option<Completion>>> = Vec::with_capacity(items.len());
        let mut writes = CompletionWrites::default();
        let mut seen = HashSet::new();
        for (i, (id, outcome, now)) in items.iter().enumerate() {
            let Some(row) = policies.get(&id.0) else {
                results.push(Err(StoreError::not_found("call attempt", id)));
                continue;
            };
            match row.attempt_status.parse::<AttemptStatus>() {
                Ok(AttemptStatus::Completed) => {
                    results.push(Ok(None));
                    continue;
                }
                Ok(_) if !seen.insert(id.0) => {
                    results.push(Ok(None));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    results.push(Err(corrupt(e)));
                    continue;
                }
            }
            let item = i32::try_from(i).map_err(|_| {
                StoreError::Invalid(format!(
                    "a batch of {} completions is too large",
                    items.len()
                ))
            })?;
            match row.resolve(outcome.disposition, *now) {
                Ok(r) => writes.push(item, *id, outcome, *now, r),
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            }
            results.push(Ok(None)); // replaced below when the statement completes it
        }
        if writes.item.is_empty() {
            return Ok(results);
        }
        // Each attempt ends only if still open; its contact changes only with it. A contact
        // that is no longer dialing (cancelled meanwhile) keeps its status; the attempt's
        // outcome is still recorded on it. A retry in a cancelled campaign is `cancelled`
        // instead: the statement share-locks the batch's campaigns (`k`, in id order), so a
        // status change in flight (it holds its campaign's row lock until it commits) is
        // waited for and its committed status seen, and a later one waits for this
        // statement, whose requeued contacts its own contact update then sees. Read in a
        // statement of their own, a cancel committed in between left a retried contact
        // `queued` in a cancelled campaign. `campaign_finished`: the contact is no longer open
        // and no other contact of its campaign is — the statement's snapshot still shows the
        // old rows of the contacts it closes, hence `NOT IN (… closed)`.
        let done: Vec<CompletedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH i AS (
                 SELECT * FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
                                      $8::text[], $9::text[], $10::timestamptz[], $11::bool[], $12::text[],
                                      $13::int[], $14::timestamptz[], $15::int[])
                     AS i(item, id, disposition, carrier_status, answered_by, duration_s, call_sid, completed_by, error,
                          ended_at, spam_flagged, contact_status, next_index, retry_after, number_index)),
             k AS (
                 SELECT id, status FROM campaigns
                 WHERE id IN (SELECT campaign_id FROM call_attempts WHERE id = ANY($2))
                 ORDER BY id FOR SHARE),
             a AS (
                 UPDATE call_attempts SET status = 'completed', disposition = i.disposition,
                     carrier_status = COALESCE(i.carrier_status, call_attempts.carrier_status),
                     answered_by = COALESCE(i.answered_by, call_attempts.answered_by),
                     duration_s = COALESCE(i.duration_s, call_attempts.duration_s),
                     provider_call_sid = COALESCE(call_attempts.provider_call_sid, i.call_sid),
                     completed_by = i.completed_by, error = i.error, ended_at = i.ended_at,
                     spam_flagged = call_attempts.spam_flagged OR i.spam_flagged
                 FROM i WHERE call_attempts.id = i.id AND call_attempts.status <> 'completed'
                 RETURNING i.item, {ATTEMPT_COLUMNS_OF_CALL_ATTEMPTS}),
             s AS ({RECORD_SIDS}),
             h AS (
                 INSERT INTO did_health_events (did_id, call_attempt_id, disposition, duration_s, spam_flagged, at)
                 SELECT did_id, id, disposition, COALESCE(duration_s, 0), spam_flagged, ended_at
                 FROM a WHERE did_id IS NOT NULL
                 ON CONFLICT (call_attempt_id) DO NOTHING),
             c AS (
                 UPDATE contacts SET status = CASE WHEN contacts.status <> 'dialing' THEN contacts.status
                                                   WHEN i.contact_status = 'queued' AND k.status = 'cancelled' THEN 'cancelled'
                                                   ELSE i.contact_status END,
                     disposition = i.disposition,
                     status_reason = CASE WHEN contacts.status = 'dialing' AND i.contact_status = 'queued' AND k.status = 'cancelled'
                                          THEN 'campaign_cancelled' ELSE contacts.status_reason END,
                     attempt_count = GREATEST(contacts.attempt_count, i.next_index),
                     retry_after = COALESCE(i.retry_after, contacts.retry_after),
                     timezone = COALESCE(contacts.phone_timezones[i.number_index + 1], contacts.timezone),
                     locked_at = NULL, updated_at = i.ended_at
                 FROM a JOIN i ON i.item = a.item LEFT JOIN k ON k.id = a.campaign_id WHERE contacts.id = a.contact_id
                 RETURNING contacts.id, contacts.status, contacts.campaign_id, contacts.org_id)
             SELECT a.*, c.status AS contact_status,
                    (c.campaign_id IS NOT NULL AND c.status NOT IN ({OPEN})
                     AND NOT {ANY_OPEN})
                    AS campaign_finished
             FROM a JOIN c ON c.id = a.contact_id",
            ATTEMPT_COLUMNS_OF_CALL_ATTEMPTS = qualified_attempt_columns(),
            RECORD_SIDS = record_sids_sql("a"),
            OPEN = crate::statuses::open(),
            ANY_OPEN = crate::statuses::any_open_contact_sql(
                "c.campaign_id",
                "c.org_id",
                &format!("o.id NOT IN (SELECT x.id FROM c x WHERE x.status NOT IN ({}))", crate::statuses::open())
            ),
        )))
        .bind(&writes.item)
        .bind(&writes.id)
        .bind(&writes.disposition)
        .bind(&writes.carrier_status)
        .bind(&writes.answered_by)
        .bind(&writes.duration_s)
        .bind(&writes.call_sid)
        .bind(&writes.completed_by)
        .bind(&writes.error)
        .bind(&writes.ended_at)
        .bind(&writes.spam_flagged)
        .bind(&writes.contact_status)
        .bind(&writes.next_index)
        .bind(&writes.retry_after)
        .bind(&writes.number_index)
        .fetch_all(&self.pool)
        .await?;
        for d in done {
            let i = usize::try_from(d.item).map_err(corrupt)?;
            let resolution = writes.resolution.remove(&d.item).ok_or_else(|| {
                StoreError::Corrupt(format!("completion returned unknown item {}", d.item))
            })?;
            results[i] = Ok(Some(Completion {
                attempt: d.attempt.try_into()?,
                resolution,
                contact_status: d.contact_status.parse().map_err(corrupt)?,
                campaign_finished: d.campaign_finished,
            }));
        }
        Ok(results)
    }
}
