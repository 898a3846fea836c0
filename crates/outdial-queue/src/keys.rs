//! Redis key names of one queue (documented in `docs/redis-keys.md`).

/// The keys of queue `<name>` under key prefix `<prefix>` (empty in production, a random
/// per-test prefix in tests). Every key carries the hash tag `{<name>}`, so all keys a
/// script touches live in one Redis Cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    /// ZSET, member = job id, score = due time (ms): waiting (due ≤ now) and delayed jobs.
    pub scheduled: String,
    /// ZSET, member = job id, score = lease deadline (ms); renewals move it.
    pub active: String,
    /// HASH, job id → lease token of the current holder (a fencing token from `lease_seq`;
    /// unchanged by renewals). Settling and renewing require it.
    pub leases: String,
    /// HASH, job id → the holder (a [`crate::Queue::holder`] id) that leased it.
    pub lease_holders: String,
    /// ZSET, member = holder id, score = its heartbeat deadline (ms): the deadline its
    /// latest reserve or renewal set. A holder whose heartbeat is past is gone; its expired
    /// leases return without counting as stalls.
    pub holders: String,
    /// STRING counter handing out lease tokens.
    pub lease_seq: String,
    /// HASH, job id → MessagePack envelope of every scheduled or active job.
    pub jobs: String,
    /// HASH, job id → how many times its lease expired.
    pub stalls: String,
    /// ZSET, member = job id, score = time it was dead-lettered (ms).
    pub dead: String,
    /// HASH, job id → the dead job's envelope bytes (as stored; may be corrupt).
    pub dead_jobs: String,
    /// HASH, job id → why it was dead-lettered.
    pub dead_errors: String,
    /// Pub/sub channel: the due time (ms) of a job that became the earliest.
    pub wake: String,
}

impl QueueKeys {
    /// Keys for queue `name` (e.g. `campaign-dialer`) under `prefix` (e.g. `""` → keys
    /// `bull:{campaign-dialer}:scheduled`, …).
    pub fn new(prefix: &str, name: &str) -> Self {
        let key = |suffix: &str| format!("{prefix}bull:{{{name}}}:{suffix}");
        Self {
            scheduled: key("scheduled"),
            active: key("active"),
            leases: key("leases"),
            lease_holders: key("lease-holders"),
            holders: key("holders"),
            lease_seq: key("lease-seq"),
            jobs: key("jobs"),
            stalls: key("stalls"),
            dead: key("dead"),
            dead_jobs: key("dead-jobs"),
            dead_errors: key("dead-errors"),
            wake: key("wake"),
        }
    }

    /// The state keys in the order the reserve and settle scripts expect them.
    pub(crate) fn state_keys(&self) -> [&str; 9] {
        [
            &self.scheduled,
            &self.active,
            &self.jobs,
            &self.stalls,
            &self.dead,
            &self.dead_jobs,
            &self.dead_errors,
            &self.leases,
            &self.lease_holders,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = QueueKeys::new("", "campaign-dialer");
        assert_eq!(k.scheduled, "bull:{campaign-dialer}:scheduled");
        for key in k.state_keys() {
            assert!(key.contains("{campaign-dialer}"), "{key}");
        }
        assert_eq!(QueueKeys::new("t1:", "q").jobs, "t1:bull:{q}:jobs");
    }
}
