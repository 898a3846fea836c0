//! Caller IDs (DIDs) and their health events (product §5.5, §7).

use chrono::{DateTime, Utc};
use outdial_domain::campaign::Channel;
use outdial_domain::contact::Disposition;
use outdial_domain::did::{
    CallerIdRule, DidCandidate, DidState, DidTransition, judged_score, within_ramp,
};
use outdial_domain::health::{CallSample, HealthScore};
use outdial_domain::phone::E164;
use outdial_domain::{AttemptId, DidId, OrgId};
use serde::Serialize;
use sqlx::PgConnection;

use crate::{ASYNC_COMMIT, Result, Store, StoreError, corrupt};

/// A caller ID (DID) row: its number, lifecycle state, health and last use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Did {
    /// row id; `did:<id>` is its event channel (product §9)
    pub id: DidId,
    /// the organization whose campaigns may call and text from it
    pub org_id: OrgId,
    /// the number it calls from, E.164 (unique across organizations)
    pub e164: E164,
    /// `warming`, `active`, `cooling` or `burned` (product §7)
    pub state: DidState,
    /// health score in [0, 1]
    pub health_score: f64,
    /// components of the last score (JSON of `HealthComponents`)
    pub health_components: Option<serde_json::Value>,
    /// calls the last score was computed from
    pub scored_calls: u32,
    /// only calls from here on are scored
    pub scored_since: Option<DateTime<Utc>>,
    /// when it last placed a call: least recently used first (product §5.5)
    pub last_call_at: Option<DateTime<Utc>>,
    /// when it last sent a text: the per-DID gap counts from it (product §6)
    pub last_sms_at: Option<DateTime<Utc>>,
    /// end of the current cooldown
    pub cooldown_until: Option<DateTime<Utc>>,
    /// end of the current warming period
    pub warming_until: Option<DateTime<Utc>>,
    /// calls taken while warming
    pub warming_calls: u32,
    /// when `state` last changed; `None` if it never did
    pub state_changed_at: Option<DateTime<Utc>>,
}

/// A `dids` row as stored; also read as JSON (`row_to_json`), hence `Deserialize`.
#[derive(Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct DidRow {
    id: i64,
    org_id: i64,
    e164: String,
    state: String,
    health_score: f64,
    health_components: Option<serde_json::Value>,
    scored_calls: i32,
    scored_since: Option<DateTime<Utc>>,
    last_call_at: Option<DateTime<Utc>>,
    last_sms_at: Option<DateTime<Utc>>,
    cooldown_until: Option<DateTime<Utc>>,
    warming_until: Option<DateTime<Utc>>,
    warming_calls: i32,
    state_changed_at: Option<DateTime<Utc>>,
}

pub(crate) const DID_COLUMNS: &str = "id, org_id, e164, state, health_score, health_components, scored_calls, scored_since, last_call_at, \
    last_sms_at, cooldown_until, warming_until, warming_calls, state_changed_at";

impl TryFrom<DidRow> for Did {
    type Error = StoreError;
    fn try_from(r: DidRow) -> Result<Self> {
        Ok(Self {
            id: DidId(r.id),
            org_id: OrgId(r.org_id),
            e164: E164::from_stored(r.e164).map_err(corrupt)?,
            state: r.state.parse().map_err(corrupt)?,
            health_score: r.health_score,
            health_components: r.health_components,
            scored_calls: u32::try_from(r.scored_calls).map_err(corrupt)?,
            scored_since: r.scored_since,
            last_call_at: r.last_call_at,
            last_sms_at: r.last_sms_at,
            cooldown_until: r.cooldown_until,
            warming_until: r.warming_until,
            warming_calls: u32::try_from(r.warming_calls).map_err(corrupt)?,
            state_changed_at: r.state_changed_at,
        })
    }
}

impl Did {
    /// This DID as voice selection sees it (`last_used_at` = last call), with its judged
    /// score ([`judged_score`]) and its warming ramp evaluated at `now` ([`within_ramp`]),
    /// under `rule`: [`DidCandidate::is_usable`] then says whether it may place a call.
    pub fn candidate(&self, now: DateTime<Utc>, rule: &CallerIdRule) -> DidCandidate {
        DidCandidate {
            id: self.id,
            e164: self.e164.clone(),
            state: self.state,
            score: judged_score(self.health_score, self.scored_calls, rule.min_calls),
            last_used_at: self.last_call_at,
            within_ramp: within_ramp(
                self.state,
                self.warming_until,
                self.warming_calls,
                now,
                &rule.lifecycle,
            ),
        }
    }

