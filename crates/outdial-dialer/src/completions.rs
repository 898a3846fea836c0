//! Group commit of call completions (SPEC §5.7): the completions a dialer finishes close
//! together are written by one [`Store::complete_attempts`] — two statements and one commit
//! for the batch instead of two statements and a commit each.
//!
//! A completion waits at most `dialer.completion_gather_ms` for others to join it; those
//! arriving while a batch is being written form the next one. Each caller gets its own
//! result, exactly as [`Store::complete_attempt`] would have given it; a batch whose
//! statement fails gives every caller [`StoreError::Batch`] and writes nothing, so each job
//! retries. With `completion_gather_ms = 0` every completion is written on its own.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use outdial_domain::AttemptId;
use outdial_store::dialing::{AttemptOutcome, Completion};
use outdial_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Largest batch: the statement binds one array element per completion and column.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Option<Completion>, StoreError>>;

/// One completion waiting for its batch.
struct Pending {
    item: (AttemptId, AttemptOutcome, DateTime<Utc>),
    reply: Reply,
}

/// Gathers completions into batches (module docs). The writing task starts with the first
/// completion and ends when the batcher is dropped.
#[derive(Debug)]
pub(crate) struct CompletionBatcher {
    store: Store,
    gather: Duration,
    tx: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl CompletionBatcher {
    /// A batcher writing through `store`, gathering for `gather_ms` (0: no batching).
    pub(crate) fn new(store: Store, gather_ms: u64) -> Self {
        Self {
            store,
            gather: Duration::from_millis(gather_ms),
            tx: OnceLock::new(),
        }
    }

    /// Ends attempt `id` with `outcome` at `now`, in the next batch: the result of
    /// [`Store::complete_attempt`] for it.
    ///
    /// Errors: as [`Store::complete_attempts`] for this item; [`StoreError::Batch`] when the
    /// batch's statement failed (nothing written).
    pub(crate) async fn complete(
        &self,
        id: AttemptId,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> Result<Option<Completion>, StoreError> {
        if self.gather.is_zero() {
            return self.store.complete_attempt(id, outcome, now).await;
        }
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.store.clone(), rx, self.gather));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            item: (id, outcome.clone(), now),
            reply,
        };
        let lost = || StoreError::Batch("the completion writer stopped".into());
        tx.send(pending).map_err(|_| lost())?;
        answer.await.map_err(|_| lost())?
    }
}

/// The writing task: one batch at a time, each gathered for up to `gather` after its first
/// completion.
async fn write_batches(store: Store, mut rx: mpsc::UnboundedReceiver<Pending>, gather: Duration) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + gather;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        let items: Vec<_> = batch.iter().map(|p| p.item.clone()).collect();
        metrics::histogram!("outdial_dialer_completion_batch_size").record(items.len() as f64);
        match store.complete_attempts(&items).await {
            Ok(results) => {
                for (p, r) in batch.into_iter().zip(results) {
                    let _ = p.reply.send(r);
                }
            }
            Err(e) => {
                let text = e.to_string();
                tracing::warn!(completions = items.len(), error = %text, "completion batch failed");
                for p in batch {
                    let _ = p.reply.send(Err(StoreError::Batch(text.clone())));
                }
            }
        }
    }
}
