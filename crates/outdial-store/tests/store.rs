//! Store behaviour on a real Postgres: one fresh, migrated database per test.

use chrono::{DateTime, Duration, Utc};
use outdial_domain::campaign::{CampaignCommand, CampaignStatus};
use outdial_domain::contact::{ContactStatus, Disposition, EndReason};
use outdial_domain::did::{DidState, DidTransition};
use outdial_domain::phone::E164;
use outdial_domain::{AttemptId, CampaignId, ContactId, OrgId};
use outdial_store::campaigns::NewCampaign;
use outdial_store::contacts::{NewContact, Rejection};
use outdial_store::dialing::{self, AttemptOutcome, NewAttempt};
use outdial_store::dids;
use outdial_store::{Store, StoreError};
use sqlx::PgPool;

fn t0() -> DateTime<Utc> {
    "2026-07-01T16:00:00Z".parse().expect("timestamp")
}

/// `raw` as an E.164 number (a test constant).
fn num(raw: &str) -> E164 {
    E164::parse(raw).expect("a valid test number")
}

fn contact(row: usize, phones: &[&str]) -> NewContact {
    NewContact {
        external_id: Some(format!("C{row}")),
        name: None,
        phone_numbers: phones.iter().map(|p| num(p)).collect(),
        phone_timezones: phones
            .iter()
            .map(|_| "America/New_York".to_owned())
            .collect(),
        row,
    }
}

/// A new DID `e164` (an E.164 string) of `org`.
async fn did(store: &Store, org: OrgId, e164: &str) -> dids::Did {
    store.create_did(org, &num(e164), t0()).await.expect("did")
}

async fn setup(pool: PgPool, contacts: usize) -> (Store, OrgId, CampaignId) {
    let store = Store::new(pool);
    let org = store.create_org("acme", None, t0()).await.expect("org");
    let campaign = store
        .create_campaign(&NewCampaign::voice(org.id, "spring"), t0())
        .await
        .expect("campaign");
    let rows: Vec<NewContact> = (0..contacts)
        .map(|i| contact(i + 1, &[&format!("+1212555{:04}", 1000 + i)]))
        .collect();
    store
        .import_contacts(
            org.id,
            Some(campaign.id),
            "c.csv",
            contacts,
            &rows,
            vec![],
            0,
            t0(),
        )
        .await
        .expect("import");
    (store, org.id, campaign.id)
}

