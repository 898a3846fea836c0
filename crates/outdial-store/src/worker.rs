//! The queue action a store failure calls for (feature `worker`): an outage waits without
//! using an attempt ([`StoreError::is_outage`]), contention is retried
//! ([`StoreError::is_transient`]), a fact about the data is dead-lettered at once.

use outdial_worker::JobError;

use crate::StoreError;

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        if e.is_outage() {
            Self::outage(e)
        } else if e.is_transient() {
            Self::retry(e)
        } else {
            Self::abort(e)
        }
    }
}