    /// Whether this DID may be used on `channel` now under `rule` (product §5.5, §6): the voice
    /// rule ([`Did::candidate`], [`DidCandidate::is_usable`]); a text is not a call, so the
    /// warming ramp (a share of calls) does not bind SMS — the SMS claim's SQL
    /// (`usable_did_sql`) is this rule for texts, whose per-DID gap is checked beside it.
    pub fn is_usable_on(&self, channel: Channel, now: DateTime<Utc>, rule: &CallerIdRule) -> bool {
        let mut c = self.candidate(now, rule);
        if channel == Channel::Sms {
            c.within_ramp = true;
        }
        c.is_usable(rule.threshold)
    }
}

/// The SQL prefilter of the usable-caller-ID rule on `dids` (product §5.5): a usable state
/// ([`DidState::USABLE`]) and a judged score at or above the threshold — `health_score >=
/// {threshold} OR scored_calls < {min_calls}`, both SQL expressions (parameters). It is the
/// rule without the warming ramp, which needs `now` and is applied in Rust
/// ([`Did::candidate`]): a DID it selects may still be over its ramp, one it leaves out is
/// never usable (tested against [`DidCandidate::is_usable`]).
pub(crate) fn usable_did_sql(threshold: &str, min_calls: &str) -> String {
    format!(
        "{states} AND (health_score >= {threshold} OR scored_calls < {min_calls})",
        states = usable_state_sql()
    )
}

/// `state IN ('active', 'warming')`: the states of [`DidState::USABLE`].
pub(crate) fn usable_state_sql() -> String {
    let states: Vec<String> = DidState::USABLE
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("state IN ({})", states.join(", "))
}

/// Rows with this many DIDs per query at most when listing.
const LIST_LIMIT: i64 = 10_000;

impl Store {
    /// Adds caller ID `e164` to `org`, `active` with score 1.0 (product §7: new DIDs start at 1).
    ///
    /// Errors: [`StoreError::AlreadyExists`] when the number is already registered.
    pub async fn create_did(&self, org: OrgId, e164: &E164, now: DateTime<Utc>) -> Result<Did> {
        let row: DidRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dids (org_id, e164, state_changed_at, created_at) VALUES ($1, $2, $3, $3) RETURNING {DID_COLUMNS}"
        )))
        .bind(org.0)
        .bind(e164.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        row.try_into()
    }

    /// DIDs of `org` (or all), by id.
    ///
    /// Errors: database failures.
    pub async fn dids(&self, org: Option<OrgId>) -> Result<Vec<Did>> {
        let rows: Vec<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DID_COLUMNS} FROM dids WHERE ($1::bigint IS NULL OR org_id = $1) ORDER BY id LIMIT {LIST_LIMIT}"
        )))
        .bind(org.map(|o| o.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The DID `id`; with `org`, only if it belongs to it.
    ///
    /// Errors: [`StoreError::NotFound`].
    pub async fn did(&self, id: DidId, org: Option<OrgId>) -> Result<Did> {
        let row: Option<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DID_COLUMNS} FROM dids WHERE id = $1 AND ($2::bigint IS NULL OR org_id = $2)"
        )))
        .bind(id.0)
        .bind(org.map(|o| o.0))
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or_else(|| StoreError::not_found("DID", id))?
            .try_into()
    }

    /// DIDs of `org` that are due for a lifecycle step at `now` (cooling past its cooldown,
    /// warming past its warming period).
    ///
    /// Errors: database failures.
    pub async fn dids_due_lifecycle(&self, now: DateTime<Utc>) -> Result<Vec<Did>> {
        let rows: Vec<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DID_COLUMNS} FROM dids
             WHERE (state = 'cooling' AND (cooldown_until IS NULL OR cooldown_until <= $1))
                OR (state = 'warming' AND (warming_until IS NULL OR warming_until <= $1))
             ORDER BY id"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Applies a lifecycle transition if the DID is still in `from` (another pod may have
    /// applied it first). Returns whether it changed.
    ///
    /// Errors: database failures.
    pub async fn apply_did_transition(
        &self,
        id: DidId,
        from: DidState,
        t: &DidTransition,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        apply_transition(&mut conn, id, from, t, now).await
    }
}

/// DIDs of `org` in a usable state ([`DidState::USABLE`]), by id: the caller IDs a call may
/// be placed from, before their score and ramp are judged ([`Did::candidate`]).
///
/// Errors: database failures, a stored DID that does not parse.
pub async fn usable_dids(conn: &mut PgConnection, org: OrgId) -> Result<Vec<Did>> {
    let rows: Vec<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DID_COLUMNS} FROM dids WHERE org_id = $1 AND {usable} ORDER BY id",
        usable = usable_state_sql()
    )))
    .bind(org.0)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

