//! Shared harness: a simulator and a callback receiver, both real HTTP servers on
//! 127.0.0.1 port 0.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use outdial_carrier::TwilioRest;
use outdial_carrier_sim::{self as sim, SimCall, SimConfig, SimStats};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub const SID: &str = sim::DEFAULT_ACCOUNT_SID;
pub const TOKEN: &str = sim::DEFAULT_AUTH_TOKEN;
pub const FROM: &str = "+13105550123";

/// Simulated time 1000× real time: a 180 s call lasts 180 ms, rings last 1–2 ms.
pub fn fast_config() -> SimConfig {
    SimConfig {
        seed: Some(42),
        time_scale: 1000.0,
        ring_min_ms: 1000,
        ring_max_ms: 2000,
        sms_delay_ms: 10,
        ..SimConfig::default()
    }
}

/// A running simulator; stopped when dropped.
pub struct SimServer {
    pub base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl SimServer {
    pub async fn start(cfg: SimConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sim::serve(listener, cfg, async move {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the simulator and waits until `serve` returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    pub fn client(&self) -> TwilioRest {
        TwilioRest::new(&self.base_url, SID, TOKEN, Duration::from_secs(5)).unwrap()
    }

    pub async fn script(&self, to: &str, outcomes: &[&str]) {
        let body: BTreeMap<&str, &[&str]> = [(to, outcomes)].into();
        let response = reqwest::Client::new()
            .post(format!("{}/sim/script", self.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn calls(&self) -> Vec<SimCall> {
        reqwest::get(format!("{}/sim/calls", self.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn stats(&self) -> SimStats {
        reqwest::get(format!("{}/sim/stats", self.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query string as requested.
    pub path_and_query: String,
    pub signature: Option<String>,
    pub params: Vec<(String, String)>,
}

impl Received {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver collecting every request on a channel.
pub struct Receiver {
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    /// Requests answered so far (including refused ones).
    pub hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    hits: Arc<AtomicUsize>,
    /// The first `fail_first` requests get `fail_status`.
    fail_first: usize,
    fail_status: StatusCode,
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let hit = state.hits.fetch_add(1, Ordering::SeqCst);
    if hit < state.fail_first {
        return state.fail_status;
    }
    let received = Received {
        path_and_query: uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        signature: headers
            .get("x-twilio-signature")
            .map(|v| v.to_str().unwrap().to_owned()),
        params: form_urlencoded::parse(&body).into_owned().collect(),
    };
    let _ = state.tx.send(received);
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Self {
        Self::failing(0, StatusCode::OK).await
    }

    /// A receiver answering its first `n` requests with `status` (not recorded).
    pub async fn failing(n: usize, status: StatusCode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        let hits = Arc::new(AtomicUsize::new(0));
        let state = ReceiverState {
            tx,
            hits: Arc::clone(&hits),
            fail_first: n,
            fail_status: status,
        };
        let app = Router::new().fallback(receive).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, rx, hits }
    }

    /// The next request, or `None` if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Requests until one satisfies `last` (inclusive); panics after `within` without it.
    pub async fn until(
        &mut self,
        within: Duration,
        last: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(received) = self.next(left).await else {
                panic!("no final callback within {within:?}; got {got:#?}");
            };
            let done = last(&received);
            got.push(received);
            if done {
                return got;
            }
        }
    }
}
