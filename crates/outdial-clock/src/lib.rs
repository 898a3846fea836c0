//! # outdial-clock
//!
//! The injected clock (product §3 "Time"). Every "now" in outdial comes from a [`Clock`], is
//! passed into SQL as a parameter and into Lua scripts as an argument, so tests and the
//! demo control time.
//!
//! | item | what |
//! |---|---|
//! | [`Clock`] | the trait: `now_ms()` (ms since the Unix epoch, UTC) and `now()` |
//! | [`SystemClock`] | the wall clock |
//! | [`ManualClock`] | moves only when told to (tests drive the fleet step by step) |
//! | [`OffsetClock`] | the wall clock shifted by a fixed offset (the demo's US afternoon) |
//!
//! A crate of its own so that a queue consumer (the job runtime, `outdial-worker`) gets a
//! clock without the domain's time-zone, phone-number and CSV dependencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current time, milliseconds since the Unix epoch (UTC).
    fn now_ms(&self) -> i64;

    /// Current time as a UTC timestamp (millisecond precision).
    fn now(&self) -> DateTime<Utc> {
        ms_to_datetime(self.now_ms())
    }
}

/// Converts milliseconds since the Unix epoch to a UTC timestamp; out-of-range values clamp
/// to the epoch.
pub fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The operating system's clock (`Utc::now`), as production reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to; cheap to clone, clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that starts at a chosen instant and then runs at wall-clock speed.
///
/// The demo runs every process of the fleet on one `OffsetClock` pinned to a weekday
/// afternoon in the US, so calling windows are open whatever the hour of the run.
#[derive(Debug, Clone)]
pub struct OffsetClock {
    start_ms: i64,
    started: Instant,
}

impl OffsetClock {
    /// A clock that reads the wall clock plus `offset_ms` (may be negative). All processes
    /// given the same offset agree exactly.
    pub fn with_offset_ms(offset_ms: i64) -> Self {
        Self {
            start_ms: Utc::now().timestamp_millis() + offset_ms,
            started: Instant::now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        self.start_ms + i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(ms_to_datetime(1_000));
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance_ms(250);
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.now().timestamp_millis(), 1_250);
    }

    #[test]
    fn offset_clock_applies_offset() {
        let clock = OffsetClock::with_offset_ms(-3_600_000);
        let diff = SystemClock.now_ms() - clock.now_ms();
        assert!((3_599_000..=3_601_000).contains(&diff), "diff {diff}");
    }
}