#[derive(Clone, sqlx::FromRow)]
struct RescoreRow {
    #[sqlx(flatten)]
    did: DidRow,
    dispositions: Vec<String>,
    durations: Vec<i32>,
    spam: Vec<bool>,
}

/// DID `id` with its most recent calls (newest first) since its `scored_since`, at most
/// `limit`: what a re-score (product §7: score over the last 50 scored calls) needs, read
/// together in one statement and without locks (the re-score stores its result with
/// [`store_score_if_unchanged`]). One DID of [`dids_for_rescore`].
///
/// Errors: [`StoreError::NotFound`], database failures, a stored disposition that does not
/// parse.
pub async fn did_for_rescore(
    conn: &mut PgConnection,
    id: DidId,
    limit: i64,
) -> Result<(Did, Vec<CallSample>)> {
    dids_for_rescore(conn, &[id], limit)
        .await?
        .pop()
        .unwrap_or_else(|| Err(StoreError::not_found("DID", id)))
}

/// [`did_for_rescore`] for each of `ids` (product §7), in one statement: one result per id, in
/// order.
///
/// Errors: per id, [`StoreError::NotFound`] or a stored value that does not parse; for the
/// whole read, database failures.
pub async fn dids_for_rescore(
    conn: &mut PgConnection,
    ids: &[DidId],
    limit: i64,
) -> Result<Vec<Result<(Did, Vec<CallSample>)>>> {
    let wanted: Vec<i64> = ids.iter().map(|d| d.0).collect();
    let rows: Vec<RescoreRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DID_COLUMNS}, r.dispositions, r.durations, r.spam FROM dids CROSS JOIN LATERAL (
             SELECT COALESCE(array_agg(e.disposition ORDER BY e.at DESC, e.id DESC), '{{}}') AS dispositions,
                    COALESCE(array_agg(e.duration_s ORDER BY e.at DESC, e.id DESC), '{{}}') AS durations,
                    COALESCE(array_agg(e.spam_flagged ORDER BY e.at DESC, e.id DESC), '{{}}') AS spam
             FROM (SELECT disposition, duration_s, spam_flagged, at, id FROM did_health_events
                   WHERE did_id = dids.id AND (dids.scored_since IS NULL OR at >= dids.scored_since)
                   ORDER BY at DESC, id DESC LIMIT $2) e) r
         WHERE dids.id = ANY($1)"
    )))
    .bind(&wanted)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    let by_id: std::collections::HashMap<i64, RescoreRow> =
        rows.into_iter().map(|r| (r.did.id, r)).collect();
    Ok(ids
        .iter()
        .map(|id| {
            by_id
                .get(&id.0)
                .cloned()
                .ok_or_else(|| StoreError::not_found("DID", id))?
                .into_scoring()
        })
        .collect())
}

