//! The queue action a store failure calls for (feature `worker`): an outage is retried, a
//! fact about the data is dead-lettered at once ([`StoreError::is_transient`]).

use outdial_worker::JobError;

use crate::StoreError;

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Self::retry(e)
        } else {
            Self::abort(e)
        }
    }
}
