//! Group commit: requests that arrive close together are written by one statement.
//!
//! A [`Batcher`] takes one request at a time from many concurrent callers. The first
//! request of a batch waits at most the gather time for others to join it (up to
//! [`MAX_BATCH`]); those arriving while a batch is being written form the next one. One
//! write function answers a whole batch with one result per request, in order; each caller
//! gets its own. When the write of a batch fails as a whole (a batch is one statement, so
//! nothing of it was written), each of its requests is written again on its own: one bad
//! request (say, one that breaks a unique constraint) fails alone and cannot fail the
//! requests batched with it. With a gather time of 0 each request is written on its own, in
//! its caller's task.
//!
//! Used by the dialer for call completions and call SIDs (docs/architecture.md, "Completion
//! once"); the saving is the per-statement cost — a round trip, executor start-up and a
//! commit (a WAL flush for synchronous ones) — shared by the batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use outdial_store::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Largest batch: each request binds one element of every array the statement takes.
pub const MAX_BATCH: usize = 256;

/// A batch's results: one per request, in order, or an error for the whole batch.
pub type BatchResult<R> = Result<Vec<Result<R, StoreError>>, StoreError>;

type WriteFn<T, R> =
    dyn Fn(Vec<T>) -> Pin<Box<dyn Future<Output = BatchResult<R>> + Send>> + Send + Sync;

/// One request waiting for its batch.
struct Pending<T, R> {
    request: T,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

/// Gathers requests of type `T` into batches answered by one write (module docs). The
/// writing task starts with the first request and ends when the batcher is dropped.
pub struct Batcher<T, R> {
    name: &'static str,
    gather: Duration,
    write: Arc<WriteFn<T, R>>,
    tx: OnceLock<mpsc::UnboundedSender<Pending<T, R>>>,
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("name", &self.name)
            .field("gather", &self.gather)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// A batcher called `name` (the `batch` label of the `outdial_batch_size` histogram)
    /// gathering for `gather_ms` ms (0: no batching) and writing with `write`, which must
    /// return exactly one result per request, in order.
    pub fn new<F, Fut>(name: &'static str, gather_ms: u64, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchResult<R>> + Send + 'static,
    {
        Self {
            name,
            gather: Duration::from_millis(gather_ms),
            write: Arc::new(move |batch| Box::pin(write(batch))),
            tx: OnceLock::new(),
        }
    }

    /// Writes `request` in the next batch and returns its result.
    ///
    /// Errors: the write's error for this request (written on its own when its batch
    /// failed as a whole); [`StoreError::Batch`] when the writing task is gone or the write
    /// returned no result for it.
    pub async fn submit(&self, request: T) -> Result<R, StoreError> {
        if self.gather.is_zero() {
            let mut results = (self.write)(vec![request]).await?;
            return results.pop().unwrap_or_else(|| Err(missing(self.name)));
        }
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(
                self.name,
                rx,
                self.gather,
                Arc::clone(&self.write),
            ));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Batch(format!("the {} writer stopped", self.name));
        tx.send(Pending { request, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn missing(name: &'static str) -> StoreError {
    StoreError::Batch(format!("the {name} write returned no result for a request"))
}

/// The writing task: one batch at a time, each gathered for up to `gather` after its first
/// request.
async fn write_batches<T: Clone, R>(
    name: &'static str,
    mut rx: mpsc::UnboundedReceiver<Pending<T, R>>,
    gather: Duration,
    write: Arc<WriteFn<T, R>>,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + gather;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(p)) => batch.push(p),
                Ok(None) | Err(_) => break,
            }
        }
        metrics::histogram!("outdial_batch_size", "batch" => name).record(batch.len() as f64);
        let (requests, replies): (Vec<T>, Vec<_>) =
            batch.into_iter().map(|p| (p.request, p.reply)).unzip();
        let n = requests.len();
        let results = match write(requests.clone()).await {
            Ok(results) => results,
            Err(e) if n == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(batch = name, requests = n, error = %e, "batched write failed; writing its requests one by one");
                let mut results = Vec::with_capacity(n);
                for request in requests {
                    results.push(match write(vec![request]).await {
                        Ok(mut one) => one.pop().unwrap_or_else(|| Err(missing(name))),
                        Err(e) => Err(e),
                    });
                }
                results
            }
        };
        let mut results = results.into_iter();
        for reply in replies {
            let _ = reply.send(results.next().unwrap_or_else(|| Err(missing(name))));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A write that records each batch it is given and answers `n * 10` for request `n`,
    /// failing the whole batch when it holds request 13 with others, and request 13 alone
    /// with its own error.
    type Log = Arc<Mutex<Vec<Vec<u32>>>>;

    fn recording() -> (
        Log,
        impl Fn(Vec<u32>) -> std::future::Ready<BatchResult<u32>> + Send + Sync + 'static,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let write = move |batch: Vec<u32>| {
            log.lock().expect("log").push(batch.clone());
            std::future::ready(if batch == [13] {
                Ok(vec![Err(StoreError::Invalid("13 alone".into()))])
            } else if batch.contains(&13) {
                Err(StoreError::Invalid("13 in a batch".into()))
            } else {
                Ok(batch.iter().map(|n| Ok(n * 10)).collect())
            })
        };
        (seen, write)
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_write_and_each_gets_its_own_result() {
        let (seen, write) = recording();
        // Long enough that all five are sent (in one poll of join_all) before it ends.
        let b = Batcher::new("test", 200, write);
        let results = futures::future::join_all((1..=5).map(|n| b.submit(n))).await;
        let results: Vec<u32> = results.into_iter().map(|r| r.expect("ok")).collect();
        assert_eq!(results, vec![10, 20, 30, 40, 50]);
        assert_eq!(*seen.lock().expect("log"), vec![vec![1, 2, 3, 4, 5]]);
    }

    #[tokio::test]
    async fn a_failed_batch_is_written_again_one_by_one_so_only_the_bad_request_fails() {
        let (seen, write) = recording();
        let b = Batcher::new("test", 200, write);
        let results = futures::future::join_all([1, 13, 3].map(|n| b.submit(n))).await;
        assert!(matches!(results[0], Ok(10)));
        assert!(matches!(&results[1], Err(StoreError::Invalid(m)) if m == "13 alone"));
        assert!(matches!(results[2], Ok(30)));
        assert_eq!(
            *seen.lock().expect("log"),
            vec![vec![1, 13, 3], vec![1], vec![13], vec![3]]
        );
    }

    #[tokio::test]
    async fn no_gather_time_writes_each_request_alone() {
        let (seen, write) = recording();
        let b = Batcher::new("test", 0, write);
        let results = futures::future::join_all((1..=3).map(|n| b.submit(n))).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(*seen.lock().expect("log"), vec![vec![1], vec![2], vec![3]]);
    }
}
