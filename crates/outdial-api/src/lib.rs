//! # outdial-api
//!
//! The HTTP API (product §10), an axum router over the shared [`Services`]:
//!
//! | route | scope | module |
//! |---|---|---|
//! | `POST /carrier/voice/status?attempt=<id>` | signature | [`carrier`] |
//! | `POST /carrier/sms/status?contact=<id>` | signature | [`carrier`] |
//! | `GET/POST /carrier/voice/twiml` | — | [`carrier`] |
//! | `POST /api/campaigns`, `GET /api/campaigns[/{id}]` | campaigns:manage / read | [`campaigns`] |
//! | `POST /api/campaigns/{id}/start\|pause\|resume\|cancel` | campaigns:manage | [`campaigns`] |
//! | `GET /api/campaigns/{id}/stats`, `/transitions` | campaigns:read | [`campaigns`] |
//! | `POST /api/campaigns/{id}/contacts` (CSV body) | contacts:write | [`campaigns`] |
//! | `GET/PUT /campaign/concurrency-settings` | see handler | [`orgs`] |
//! | `POST /api/calls` | calls:write | [`orgs`] |
//! | `GET /api/events?channels=campaign:<id>,did:<id>` (SSE) | events:read / campaigns:read | [`events`] |
//! | `GET /dids/health`, `GET /dids/health/report` | dids:read / campaigns:read | [`dids`] |
//! | `POST /dids/{id}/spam-flags` | dids:manage / campaigns:manage | [`dids`] |
//! | `GET /healthz` | — | |
//!
//! Errors are JSON with stable codes ([`error::ApiError`]); a token never sees another
//! organization's data (404).

pub mod auth;
pub mod campaigns;
pub mod carrier;
pub mod dids;
pub mod error;
pub mod events;
pub mod orgs;

use axum::Router;
use axum::routing::{get, post};
use outdial_control::dispatch::Planner;
use outdial_fleet::config::Config;
use outdial_fleet::services::Services;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// connections, config, clock
    pub svc: Services,
    /// dispatch explain (`GET /api/campaigns/{id}/stats`)
    pub planner: std::sync::Arc<Planner>,
}

/// Every route of product §10 (with `/healthz`), sharing `svc` and one dispatch planner.
pub fn router(svc: Services) -> Router {
    let planner = std::sync::Arc::new(Planner::new(svc.clone()));
    Router::new()
        .route("/healthz", get(|| std::future::ready("ok")))
        .route("/carrier/voice/status", post(carrier::voice_status))
        .route("/carrier/sms/status", post(carrier::sms_status))
        .route(
            "/carrier/voice/twiml",
            get(carrier::twiml).post(carrier::twiml),
        )
        .route(
            "/api/campaigns",
            post(campaigns::create).get(campaigns::list),
        )
        .route("/api/campaigns/{id}", get(campaigns::get))
        .route("/api/campaigns/{id}/start", post(campaigns::start))
        .route("/api/campaigns/{id}/pause", post(campaigns::pause))
        .route("/api/campaigns/{id}/resume", post(campaigns::resume))
        .route("/api/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/api/campaigns/{id}/stats", get(campaigns::stats))
        .route(
            "/api/campaigns/{id}/transitions",
            get(campaigns::transitions),
        )
        .route("/api/campaigns/{id}/contacts", post(campaigns::upload))
        .route(
            "/campaign/concurrency-settings",
            get(orgs::get_concurrency).put(orgs::put_concurrency),
        )
        .route("/api/calls", post(orgs::create_call))
        .route("/api/events", get(events::stream))
        .route("/dids/health", get(dids::health))
        .route("/dids/health/report", get(dids::report))
        .route("/dids/{id}/spam-flags", post(dids::spam_flag))
        .with_state(AppState { svc, planner })
}

/// Serves the API on `listener` until `shutdown` resolves; in-flight requests finish.
///
/// Errors: the server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    svc: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(svc))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The `outdial-api` process: connects, serves `/metrics` and the API (printing
/// `outdial-api listening on http://<addr>`), until `shutdown` resolves.
///
/// Errors: Postgres or Redis unreachable at start, an address taken.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let svc = outdial_fleet::process::connect(config).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut metrics_stop = stop_rx.clone();
    let metrics = outdial_fleet::telemetry::serve_metrics(
        "outdial-api",
        &svc.config.metrics.listen,
        async move {
            let _ = metrics_stop.wait_for(|s| *s).await;
        },
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(&svc.config.api.listen).await?;
    println!(
        "outdial-api listening on http://{} metrics=http://{metrics}/metrics",
        listener.local_addr()?
    );
    let result = serve(listener, svc, shutdown).await;
    let _ = stop_tx.send(true);
    result
}
