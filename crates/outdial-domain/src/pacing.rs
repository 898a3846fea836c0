//! Pacing (product §5 "Campaign pacing", product §6).
//!
//! A voice campaign starts one call per tick and ticks every `1000 / calls_per_second` ms,
//! so it starts exactly `calls_per_second` calls a second (the seed's "batch of cps every
//! 1000/cps ms" would start cps² — we do not repeat that). Ticks are planned on a fixed
//! grid — each next tick is the previous *planned* time plus the interval, not the time the
//! previous tick finished — so processing time never makes the rate drift.
//! Times here are microseconds since the Unix epoch so that intervals like 1000/3 ms do not
//! accumulate rounding error.

/// Largest accepted `calls_per_second`.
pub const MAX_CALLS_PER_SECOND: f64 = 1_000.0;

/// The tick interval in µs for `calls_per_second` (1 cps → 1 000 000 µs, 3 cps → 333 333 µs).
/// `calls_per_second` must be in `(0, MAX_CALLS_PER_SECOND]`; values outside are clamped.
pub fn tick_interval_us(calls_per_second: f64) -> i64 {
    let cps = if calls_per_second.is_finite() && calls_per_second > 0.0 {
        calls_per_second.min(MAX_CALLS_PER_SECOND)
    } else {
        0.001
    };
    (1_000_000.0 / cps).round() as i64
}

/// The planned time (µs) of the tick after one planned at `planned_us`.
///
/// Normally `planned_us + interval_us`. If the schedule has fallen more than `max_lag_us`
/// behind `now_us` (the fleet was down, or the campaign was paused), the grid restarts at
/// `now_us` instead of bursting to catch up; lags within `max_lag_us` are caught up so the
/// rate over a minute stays exact.
pub fn next_tick_us(planned_us: i64, interval_us: i64, now_us: i64, max_lag_us: i64) -> i64 {
    let next = planned_us + interval_us;
    if next < now_us - max_lag_us {
        now_us
    } else {
        next
    }
}

/// Where a tick woken after its planned time `planned_us` resumes its grid at `now_us`: the
/// last grid point `planned_us + k × interval_us` at or before `now_us` (so it starts now,
/// and the next tick follows one interval after that point), or `planned_us` itself when it
/// is not past. A campaign keeps its own phase however long it slept: re-planning at
/// `now_us` would put every campaign woken by the same dispatch cycle on one phase — 2,000
/// campaigns at 0.5 cps in lockstep start 2,000 calls every 2 s instead of 1,000 a second.
/// Nothing is caught up: the grid points skipped while nothing was admitted stay skipped.
/// `interval_us` must be positive.
pub fn resume_on_grid_us(planned_us: i64, interval_us: i64, now_us: i64) -> i64 {
    if planned_us >= now_us {
        return planned_us;
    }
    planned_us + (now_us - planned_us) / interval_us.max(1) * interval_us.max(1)
}