/// product §11 dedup holds between imports running at once: each primary number enters the
/// campaign once, whichever import wins it, and the other reports it as a duplicate.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn concurrent_imports_never_add_a_number_twice(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 0).await;
    let file = |from: usize| -> Vec<NewContact> {
        (0..40)
            .map(|i| contact(i + 1, &[&format!("+1212555{:04}", 2000 + from + i)]))
            .collect()
    };
    let (a, b) = (file(0), file(20)); // numbers 2020..2039 are in both
    let (ra, rb) = tokio::join!(
        store.import_contacts(org, Some(campaign), "a.csv", 40, &a, vec![], 0, t0()),
        store.import_contacts(org, Some(campaign), "b.csv", 40, &b, vec![], 0, t0())
    );
    let (ra, rb) = (ra.expect("import a"), rb.expect("import b"));
    assert_eq!(ra.imported + rb.imported, 60, "{ra:?} {rb:?}");
    assert_eq!(ra.duplicates + rb.duplicates, 20);
    let contacts = store.campaign_contacts(campaign).await.expect("contacts");
    let mut primaries: Vec<&str> = contacts
        .iter()
        .map(|c| c.phone_numbers[0].as_str())
        .collect();
    primaries.sort_unstable();
    primaries.dedup();
    assert_eq!((contacts.len(), primaries.len()), (60, 60));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn import_reports_duplicates_against_the_campaign_and_records_the_upload(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 3).await;
    store
        .add_suppressions(org, &[num("+12125551001")], "dnc", t0())
        .await
        .expect("dnc");
    let again = vec![
        contact(1, &["+12125551000"]),
        contact(2, &["+12125559999", "+12125559998"]),
        contact(4, &["+12125551001"]),
    ];
    let rejected = vec![Rejection {
        row: 3,
        error: "malformed phone".into(),
    }];
    let report = store
        .import_contacts(
            org,
            Some(campaign),
            "again.csv",
            4,
            &again,
            rejected,
            1,
            t0(),
        )
        .await
        .expect("import");
    assert_eq!(
        (
            report.rows_read,
            report.imported,
            report.malformed,
            report.duplicates,
            report.suppressed
        ),
        (4, 1, 1, 2, 0)
    );
    let rows: Vec<usize> = report.rejections.iter().map(|r| r.row).collect();
    assert_eq!(rows, vec![1, 3, 4], "rejections sorted by row");
    let contacts = store.campaign_contacts(campaign).await.expect("contacts");
    assert_eq!(contacts.len(), 4);
    assert_eq!(
        contacts[3].phone_numbers,
        vec!["+12125559999", "+12125559998"],
        "number order kept"
    );
    assert_eq!(
        store.campaign_timezones(campaign).await.expect("zones"),
        vec!["America/New_York"]
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn two_concurrent_cycles_never_admit_the_same_contact(pool: PgPool) {
    let (store, _org, campaign) = setup(pool, 200).await;
    let eligible = vec![(campaign, "America/New_York".to_owned())];
    let later = t0() + Duration::seconds(1);
    let ids = |c: &[dialing::Candidate]| c.iter().map(|c| c.contact_id).collect::<Vec<_>>();
    let mut a = store.pool().begin().await.expect("tx a");
    let mut b = store.pool().begin().await.expect("tx b");
    // The fetch takes no locks: both cycles see the same due contacts.
    let got_a = dialing::fetch_candidates(&mut a, later, &[(campaign, 150)], &eligible, 0)
        .await
        .expect("fetch a");
    let got_b = dialing::fetch_candidates(&mut b, later, &[(campaign, 200)], &eligible, 0)
        .await
        .expect("fetch b");
    assert_eq!((got_a.len(), got_b.len()), (150, 200));
    // Earliest due first: a got the first 150 by (retry_after, id).
    let mut sorted: Vec<i64> = got_a.iter().map(|c| c.contact_id.0).collect();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        got_a.iter().map(|c| c.contact_id.0).collect::<Vec<_>>()
    );
    // Admission is where they part: b skips the rows a holds.
    let locked_a = dialing::lock_contacts(&mut a, &ids(&got_a), later)
        .await
        .expect("lock a");
    let locked_b = dialing::lock_contacts(&mut b, &ids(&got_b), later)
        .await
        .expect("lock b");
    assert_eq!(
        (locked_a.len(), locked_b.len()),
        (150, 50),
        "b skips a's rows"
    );
    let held_a: std::collections::HashSet<ContactId> = locked_a.iter().copied().collect();
    assert!(
        locked_b.iter().all(|c| !held_a.contains(c)),
        "no contact admitted by both"
    );
    a.commit().await.expect("commit a");
    b.rollback().await.expect("rollback b");
    // After a commits, its contacts are no longer queued: neither fetched nor admitted again.
    let mut c = store.pool().begin().await.expect("tx c");
    let got_c = dialing::fetch_candidates(&mut c, later, &[(campaign, 200)], &eligible, 0)
        .await
        .expect("fetch c");
    assert_eq!(
        got_c.len(),
        50,
        "admitted contacts are no longer candidates"
    );
    let again = dialing::lock_contacts(&mut c, &ids(&got_a), later)
        .await
        .expect("lock c");
    assert!(again.is_empty(), "a committed admission is not taken twice");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn candidates_respect_due_time_and_eligible_zones(pool: PgPool) {
    let (store, _org, campaign) = setup(pool, 5).await;
    let mut tx = store.pool().begin().await.expect("tx");
    let before = t0() - Duration::seconds(1);
    let none = dialing::fetch_candidates(
        &mut tx,
        before,
        &[(campaign, 10)],
        &[(campaign, "America/New_York".into())],
        0,
    )
    .await
    .expect("fetch");
    assert!(none.is_empty(), "not due before import time");
    let closed = dialing::fetch_candidates(
        &mut tx,
        t0(),
        &[(campaign, 10)],
        &[(campaign, "America/Chicago".into())],
        0,
    )
    .await
    .expect("fetch");
    assert!(closed.is_empty(), "zone not eligible");
}

/// Admits the next due contact of dialing `campaign` as a dispatch cycle would (one
/// candidate, locked) and reads it back as a tick does.
async fn admit_one(conn: &mut sqlx::PgConnection, campaign: CampaignId) -> dialing::NextAdmitted {
    let cands = dialing::fetch_candidates(
        &mut *conn,
        t0(),
        &[(campaign, 1)],
        &[(campaign, "America/New_York".into())],
        0,
    )
    .await
    .expect("fetch");
    dialing::lock_contacts(&mut *conn, &[cands[0].contact_id], t0())
        .await
        .expect("lock");
    dialing::next_admitted(&mut *conn, campaign)
        .await
        .expect("next")
        .expect("an admitted contact")
}

/// Starts `campaign`, admits one of its contacts and returns it (as a tick reads it) with the
/// attempt a tick would record for it from a warming caller ID.
async fn admitted_with_attempt(
    store: &Store,
    org: OrgId,
    campaign: CampaignId,
) -> (outdial_store::contacts::Contact, NewAttempt) {
    let did = did(store, org, "+12125550001").await;
    // Warming, so that its ramp counter shows how many calls were recorded on it.
    sqlx::query("UPDATE dids SET state = 'warming' WHERE id = $1")
        .bind(did.id.0)
        .execute(store.pool())
        .await
        .expect("warming");
    store
        .transition_campaign(campaign, None, CampaignCommand::Start, "test", None, t0())
        .await
        .expect("start: ticks only claim contacts of a dialing campaign");
    let mut conn = store.pool().acquire().await.expect("conn");
    let next = admit_one(&mut conn, campaign).await;
    // The same statement gives the organization's usable caller IDs and the campaign's row
    // version, which any change to the campaign row moves (the tick's settings cache).
    assert_eq!(
        next.org_dids.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![did.id]
    );
    sqlx::query("UPDATE campaigns SET calls_per_second = calls_per_second WHERE id = $1")
        .bind(campaign.0)
        .execute(&mut *conn)
        .await
        .expect("touch campaign");
    let again = dialing::next_admitted(&mut conn, campaign)
        .await
        .expect("next again")
        .expect("still admitted");
    assert_ne!(again.campaign_version, next.campaign_version);
    assert_eq!(again.claimed, next.claimed);
    let c = next.claimed.contact;
    let new = NewAttempt {
        contact_id: c.id,
        attempt_index: c.attempt_count,
        org_id: org,
        did_id: did.id,
        from_number: did.e164.clone(),
        to_number: c.phone_numbers[0].clone(),
        channel_pool: "campaign".into(),
    };
    (c, new)
}

async fn dialing_attempt(
    store: &Store,
    org: OrgId,
    campaign: CampaignId,
) -> (ContactId, AttemptId) {
    let (c, new) = admitted_with_attempt(store, org, campaign).await;
    let mut conn = store.pool().acquire().await.expect("conn");
    let a = dialing::start_admitted(&mut conn, &new, t0())
        .await
        .expect("attempt")
        .expect("the contact was admitted");
    // A job that runs twice: the contact is dialing now, so nothing is started again.
    assert_eq!(
        dialing::start_admitted(&mut conn, &new, t0())
            .await
            .expect("attempt again"),
        None,
        "a started contact is not started twice"
    );
    assert!(
        dialing::next_admitted(&mut conn, campaign)
            .await
            .expect("next")
            .is_none()
    );
    let status: String = sqlx::query_scalar("SELECT status FROM contacts WHERE id = $1")
        .bind(c.id.0)
        .fetch_one(&mut *conn)
        .await
        .expect("status");
    assert_eq!(status, "dialing");
    (c.id, a.id)
}

fn outcome(d: Disposition, by: &str) -> AttemptOutcome {
    AttemptOutcome {
        disposition: d,
        carrier_status: None,
        answered_by: None,
        duration_s: Some(0),
        call_sid: None,
        completed_by: by.parse().expect("a completion source"),
        error: None,
        spam_flagged: false,
    }
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn completion_happens_exactly_once_and_resolves_the_contact(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 1).await;
    let (contact, attempt) = dialing_attempt(&store, org, campaign).await;
    assert!(
        store
            .begin_originate(attempt, t0())
            .await
            .expect("originate")
            .is_some()
    );
    assert!(
        store
            .begin_originate(attempt, t0())
            .await
            .expect("originate")
            .is_none(),
        "never originate twice"
    );
    let now = t0() + Duration::seconds(30);
    let done = store
        .complete_attempt(attempt, &outcome(Disposition::NoAnswer, "webhook"), now)
        .await
        .expect("complete");
    let done = done.expect("first completion wins");
    assert_eq!(done.contact_status.as_str(), "queued");
    assert!(
        !done.campaign_finished,
        "a contact queued for a retry keeps its campaign open"
    );
    assert!(
        store
            .complete_attempt(attempt, &outcome(Disposition::Timeout, "timeout"), now)
            .await
            .expect("complete")
            .is_none(),
        "timeout after webhook is a no-op"
    );
    let c = store.contact(contact).await.expect("contact");
    assert_eq!(
        (
            c.status.as_str(),
            c.attempt_count,
            c.disposition.map(|x| x.as_str())
        ),
        ("queued", 1, Some("no_answer"))
    );
    assert_eq!(c.retry_after, now + Duration::minutes(60));
    let a = store.attempt(attempt).await.expect("attempt");
    assert_eq!(
        (a.status.as_str(), a.completed_by.map(|x| x.as_str())),
        ("completed", Some("webhook"))
    );
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_last_contacts_final_outcome_finishes_the_campaign_marks_the_did_once_and_records_its_health(
    pool: PgPool,
) {
    let (store, org, campaign) = setup(pool, 1).await;
    let (_, attempt) = dialing_attempt(&store, org, campaign).await;
    // dialing_attempt started the contact twice (the second did nothing): the DID counts one call.
    let (last_call, warming_calls): (Option<DateTime<Utc>>, i32) =
        sqlx::query_as("SELECT last_call_at, warming_calls FROM dids WHERE org_id = $1")
            .bind(org.0)
            .fetch_one(store.pool())
            .await
            .expect("did");
    assert_eq!((last_call, warming_calls), (Some(t0()), 1));
    let done = store
        .complete_attempt(
            attempt,
            &outcome(Disposition::HumanConnected, "webhook"),
            t0(),
        )
        .await
        .expect("complete")
        .expect("first completion");
    assert_eq!(done.contact_status.as_str(), "completed");
    assert!(done.campaign_finished, "no other contact is open");
    // The completion wrote the caller ID's health event; a second completion neither ends
    // the attempt again nor writes a second event.
    assert!(
        store
            .complete_attempt(attempt, &outcome(Disposition::Timeout, "timeout"), t0())
            .await
            .expect("second completion")
            .is_none()
    );
    let events: Vec<(i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT did_id, disposition, at FROM did_health_events WHERE call_attempt_id = $1",
    )
    .bind(attempt.0)
    .fetch_all(store.pool())
    .await
    .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].0, events[0].1.as_str(), events[0].2),
        (done.attempt.did_id.expect("did").0, "human_connected", t0())
    );
    assert!(matches!(
        store
            .complete_attempt(
                AttemptId(attempt.0 + 1_000),
                &outcome(Disposition::Failed, "webhook"),
                t0()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The stats worker's single read gives what the three separate reads give, and scopes the
/// campaign to its organization like [`Store::campaign`].
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn campaign_figures_match_the_separate_reads(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 3).await;
    let empty = store
        .campaign_figures(campaign, Some(org), t0())
        .await
        .expect("figures");
    assert_eq!(empty.attempts.attempts, 0);
    assert_eq!(empty.attempts.first_at, None);
    let (_, attempt) = dialing_attempt(&store, org, campaign).await;
    let now = t0() + Duration::seconds(30);
    store
        .complete_attempt(
            attempt,
            &outcome(Disposition::HumanConnected, "webhook"),
            now,
        )
        .await
        .expect("complete")
        .expect("completed");
    let f = store
        .campaign_figures(campaign, Some(org), now)
        .await
        .expect("figures");
    assert_eq!(
        f.campaign,
        store.campaign(campaign, None).await.expect("campaign")
    );
    let counts = store.contact_counts(campaign).await.expect("counts");
    assert_eq!(f.counts, counts);
    assert_eq!(
        counts
            .iter()
            .map(|c| (
                c.status.as_str(),
                c.disposition.map(|x| x.as_str()),
                c.count
            ))
            .collect::<Vec<_>>(),
        vec![
            ("completed", Some("human_connected"), 1),
            ("queued", None, 2)
        ]
    );
    let attempts = store
        .attempt_figures(campaign, now)
        .await
        .expect("attempts");
    assert_eq!(f.attempts, attempts);
    assert_eq!((attempts.attempts, attempts.answered), (1, 1));
    let other = store.create_org("other", None, t0()).await.expect("org");
    for (id, org) in [(campaign, Some(other.id)), (CampaignId(999_999), None)] {
        assert!(
            matches!(
                store.campaign_figures(id, org, now).await,
                Err(StoreError::NotFound { .. })
            ),
            "campaign {id} for {org:?}"
        );
    }
}

/// After [`dialing_attempt`]: admits and starts the campaign's next contact from the same
/// caller ID.
async fn next_dialing_attempt(store: &Store, org: OrgId, campaign: CampaignId) -> AttemptId {
    let (did, e164): (i64, String) = sqlx::query_as("SELECT id, e164 FROM dids WHERE org_id = $1")
        .bind(org.0)
        .fetch_one(store.pool())
        .await
        .expect("did");
    let mut conn = store.pool().acquire().await.expect("conn");
    let c = admit_one(&mut conn, campaign).await.claimed.contact;
    let new = NewAttempt {
        contact_id: c.id,
        attempt_index: c.attempt_count,
        org_id: org,
        did_id: outdial_domain::DidId(did),
        from_number: num(&e164),
        to_number: c.phone_numbers[0].clone(),
        channel_pool: "campaign".into(),
    };
    dialing::start_admitted(&mut conn, &new, t0())
        .await
        .expect("attempt")
        .expect("started")
        .id
}

/// A batch completes each attempt as one completion would: the first item for an attempt
/// wins, an already completed attempt gives `None`, an unknown one its own `NotFound`
/// without failing the others; the last two contacts closed by one batch both see their
/// campaign finished (neither counts the other, still `dialing` in the statement's snapshot,
/// as open).
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_batch_of_completions_resolves_each_attempt_once(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 3).await;
    let (_, first) = dialing_attempt(&store, org, campaign).await;
    let second = next_dialing_attempt(&store, org, campaign).await;
    let third = next_dialing_attempt(&store, org, campaign).await;
    let now = t0() + Duration::seconds(30);
    let human = outcome(Disposition::HumanConnected, "webhook");
    let results = store
        .complete_attempts(&[(first, outcome(Disposition::NoAnswer, "webhook"), now)])
        .await
        .expect("batch");
    assert!(
        matches!(&results[..], [Ok(Some(c))] if c.contact_status.as_str() == "queued" && !c.campaign_finished)
    );
    // The retried contact is queued again: make it finished, so that the batch below
    // closes the campaign's last two open contacts.
    sqlx::query("UPDATE contacts SET status = 'exhausted' WHERE status = 'queued'")
        .execute(store.pool())
        .await
        .expect("finish the rest");
    let results = store
        .complete_attempts(&[
            (second, human.clone(), now),
            (first, human.clone(), now),
            (AttemptId(999_999), human.clone(), now),
            (second, outcome(Disposition::Timeout, "timeout"), now),
            (third, human.clone(), now),
        ])
        .await
        .expect("batch");
    let summary: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(Some(c)) => format!(
                "{} {} finished={}",
                c.attempt.id, c.contact_status, c.campaign_finished
            ),
            Ok(None) => "none".into(),
            Err(StoreError::NotFound { .. }) => "not found".into(),
            Err(e) => format!("error {e}"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            format!("{} completed finished=true", second.0),
            "none".into(),
            "not found".into(),
            "none".into(),
            format!("{} completed finished=true", third.0),
        ]
    );
    let a = store.attempt(second).await.expect("attempt");
    assert_eq!(
        (
            a.disposition.map(|x| x.as_str()),
            a.completed_by.map(|x| x.as_str())
        ),
        (Some("human_connected"), Some("webhook")),
        "the first item for an attempt wins"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM did_health_events")
        .fetch_one(store.pool())
        .await
        .expect("events");
    assert_eq!(events, 3, "one health event per completed attempt");
}

/// One statement records a batch of call SIDs: originating attempts become in progress, an
/// id already recorded is kept, an unknown attempt changes nothing.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn call_sids_are_recorded_in_one_batch(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 2).await;
    let (_, first) = dialing_attempt(&store, org, campaign).await;
    let second = next_dialing_attempt(&store, org, campaign).await;
    for a in [first, second] {
        store
            .begin_originate(a, t0())
            .await
            .expect("originate")
            .expect("pending");
    }
    let results = store
        .record_call_sids(&[
            (first, "CA1".into()),
            (second, "CA2".into()),
            (AttemptId(999_999), "CA3".into()),
        ])
        .await
        .expect("sids");
    assert_eq!(results.len(), 3);
    store
        .record_call_sids(&[(first, "CA-later".into())])
        .await
        .expect("again");
    for (a, sid) in [(first, "CA1"), (second, "CA2")] {
        let a = store.attempt(a).await.expect("attempt");
        assert_eq!(
            (a.status.as_str(), a.provider_call_sid.as_deref()),
            ("in_progress", Some(sid))
        );
        // The call id finds its attempt (a spam flag naming the call by CallSid).
        let did = a.did_id.expect("caller ID");
        let flag = store
            .flag_spam(
                did,
                org,
                &dids::FlaggedCall::CallSid(sid.into()),
                "test",
                None,
                t0(),
            )
            .await
            .expect("flag by CallSid");
        assert_eq!(
            (flag.attempt_id, flag.call_sid.as_deref()),
            (a.id, Some(sid))
        );
    }
    let ignored = store
        .flag_spam(
            store.attempt(first).await.expect("a").did_id.expect("did"),
            org,
            &dids::FlaggedCall::CallSid("CA-later".into()),
            "test",
            None,
            t0(),
        )
        .await;
    assert!(
        matches!(ignored, Err(StoreError::NotFound { .. })),
        "the id not kept finds nothing: {ignored:?}"
    );
}

