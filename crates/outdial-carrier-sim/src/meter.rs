//! The simulator's Prometheus metrics, declared once (STYLE §13).

use std::sync::Once;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

const CALLS_TOTAL: &str = "outdial_sim_calls_total";
const MESSAGES_TOTAL: &str = "outdial_sim_messages_total";
const CALLS_ACTIVE: &str = "outdial_sim_calls_active";
const CALLBACKS_TOTAL: &str = "outdial_sim_callbacks_total";

/// Registers the descriptions with the installed recorder (once per process).
pub(crate) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        describe_counter!(CALLS_TOTAL, Unit::Count, "Calls accepted by the carrier simulator, by outcome.");
        describe_counter!(MESSAGES_TOTAL, Unit::Count, "Messages accepted by the carrier simulator, by outcome.");
        describe_gauge!(CALLS_ACTIVE, Unit::Count, "Simulated calls still in progress.");
        describe_counter!(
            CALLBACKS_TOTAL,
            Unit::Count,
            "Status callback POSTs by result: sent (2xx), retried (will try again), failed (given up)."
        );
    });
}

pub(crate) fn call_created(outcome: &'static str) {
    counter!(CALLS_TOTAL, "outcome" => outcome).increment(1);
    gauge!(CALLS_ACTIVE).increment(1.0);
}

pub(crate) fn call_inactive() {
    gauge!(CALLS_ACTIVE).decrement(1.0);
}

pub(crate) fn message_created(outcome: &'static str) {
    counter!(MESSAGES_TOTAL, "outcome" => outcome).increment(1);
}

/// `result` is `"sent"`, `"retried"` or `"failed"`.
pub(crate) fn callback(result: &'static str) {
    counter!(CALLBACKS_TOTAL, "result" => result).increment(1);
}
