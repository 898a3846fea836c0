//! # outdial-control
//!
//! Campaign control and the dispatch cycle's planning, shared by the API, `outdialctl` and
//! the dialer without any of them depending on the dialer worker:
//!
//! | module | what |
//! |---|---|
//! | [`transition`] | status changes (start, pause, resume, cancel, complete) with all of their effects — the one path operator commands, completion and auto-pauses take (product §8) |
//! | [`effects`] | the shared side effects: releasing SIP channels, requesting stats |
//! | [`spec`] | campaign settings as clients write them, validated into a new campaign |
//! | [`import`] | contact uploads: validate a CSV, import it with its report (product §11) |
//! | [`dispatch`] | the dispatch cycle's plan (needs, zones, allocation, picks) and `dispatch explain` (product §4, §5) |

pub mod dispatch;
pub mod effects;
pub mod import;
pub mod spec;
pub mod transition;

use outdial_channels::ChannelError;
use outdial_queue::QueueError;
use outdial_store::StoreError;
use outdial_worker::JobError;

/// What can fail while planning or explaining dispatch: Postgres or Redis.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Postgres, or a stored row that does not parse.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The channel pools (Redis).
    #[error(transparent)]
    Channels(#[from] ChannelError),
    /// The queues (Redis).
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for ControlError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// By the kind of the underlying failure: an outage is retried, bad data dead-lettered.
impl From<ControlError> for JobError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Store(e) => e.into(),
            ControlError::Channels(e) => e.into(),
            ControlError::Queue(e) => e.into(),
        }
    }
}