/// A call id first reported by the completing callback (the originate response's was lost)
/// is recorded by the completion and finds its attempt.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_call_id_first_seen_at_completion_finds_its_attempt(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 1).await;
    let (_, id) = dialing_attempt(&store, org, campaign).await;
    let done = AttemptOutcome {
        call_sid: Some("CA-final".into()),
        ..outcome(Disposition::HumanConnected, "webhook")
    };
    store
        .complete_attempt(id, &done, t0())
        .await
        .expect("complete")
        .expect("first completion");
    let a = store.attempt(id).await.expect("attempt");
    let flag = store
        .flag_spam(
            a.did_id.expect("did"),
            org,
            &dids::FlaggedCall::CallSid("CA-final".into()),
            "test",
            None,
            t0(),
        )
        .await
        .expect("flag by CallSid");
    assert_eq!(flag.attempt_id, id);
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_contact_withdrawn_while_checked_is_not_started(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 1).await;
    let (c, new) = admitted_with_attempt(&store, org, campaign).await;
    let mut conn = store.pool().acquire().await.expect("conn");
    // Meanwhile the contact goes back to queued (a stale-lock sweep, a pause).
    assert!(
        dialing::requeue_admitted(&mut conn, &c, t0(), t0())
            .await
            .expect("requeue")
    );
    assert_eq!(
        dialing::start_admitted(&mut conn, &new, t0())
            .await
            .expect("start"),
        None
    );
    assert!(
        !dialing::end_contact(
            &mut conn,
            &c,
            ContactStatus::Locked,
            ContactStatus::Cancelled,
            EndReason::Dnc,
            t0()
        )
        .await
        .expect("end"),
        "a queued contact is not ended as if it were admitted"
    );
    let (status, attempts, last_call): (String, i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT c.status, (SELECT count(*) FROM call_attempts a WHERE a.contact_id = c.id),
                (SELECT last_call_at FROM dids WHERE id = $2)
         FROM contacts c WHERE c.id = $1",
    )
    .bind(c.id.0)
    .bind(new.did_id.0)
    .fetch_one(&mut *conn)
    .await
    .expect("state");
    assert_eq!((status.as_str(), attempts, last_call), ("queued", 0, None));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_rescore_does_not_overwrite_a_state_change_made_after_its_read(pool: PgPool) {
    let (store, org, _campaign) = setup(pool, 0).await;
    let did = did(&store, org, "+12125550001").await;
    let mut conn = store.pool().acquire().await.expect("conn");
    let (seen, calls) = dids::did_for_rescore(&mut conn, did.id, 100)
        .await
        .expect("read");
    assert!(calls.is_empty());
    let score = outdial_domain::health::score(&calls);
    let burn = DidTransition {
        to: DidState::Burned,
        cooldown_until: None,
        warming_until: None,
        scored_since: None,
    };
    // Meanwhile the DID is put into a cooldown (another re-score, the lifecycle job).
    sqlx::query("UPDATE dids SET state = 'cooling' WHERE id = $1")
        .bind(did.id.0)
        .execute(&mut *conn)
        .await
        .expect("cooling");
    assert!(
        !dids::store_score_if_unchanged(&mut conn, &seen, &score, Some(&burn), t0())
            .await
            .expect("store"),
        "the read is stale: nothing stored"
    );
    let (now_seen, _) = dids::did_for_rescore(&mut conn, did.id, 100)
        .await
        .expect("read");
    assert_eq!(now_seen.state, DidState::Cooling);
    assert!(
        dids::store_score_if_unchanged(&mut conn, &now_seen, &score, None, t0())
            .await
            .expect("store"),
        "a fresh read stores"
    );
    assert!(
        matches!(
            dids::did_for_rescore(&mut conn, outdial_domain::DidId(did.id.0 + 1), 100).await,
            Err(StoreError::NotFound { .. })
        ),
        "an unknown DID"
    );
}