impl RescoreRow {
    fn into_scoring(self) -> Result<(Did, Vec<CallSample>)> {
        let calls = self
            .dispositions
            .iter()
            .zip(&self.durations)
            .zip(&self.spam)
            .map(|((d, dur), spam)| {
                Ok(CallSample {
                    disposition: d.parse::<Disposition>().map_err(corrupt)?,
                    duration_s: u32::try_from(*dur).map_err(corrupt)?,
                    spam_flagged: *spam,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((self.did.try_into()?, calls))
    }
}

/// Stores new scores (product §7) that call for no state change, each `(the DID as the re-score
/// read it, its score)`, in one statement committed asynchronously (a score is recomputed from the
/// health events on the next re-score), each only if the DID's state and scoring start are
/// still those read — the compare-and-set of [`store_score_if_unchanged`] with `change =
/// None`. Returns per item whether it stored.
///
/// Errors: database failures (nothing stored).
pub async fn store_scores_if_unchanged(
    conn: &mut PgConnection,
    items: &[(Did, HealthScore)],
) -> Result<Vec<bool>> {
    let ids: Vec<i64> = items.iter().map(|(d, _)| d.id.0).collect();
    let scores: Vec<f64> = items.iter().map(|(_, s)| s.score).collect();
    let components = items
        .iter()
        .map(|(_, s)| serde_json::to_value(s.components).map_err(corrupt))
        .collect::<Result<Vec<_>>>()?;
    let calls: Vec<i32> = items
        .iter()
        .map(|(_, s)| i32::try_from(s.calls).map_err(corrupt))
        .collect::<Result<_>>()?;
    let states: Vec<&str> = items.iter().map(|(d, _)| d.state.as_str()).collect();
    let since: Vec<Option<DateTime<Utc>>> = items.iter().map(|(d, _)| d.scored_since).collect();
    let stored: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE dids SET health_score = i.score, health_components = i.components, scored_calls = i.calls
         FROM unnest($1::bigint[], $2::float8[], $3::jsonb[], $4::int[], $5::text[], $6::timestamptz[])
              AS i(id, score, components, calls, state, since), {ASYNC_COMMIT}
         WHERE dids.id = i.id AND dids.state = i.state AND dids.scored_since IS NOT DISTINCT FROM i.since
         RETURNING dids.id"
    )))
    .bind(&ids)
    .bind(&scores)
    .bind(&components)
    .bind(&calls)
    .bind(&states)
    .bind(&since)
    .fetch_all(conn)
    .await?;
    Ok(ids.iter().map(|id| stored.contains(id)).collect())
}

/// Stores a new score of `seen` (the DID as the re-score read it) and the state change the
/// score called for, if any (a health action's cooldown or burn, which never restarts
/// scoring) — only if the DID's state and scoring start are still those of `seen`: a
/// compare-and-set, so a change made meanwhile (the lifecycle job, another re-score) is
/// never overwritten and a state change is applied once (product §7 warning / cooldown / burn).
/// Returns whether it stored.
///
/// Errors: database failures.
pub async fn store_score_if_unchanged(
    conn: &mut PgConnection,
    seen: &Did,
    score: &HealthScore,
    change: Option<&DidTransition>,
    now: DateTime<Utc>,
) -> Result<bool> {
    debug_assert!(change.is_none_or(|t| t.scored_since.is_none()));
    let components = serde_json::to_value(score.components).map_err(corrupt)?;
    // A score alone is recomputed from the health events on the next re-score: committed
    // asynchronously. A state change (cooldown, burn, …) is published as an event and
    // decides which caller IDs dial: committed synchronously.
    let (transition, async_commit) = match change {
        Some(_) => (format!(", {}", transition_set(7)), String::new()),
        None => (String::new(), format!("FROM {ASYNC_COMMIT}")),
    };
    let sql = format!(
        "UPDATE dids SET health_score = $2, health_components = $3, scored_calls = $4{transition}
         {async_commit}
         WHERE id = $1 AND state = $5 AND scored_since IS NOT DISTINCT FROM $6"
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(seen.id.0)
        .bind(score.score)
        .bind(components)
        .bind(i32::try_from(score.calls).map_err(corrupt)?)
        .bind(seen.state.as_str())
        .bind(seen.scored_since);
    let q = match change {
        Some(t) => bind_transition(q, t, now),
        None => q,
    };
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// The `SET` list of an `UPDATE dids` applying a [`DidTransition`] whose fields are bound
/// from parameter `$p` on by [`bind_transition`]: state, when it changed, the cooldown or
/// warming end that goes with the new state, the warming ramp restarting, and the scoring
/// start (product §7 lifecycle).
fn transition_set(p: usize) -> String {
    let (to, at, cooldown, warming, since) = (p, p + 1, p + 2, p + 3, p + 4);
    format!(
        "state = ${to}, state_changed_at = ${at},
         cooldown_until = CASE WHEN ${to} = 'cooling' THEN ${cooldown} ELSE NULL END,
         warming_until = CASE WHEN ${to} = 'warming' THEN ${warming} ELSE NULL END,
         warming_calls = CASE WHEN ${to} = 'warming' THEN 0 ELSE warming_calls END,
         scored_since = COALESCE(${since}, scored_since)"
    )
}

/// Binds the five parameters of [`transition_set`], in its order.
fn bind_transition<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    t: &DidTransition,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(t.to.as_str())
        .bind(now)
        .bind(t.cooldown_until)
        .bind(t.warming_until)
        .bind(t.scored_since)
}

/// Applies `t` if DID `id` is still in state `from`, in one compare-and-set statement; a
/// transition that restarts scoring (`scored_since`) also resets the score and its sample.
async fn apply_transition(
    conn: &mut PgConnection,
    id: DidId,
    from: DidState,
    t: &DidTransition,
    now: DateTime<Utc>,
) -> Result<bool> {
    let sql = format!(
        "UPDATE dids SET {},
             health_score = CASE WHEN $7::timestamptz IS NOT NULL THEN 1.0 ELSE health_score END,
             scored_calls = CASE WHEN $7::timestamptz IS NOT NULL THEN 0 ELSE scored_calls END
         WHERE id = $1 AND state = $2",
        transition_set(3)
    );
    let q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(from.as_str());
    Ok(bind_transition(q, t, now)
        .execute(conn)
        .await?
        .rows_affected()
        == 1)
}

/// How many caller IDs each of `orgs` could call with at `now` under `rule` (product §5.5):
/// the SQL prefilter (`usable_did_sql`) reads the candidates, the rule itself
/// ([`DidCandidate::is_usable`], warming ramp included) counts them. Organizations with
/// none are absent.
///
/// Errors: database failures, a stored DID that does not parse.
pub async fn usable_did_counts(
    conn: &mut PgConnection,
    rule: &CallerIdRule,
    orgs: &[OrgId],
    now: DateTime<Utc>,
) -> Result<std::collections::HashMap<OrgId, i64>> {
    let orgs: Vec<i64> = orgs.iter().map(|o| o.0).collect();
    let rows: Vec<DidRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DID_COLUMNS} FROM dids WHERE org_id = ANY($3) AND {usable}",
        usable = usable_did_sql("$1", "$2")
    )))
    .bind(rule.threshold)
    .bind(crate::int_param(rule.min_calls, "health.min_calls")?)
    .bind(&orgs)
    .fetch_all(conn)
    .await?;
    let mut counts = std::collections::HashMap::new();
    for row in rows {
        let did = Did::try_from(row)?;
        if did.candidate(now, rule).is_usable(rule.threshold) {
            *counts.entry(did.org_id).or_default() += 1;
        }
    }
    Ok(counts)
}

