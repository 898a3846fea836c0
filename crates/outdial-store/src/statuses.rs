//! Contact status groups as SQL (product §4, §8), built from the domain's groups
//! ([`ContactStatus::OPEN`], [`ContactStatus::IN_PROGRESS`], [`ContactStatus::FINISHED`],
//! [`ContactStatus::ACTIVE`]) so a status list is written once, and the predicates that
//! read a campaign's contacts through the partial index of each group.
//!
//! `contacts` has no full index by campaign, because every status change would write an
//! entry into it (migration `20261122000006`): a query reads a campaign's contacts through
//! `contacts_campaign_due` (queued), `contacts_active` ([`in_progress`]) and
//! `contacts_campaign_finished` ([`finished`]), and must name exactly the statuses each
//! holds (tested against the indexes' predicates).

use std::sync::LazyLock;

use outdial_domain::contact::ContactStatus;

/// `'a', 'b', …`: `statuses` as an SQL list of their stored texts.
fn sql_list(statuses: &[ContactStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`ContactStatus::OPEN`] as an SQL list.
pub(crate) fn open() -> &'static str {
    static LIST: LazyLock<String> = LazyLock::new(|| sql_list(&ContactStatus::OPEN));
    &LIST
}

/// [`ContactStatus::IN_PROGRESS`] as an SQL list: what the partial index `contacts_active`
/// holds.
pub(crate) fn in_progress() -> &'static str {
    static LIST: LazyLock<String> = LazyLock::new(|| sql_list(&ContactStatus::IN_PROGRESS));
    &LIST
}

/// [`ContactStatus::FINISHED`] as an SQL list: what the partial index
/// `contacts_campaign_finished` holds.
pub(crate) fn finished() -> &'static str {
    static LIST: LazyLock<String> = LazyLock::new(|| sql_list(&ContactStatus::FINISHED));
    &LIST
}

/// [`ContactStatus::ACTIVE`] (`locked`, `dialing`) as an SQL list: the contacts that hold
/// capacity and a SIP channel (product §4).
pub(crate) fn active() -> &'static str {
    static LIST: LazyLock<String> = LazyLock::new(|| sql_list(&ContactStatus::ACTIVE));
    &LIST
}

/// SQL condition: campaign `campaign` of organization `org` (SQL expressions of the outer
/// query) has an open contact — queued or [`in_progress`] (product §8) — that also meets `and`
/// (an SQL condition on alias `o`, or `TRUE`). One `EXISTS` per partial index
/// (`contacts_campaign_due`, `contacts_active`), each stopping at its first row.
pub(crate) fn any_open_contact_sql(campaign: &str, org: &str, and: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM contacts o WHERE o.campaign_id = {campaign} AND o.status = 'queued' AND {and})
          OR EXISTS (SELECT 1 FROM contacts o WHERE o.org_id = {org} AND o.campaign_id = {campaign}
                     AND o.status IN ({in_progress}) AND {and}))",
        in_progress = in_progress()
    )
}

/// SQL condition on a `contacts` row: it belongs to campaign `campaign` of organization
/// `org` (SQL expressions), whatever its status: one arm per partial index, which the
/// planner reads together (a bitmap OR).
pub(crate) fn campaign_contacts_sql(campaign: &str, org: &str) -> String {
    format!(
        "campaign_id = {campaign} AND (status = 'queued'
             OR (org_id = {org} AND status IN ({in_progress}))
             OR status IN ({finished}))",
        in_progress = in_progress(),
        finished = finished()
    )
}

#[cfg(test)]
mod tests {
    use super::{finished, in_progress};

    fn list(sql: &str) -> Vec<&str> {
        let mut v: Vec<&str> = sql
            .split(',')
            .map(|s| s.trim().trim_matches('\''))
            .collect();
        v.sort_unstable();
        v
    }

    /// The partial indexes hold exactly the status groups the queries name: a query's arm
    /// that named a status its index does not hold would read the table instead.
    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn the_partial_indexes_hold_the_status_groups(pool: sqlx::PgPool) {
        for (index, group) in [
            ("contacts_active", in_progress()),
            ("contacts_campaign_finished", finished()),
        ] {
            let predicate: String = sqlx::query_scalar(
                "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
            )
            .bind(index)
            .fetch_one(&pool)
            .await
            .expect("index predicate");
            let mut held: Vec<&str> = predicate.split('\'').skip(1).step_by(2).collect();
            held.sort_unstable();
            assert_eq!(held, list(group), "{index}: {predicate}");
        }
    }
}