/// The batched re-score: one read answers each DID (an unknown one with its own
/// `NotFound`), and one compare-and-set stores each score whose read is still current and
/// only those.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn rescores_read_and_store_in_batches(pool: PgPool) {
    let (store, org, _campaign) = setup(pool, 0).await;
    let a = did(&store, org, "+12125550001").await;
    let b = did(&store, org, "+12125550002").await;
    let mut conn = store.pool().acquire().await.expect("conn");
    let unknown = outdial_domain::DidId(b.id.0 + 100);
    let reads = dids::dids_for_rescore(&mut conn, &[b.id, unknown, a.id], 100)
        .await
        .expect("read");
    assert!(matches!(reads[1], Err(StoreError::NotFound { .. })));
    let seen: Vec<_> = [&reads[0], &reads[2]]
        .into_iter()
        .map(|r| r.as_ref().expect("read").0.clone())
        .collect();
    assert_eq!(
        seen.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![b.id, a.id],
        "in the order asked"
    );
    // Meanwhile `b` goes into a cooldown: its read is stale.
    sqlx::query("UPDATE dids SET state = 'cooling' WHERE id = $1")
        .bind(b.id.0)
        .execute(&mut *conn)
        .await
        .expect("cooling");
    let mut score = outdial_domain::health::score(&[]);
    score.score = 0.42;
    let items: Vec<_> = seen.iter().map(|d| (d.clone(), score)).collect();
    let stored = dids::store_scores_if_unchanged(&mut conn, &items)
        .await
        .expect("store");
    assert_eq!(stored, vec![false, true]);
    let scores: Vec<f64> =
        sqlx::query_scalar("SELECT health_score FROM dids WHERE id = ANY($1) ORDER BY id")
            .bind(vec![a.id.0, b.id.0])
            .fetch_all(&mut *conn)
            .await
            .expect("scores");
    assert_eq!(scores[0], 0.42, "a's read was current: stored");
    assert_ne!(scores[1], 0.42, "b changed since the read: not stored");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn stale_locks_are_swept(pool: PgPool) {
    let (store, _org, campaign) = setup(pool, 2).await;
    let mut tx = store.pool().begin().await.expect("tx");
    let cands = dialing::fetch_candidates(
        &mut tx,
        t0(),
        &[(campaign, 2)],
        &[(campaign, "America/New_York".into())],
        0,
    )
    .await
    .expect("fetch");
    let ids: Vec<ContactId> = cands.iter().map(|c| c.contact_id).collect();
    dialing::lock_contacts(&mut tx, &ids[..1], t0())
        .await
        .expect("lock");
    dialing::lock_contacts(&mut tx, &ids[1..], t0() + Duration::seconds(100))
        .await
        .expect("lock");
    let swept = dialing::sweep_stale_locks(
        &mut tx,
        t0() + Duration::seconds(1),
        t0() + Duration::seconds(121),
    )
    .await
    .expect("sweep");
    assert_eq!(swept.iter().map(|h| h.0).collect::<Vec<_>>(), vec![ids[0]]);
    tx.commit().await.expect("commit");
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn transitions_follow_the_state_machine_and_are_recorded(pool: PgPool) {
    let (store, org, campaign) = setup(pool, 3).await;
    let start = store
        .transition_campaign(
            campaign,
            Some(org),
            CampaignCommand::Start,
            "test",
            None,
            t0(),
        )
        .await
        .expect("start");
    assert_eq!(
        (start.from, start.campaign.status),
        (CampaignStatus::Created, CampaignStatus::Dialing)
    );
    let err = store
        .transition_campaign(
            campaign,
            Some(org),
            CampaignCommand::Resume,
            "test",
            None,
            t0(),
        )
        .await
        .expect_err("illegal");
    assert!(
        matches!(err, StoreError::IllegalTransition(e) if e.current == CampaignStatus::Dialing)
    );
    let other_org = store.create_org("other", None, t0()).await.expect("org");
    assert!(matches!(
        store
            .transition_campaign(
                campaign,
                Some(other_org.id),
                CampaignCommand::Pause,
                "x",
                None,
                t0()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let cancel = store
        .transition_campaign(
            campaign,
            None,
            CampaignCommand::Cancel,
            "cli",
            Some("operator"),
            t0(),
        )
        .await
        .expect("cancel");
    assert_eq!(cancel.cancelled_contacts, 3, "queued contacts cancelled");
    let log = store.campaign_transitions(campaign).await.expect("log");
    assert_eq!(
        log.iter().map(|t| t.to_status.as_str()).collect::<Vec<_>>(),
        vec!["dialing", "cancelled"]
    );
    assert_eq!(log[1].reason.as_deref(), Some("operator"));
}

#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn concurrency_limit_bounds(pool: PgPool) {
    let store = Store::new(pool);
    let org = store.create_org("acme", None, t0()).await.expect("org");
    assert_eq!(org.concurrency_limit, 10);
    assert!(matches!(
        store.set_concurrency_limit(org.id, 0).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_concurrency_limit(org.id, 10_001).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store
            .set_concurrency_limit(org.id, 10_000)
            .await
            .expect("max")
            .concurrency_limit,
        10_000
    );
    assert!(matches!(
        store.create_org("acme", None, t0()).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

/// The fleet's sessions run without JIT compilation: compiling a generic plan of the
/// dispatch cycle's candidate read cost ~20 ms a cycle (docs/BENCHMARKS.md, dispatch findings).
#[tokio::test]
async fn fleet_sessions_run_without_jit() {
    let url = outdial_test_support::admin_database_url();
    let store = Store::connect(&url, 1).await.expect("connect");
    let jit: String = sqlx::query_scalar("SHOW jit")
        .fetch_one(store.pool())
        .await
        .expect("show jit");
    assert_eq!(jit, "off");
}

/// A URL that does not parse is an error, not a panic.
#[tokio::test]
async fn a_malformed_database_url_is_an_error() {
    let err = Store::connect("postgres://[bad", 1)
        .await
        .expect_err("malformed URL");
    assert!(
        matches!(err, StoreError::Db(sqlx::Error::Configuration(_))),
        "{err:?}"
    );
}

/// A cancel that commits while a completion is being written cannot leave a retried contact
/// `queued` in the cancelled campaign: the completion decides on the campaign status its
/// write sees. The cancel is held open in its own transaction (as
/// `Store::transition_campaign` runs it) while the completion starts; the completion
/// either waits for it or writes first, never in between.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn a_completion_racing_a_cancel_does_not_requeue_the_contact(pool: PgPool) {
    let (store, org, campaign) = setup(pool.clone(), 2).await;
    let (contact, attempt) = dialing_attempt(&store, org, campaign).await;
    let mut cancel = pool.begin().await.expect("begin");
    sqlx::query("SELECT status FROM campaigns WHERE id = $1 FOR UPDATE")
        .bind(campaign.0)
        .execute(&mut *cancel)
        .await
        .expect("lock campaign");
    sqlx::query("UPDATE campaigns SET status = 'cancelled' WHERE id = $1")
        .bind(campaign.0)
        .execute(&mut *cancel)
        .await
        .expect("cancel campaign");
    sqlx::query(
        "UPDATE contacts SET status = 'cancelled', status_reason = 'campaign_cancelled'
         WHERE campaign_id = $1 AND status IN ('queued', 'locked')",
    )
    .bind(campaign.0)
    .execute(&mut *cancel)
    .await
    .expect("cancel contacts");
    // A retryable outcome while the cancel is uncommitted.
    let completing = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .complete_attempt(attempt, &outcome(Disposition::NoAnswer, "webhook"), t0())
                .await
        }
    });
    // Wait until the completion is either finished or blocked on a lock the cancel holds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .expect("activity");
        if waiting > 0 || completing.is_finished() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "completion neither finished nor waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    cancel.commit().await.expect("commit cancel");
    let done = completing
        .await
        .expect("task")
        .expect("complete")
        .expect("completed once");
    let c = store.contact(contact).await.expect("contact");
    assert_eq!(
        (c.status.as_str(), c.status_reason.map(|x| x.as_str())),
        ("cancelled", Some("campaign_cancelled")),
        "completion reported {}",
        done.contact_status
    );
}

/// The SQL prefilters of the usable-caller-ID rule (the explain counts, the SMS claim) agree
/// with the rule itself (`Did::candidate` + `DidCandidate::is_usable`) on every state, score
/// and sample size: the one rule, written once in the domain.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn the_usable_caller_id_prefilters_agree_with_the_rule(pool: PgPool) {
    use outdial_domain::campaign::Channel;
    use outdial_domain::did::{CallerIdRule, LifecycleConfig};
    let store = Store::new(pool);
    let org = store.create_org("acme", None, t0()).await.expect("org").id;
    let rule = CallerIdRule {
        threshold: 0.7,
        min_calls: 10,
        lifecycle: LifecycleConfig::default(),
    };
    let mut n = 0;
    for state in DidState::ALL {
        for score in [0.5, 0.7, 0.9] {
            for scored_calls in [0, 9, 10, 50] {
                for warming_calls in [0, 30] {
                    n += 1;
                    let d = did(&store, org, &format!("+1212555{n:04}")).await;
                    sqlx::query(
                        "UPDATE dids SET state = $2, health_score = $3, scored_calls = $4,
                             warming_calls = $5, warming_until = $6 WHERE id = $1",
                    )
                    .bind(d.id.0)
                    .bind(state.as_str())
                    .bind(score)
                    .bind(scored_calls)
                    .bind(warming_calls)
                    .bind(t0() + Duration::minutes(30))
                    .execute(store.pool())
                    .await
                    .expect("set");
                }
            }
        }
    }
    let dids = store.dids(Some(org)).await.expect("dids");
    let by_rule = |channel| {
        dids.iter()
            .filter(|d| d.is_usable_on(channel, t0(), &rule))
            .count()
    };
    let mut conn = store.pool().acquire().await.expect("conn");
    let counts = dids::usable_did_counts(&mut conn, &rule, &[org], t0())
        .await
        .expect("counts");
    let voice = by_rule(Channel::Voice);
    assert!(voice > 0 && voice < dids.len(), "a mixed fixture: {voice}");
    assert_eq!(
        counts.get(&org).copied().unwrap_or(0),
        i64::try_from(voice).expect("n")
    );
    let filter = outdial_store::sms::SmsDidFilter {
        org,
        caller_ids: &[],
        rule,
        gap_ms: 900_000,
    };
    let sms = outdial_store::sms::sms_did_pool(&mut conn, &filter, t0())
        .await
        .expect("pool");
    assert!(by_rule(Channel::Sms) > voice, "texts are not ramped");
    assert_eq!(sms.usable, i64::try_from(by_rule(Channel::Sms)).expect("n"));
}

/// A campaign's zone keys are those its contacts can be due in (product §5.2): every
/// number's for a voice campaign (a call moves a contact to its next number), the first
/// number's for an SMS campaign (a text goes to the first number only), so an SMS tick never
/// sees a zone none of its prospects is in.
#[sqlx::test(migrator = "outdial_store::MIGRATOR")]
async fn campaign_zone_keys_follow_the_numbers_a_campaign_dials(pool: PgPool) {
    let store = Store::new(pool);
    let org = store.create_org("acme", None, t0()).await.expect("org").id;
    let row = NewContact {
        external_id: None,
        name: None,
        phone_numbers: vec![num("+12125551000"), num("+14155551000")],
        phone_timezones: vec!["America/New_York".into(), "America/Los_Angeles".into()],
        row: 1,
    };
    for (new, want) in [
        (
            NewCampaign::voice(org, "calls"),
            vec!["America/Los_Angeles", "America/New_York"],
        ),
        (
            NewCampaign::sms(org, "texts", "hi"),
            vec!["America/New_York"],
        ),
    ] {
        let c = store.create_campaign(&new, t0()).await.expect("campaign");
        store
            .import_contacts(
                org,
                Some(c.id),
                "c.csv",
                1,
                std::slice::from_ref(&row),
                vec![],
                0,
                t0(),
            )
            .await
            .expect("import");
        assert_eq!(
            store.campaign_timezones(c.id).await.expect("zones"),
            want,
            "{:?}",
            c.channel
        );
    }
}