/// A spam flag as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpamFlag {
    /// the flagged DID
    pub did_id: DidId,
    /// the flagged call
    pub attempt_id: AttemptId,
    /// its carrier `CallSid`, if it had one
    pub call_sid: Option<String>,
    /// who raised it (`api:token:<id>`, `carrier`, …)
    pub source: String,
    /// free text
    pub note: Option<String>,
    /// when it was raised
    pub at: DateTime<Utc>,
    /// `false` when the call was already flagged (nothing changed)
    pub created: bool,
}

/// Which call a spam flag is about: by attempt id or by carrier `CallSid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlaggedCall {
    /// `call_attempts.id`
    Attempt(AttemptId),
    /// the carrier's call id (`call_attempts.provider_call_sid`), found through `call_sids`
    CallSid(String),
}

impl Store {
    /// Flags one call of DID `did` (of `org`) as reported spam (product §7: feeds the
    /// spam-clean component): marks the attempt and its health event and records who raised
    /// it, in one transaction. Flagging a call twice changes nothing (`created = false`).
    /// The caller re-scores the DID.
    ///
    /// Errors: [`StoreError::NotFound`] when the DID is not `org`'s or the call is not one
    /// of this DID's; database failures.
    pub async fn flag_spam(
        &self,
        did: DidId,
        org: OrgId,
        call: &FlaggedCall,
        source: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SpamFlag> {
        let mut tx = self.pool.begin().await?;
        let (attempt_id, sid): (Option<i64>, Option<String>) = match call {
            FlaggedCall::Attempt(a) => (Some(a.0), None),
            FlaggedCall::CallSid(s) => (None, Some(s.clone())),
        };
        let found: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT a.id, a.provider_call_sid FROM call_attempts a JOIN dids d ON d.id = a.did_id
             WHERE a.did_id = $1 AND d.org_id = $2
               AND (a.id = $3 OR a.id = (SELECT call_attempt_id FROM call_sids WHERE sid = $4)) FOR UPDATE OF a",
        )
        .bind(did.0)
        .bind(org.0)
        .bind(attempt_id)
        .bind(sid.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        let (attempt, call_sid) = found.ok_or_else(|| {
            StoreError::not_found(
                "call of DID",
                match call {
                    FlaggedCall::Attempt(a) => format!("{did} attempt {a}"),
                    FlaggedCall::CallSid(s) => format!("{did} CallSid {s}"),
                },
            )
        })?;
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO spam_flags (did_id, call_attempt_id, source, note, at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (call_attempt_id) DO NOTHING RETURNING id",
        )
        .bind(did.0)
        .bind(attempt)
        .bind(source)
        .bind(note)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("UPDATE call_attempts SET spam_flagged = true WHERE id = $1")
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE did_health_events SET spam_flagged = true WHERE call_attempt_id = $1")
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(SpamFlag {
            did_id: did,
            attempt_id: AttemptId(attempt),
            call_sid,
            source: source.to_owned(),
            note: note.map(str::to_owned),
            at: now,
            created: created.is_some(),
        })
    }
}