/// A phase in `[0, interval_us)` for the campaign with id `campaign_id`, spread evenly
/// (Fibonacci hashing of the id): where a restored tick is planned within its first
/// interval, so campaigns whose ticks are all restored at once (after Redis lost them) do
/// not start in lockstep. `interval_us` must be positive.
pub fn phase_us(campaign_id: i64, interval_us: i64) -> i64 {
    let hashed = (campaign_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The top 32 bits, scaled to the interval.
    i64::try_from(((hashed >> 32) * interval_us.max(1) as u64) >> 32).unwrap_or(0)
}

/// The SMS drip interval in ms: `gap_ms / active_dids` (product §6: `MIN_SMS_GAP_MINUTES(15) ×
/// 60 000 / active_DIDs`, so 10 DIDs → 90 000 ms, 50 DIDs → 18 000 ms). With no active DID,
/// one full gap. At least 1 ms.
pub fn sms_tick_interval_ms(gap_ms: i64, active_dids: u32) -> i64 {
    (gap_ms / i64::from(active_dids.max(1))).max(1)
}

/// The due time (ms) of the SMS tick after one planned at `planned_ms` (product §6): one drip
/// interval ([`sms_tick_interval_ms`]) after the *planned* time, so the drip does not drift
/// with processing time; a tick that ran more than `max_lag_ms` late restarts the grid one
/// interval from `now_ms` instead of texting in a burst to catch up.
pub fn next_drip_ms(planned_ms: i64, interval_ms: i64, now_ms: i64, max_lag_ms: i64) -> i64 {
    let next = planned_ms + interval_ms;
    if next < now_ms - max_lag_ms {
        now_ms + interval_ms
    } else {
        next
    }
}

/// Converts µs to the ms due time of a queue job, rounding **up** so a job is never handed
/// out before its planned time (asynq's lesson in product §3: never round a due time down).
pub fn us_to_due_ms(us: i64) -> i64 {
    us.div_euclid(1_000) + i64::from(us.rem_euclid(1_000) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(tick_interval_us(1.0), 1_000_000);
        assert_eq!(tick_interval_us(20.0), 50_000);
        assert_eq!(tick_interval_us(100.0), 10_000);
        assert_eq!(tick_interval_us(3.0), 333_333);
        assert_eq!(sms_tick_interval_ms(900_000, 10), 90_000);
        assert_eq!(sms_tick_interval_ms(900_000, 50), 18_000);
        assert_eq!(sms_tick_interval_ms(900_000, 0), 900_000);
    }

    #[test]
    fn grid_does_not_drift_with_processing_time() {
        // Ticks every 1000/3 ms for 60 s: planned from the previous plan, the 180th tick is
        // within 1 ms of 60 s whatever each tick's processing took.
        let interval = tick_interval_us(3.0);
        let mut planned = 0;
        for _ in 0..180 {
            let finished = planned + 40_000; // each tick takes 40 ms
            planned = next_tick_us(planned, interval, finished, 1_000_000);
        }
        assert!((planned - 60_000_000).abs() < 1_000, "{planned}");
    }

    #[test]
    fn the_drip_keeps_its_grid_and_restarts_after_a_stall() {
        assert_eq!(next_drip_ms(0, 90_000, 1_000, 5_000), 90_000);
        assert_eq!(
            next_drip_ms(0, 90_000, 94_000, 5_000),
            90_000,
            "late within the lag"
        );
        assert_eq!(next_drip_ms(0, 90_000, 600_000, 5_000), 690_000);
    }

    #[test]
    fn long_stall_restarts_the_grid() {
        assert_eq!(next_tick_us(0, 50_000, 10_000_000, 1_000_000), 10_000_000);
        assert_eq!(next_tick_us(0, 50_000, 900_000, 1_000_000), 50_000);
    }

    #[test]
    fn a_woken_tick_keeps_its_campaigns_phase() {
        // Grid at 0.5 cps (2 s) with phase 300 ms; woken at 61.7 s: the last grid point
        // before is 60.3 s, the next tick 62.3 s.
        let interval = tick_interval_us(0.5);
        assert_eq!(resume_on_grid_us(300_000, interval, 61_700_000), 60_300_000);
        assert_eq!(
            next_tick_us(60_300_000, interval, 61_700_000, 1_000_000),
            62_300_000
        );
        // Exactly on a grid point, and not yet due.
        assert_eq!(resume_on_grid_us(300_000, interval, 4_300_000), 4_300_000);
        assert_eq!(resume_on_grid_us(5_000_000, interval, 4_300_000), 5_000_000);
        // Two campaigns woken at the same moment stay a phase apart.
        let a = resume_on_grid_us(0, interval, 9_999_000);
        let b = resume_on_grid_us(1_000_000, interval, 9_999_000);
        assert_eq!((a, b), (8_000_000, 9_000_000));
    }

    #[test]
    fn phases_spread_campaigns_over_the_interval() {
        let interval = tick_interval_us(0.5);
        let mut buckets = [0_u32; 10];
        for id in 1..=2_000 {
            let p = phase_us(id, interval);
            assert!((0..interval).contains(&p), "{p}");
            buckets[(p / (interval / 10)) as usize] += 1;
        }
        // Consecutive ids land evenly: every tenth of the interval holds 200 ± 10.
        assert!(
            buckets.iter().all(|b| (190..=210).contains(b)),
            "{buckets:?}"
        );
        assert_eq!(phase_us(7, interval), phase_us(7, interval));
    }

    #[test]
    fn due_ms_rounds_up() {
        assert_eq!(us_to_due_ms(1_000), 1);
        assert_eq!(us_to_due_ms(1_001), 2);
        assert_eq!(us_to_due_ms(333_333), 334);
    }
}
