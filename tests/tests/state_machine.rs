//! Campaign state machine under concurrency (product §8): two pods pausing and resuming the
//! same campaign at once end consistent, and every change is recorded with its cause.

use outdial_control::spec::CampaignSpec;
use outdial_control::transition;
use outdial_domain::campaign::{CampaignCommand, CampaignStatus};
use outdial_e2e::InProcess;
use outdial_fleet::services::Services;
use outdial_store::StoreError;

/// Applies `commands` in order on `svc` as `actor`; returns how many were accepted.
async fn hammer(
    svc: Services,
    c: outdial_domain::CampaignId,
    actor: &'static str,
    commands: Vec<CampaignCommand>,
) -> usize {
    let mut accepted = 0;
    for cmd in commands {
        match transition::apply(&svc, c, None, cmd, actor, Some("race test")).await {
            Ok(_) => accepted += 1,
            Err(StoreError::IllegalTransition(_)) => {}
            Err(e) => panic!("{actor} {cmd:?}: {e}"),
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_pausing_and_resuming_at_once_end_in_a_consistent_state() {
    let e = InProcess::start(|_, _| {}).await;
    let org = e.org("acme", 10, &["+12125550100"]).await;
    let c = e
        .campaign(
            org,
            CampaignSpec {
                name: "c".into(),
                ..CampaignSpec::default()
            },
        )
        .await;
    e.import(org, c, "phone\n+12125551000\n").await;
    transition::apply(&e.svc, c, Some(org), CampaignCommand::Start, "test", None)
        .await
        .expect("start");
    // A second pod: its own Postgres and Redis pools.
    let (other, _) = e.extra_dialer().await;
    let pattern = |first: CampaignCommand, second: CampaignCommand| {
        (0..40)
            .map(|i| if i % 2 == 0 { first } else { second })
            .collect::<Vec<_>>()
    };
    let (a, b) = tokio::join!(
        hammer(
            e.svc.clone(),
            c,
            "pod-a",
            pattern(CampaignCommand::Pause, CampaignCommand::Resume)
        ),
        hammer(
            other.services().clone(),
            c,
            "pod-b",
            pattern(CampaignCommand::Resume, CampaignCommand::Pause)
        ),
    );
    let campaign = e.svc.store.campaign(c, None).await.expect("c");
    let log = e.svc.store.campaign_transitions(c).await.expect("log");
    // Exactly the accepted commands are recorded, after the start.
    assert_eq!(log.len(), 1 + a + b, "accepted a={a} b={b}");
    assert!(a + b >= 2, "some commands were accepted");
    // The log is one unbroken chain, and it ends in the stored status.
    for w in log.windows(2) {
        assert_eq!(
            w[0].to_status, w[1].from_status,
            "{:?} then {:?}",
            w[0], w[1]
        );
        assert_ne!(w[1].from_status, w[1].to_status);
    }
    assert_eq!(
        log.last().expect("last").to_status,
        campaign.status.as_str()
    );
    assert!(matches!(
        campaign.status,
        CampaignStatus::Dialing | CampaignStatus::Paused
    ));
    assert!(
        log[1..]
            .iter()
            .all(|t| t.actor == "pod-a" || t.actor == "pod-b")
    );
    assert!(
        log[1..]
            .iter()
            .all(|t| t.reason.as_deref() == Some("race test"))
    );

    // Cancel racing a resume: cancel always wins in the end (any → cancelled), and once
    // cancelled nothing moves it again.
    let (x, y) = tokio::join!(
        hammer(e.svc.clone(), c, "pod-a", vec![CampaignCommand::Cancel]),
        hammer(
            other.services().clone(),
            c,
            "pod-b",
            vec![CampaignCommand::Resume, CampaignCommand::Pause]
        ),
    );
    assert_eq!(x, 1, "cancel is legal from dialing and paused");
    let _ = y;
    let after = e.svc.store.campaign(c, None).await.expect("c");
    assert_eq!(after.status, CampaignStatus::Cancelled);
    let contacts = e.svc.store.campaign_contacts(c).await.expect("contacts");
    assert!(contacts.iter().all(|ct| ct.status.as_str() == "cancelled"));
    for cmd in [
        CampaignCommand::Start,
        CampaignCommand::Pause,
        CampaignCommand::Resume,
        CampaignCommand::Cancel,
        CampaignCommand::Complete,
    ] {
        match transition::apply(&e.svc, c, None, cmd, "test", None).await {
            Err(StoreError::IllegalTransition(t)) => {
                assert_eq!(t.current, CampaignStatus::Cancelled);
            }
            other => panic!("{cmd:?} on a cancelled campaign: {other:?}"),
        }
    }
    e.finish().await;
}
