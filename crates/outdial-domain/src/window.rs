//! Calling windows in the contact's local time (product §5.2 TCPA 08:00–21:00 for voice; product §6
//! 08:00–19:00 for SMS). Local time is computed with `chrono-tz`, so daylight-saving
//! transitions are handled by the IANA database, not by fixed offsets.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Days of the week a window applies to, as a bit set (bit 0 = Monday … bit 6 = Sunday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Weekdays(pub u8);

impl Weekdays {
    /// Every day of the week.
    pub const ALL: Self = Self(0b111_1111);
    /// Monday to Friday.
    pub const MON_FRI: Self = Self(0b001_1111);

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// A daily window `[start, end)` of local time on the given weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallingWindow {
    /// First local time at which contact is allowed (inclusive).
    pub start: NaiveTime,
    /// Local time at which contact stops being allowed (exclusive).
    pub end: NaiveTime,
    /// Days of the week the window opens on.
    pub days: Weekdays,
}

/// Why a window could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `start` is not before `end`, or the window lies outside the legal window.
    #[error("empty calling window {start}–{end} (must lie within {legal_start}–{legal_end})")]
    Empty {
        /// requested start
        start: NaiveTime,
        /// requested end
        end: NaiveTime,
        /// legal start it was clipped to
        legal_start: NaiveTime,
        /// legal end it was clipped to
        legal_end: NaiveTime,
    },
    /// No weekday selected.
    #[error("a calling window needs at least one weekday")]
    NoDays,
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

impl CallingWindow {
    /// The legal voice window: 08:00–21:00 local, every day (TCPA; product §5.2).
    pub fn voice_legal() -> Self {
        Self {
            start: hm(8, 0),
            end: hm(21, 0),
            days: Weekdays::ALL,
        }
    }

    /// The default SMS window: the seed's 07:00–19:00 clipped to the federal 08:00–21:00
    /// quiet hours that also bind marketing texts, i.e. 08:00–19:00 local (product §6).
    pub fn sms_default() -> Self {
        Self {
            start: hm(8, 0),
            end: hm(19, 0),
            days: Weekdays::ALL,
        }
    }

    /// A campaign's own window, clipped to `legal`: campaigns may narrow the legal window
    /// and choose weekdays, never widen it (product §5.2).
    ///
    /// Errors: [`WindowError::Empty`] when nothing is left after clipping,
    /// [`WindowError::NoDays`] when `days` is empty.
    pub fn narrowed(
        legal: Self,
        start: NaiveTime,
        end: NaiveTime,
        days: Weekdays,
    ) -> Result<Self, WindowError> {
        let clipped = Self {
            start: start.max(legal.start),
            end: end.min(legal.end),
            days: Weekdays(days.0 & legal.days.0),
        };
        if clipped.days.0 == 0 {
            return Err(WindowError::NoDays);
        }
        if clipped.start >= clipped.end {
            return Err(WindowError::Empty {
                start,
                end,
                legal_start: legal.start,
                legal_end: legal.end,
            });
        }
        Ok(clipped)
    }

    /// Whether the window is open at `now` in zone `tz`.
    pub fn is_open(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&tz);
        self.days.contains(local.weekday()) && local.time() >= self.start && local.time() < self.end
    }

    /// Whether the window is open at `now` in every one of `zones` (a multi-zone NANP prefix
    /// is only callable when all its zones allow it). An empty list is never open.
    pub fn is_open_in_all(&self, zones: &[Tz], now: DateTime<Utc>) -> bool {
        !zones.is_empty() && zones.iter().all(|tz| self.is_open(*tz, now))
    }

    /// Whether the window is open at `now` in every zone of time-zone key `key` (one IANA
    /// name, or several joined by `&`: [`crate::phone::parse_timezone_key`]); never for a key
    /// that does not parse (product §5.2).
    pub fn is_open_for_key(&self, key: &str, now: DateTime<Utc>) -> bool {
        crate::phone::parse_timezone_key(key).is_ok_and(|zones| self.is_open_in_all(&zones, now))
    }

    /// The first instant ≥ `now` at which the window is open in every zone of `key`
    /// ([`Self::next_opening_in_all`]); `None` for a key that does not parse or zones that
    /// are never open together within eight days.
    pub fn next_opening_for_key(&self, key: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::phone::parse_timezone_key(key)
            .ok()
            .and_then(|zones| self.next_opening_in_all(&zones, now))
    }

    /// The first instant ≥ `now` at which the window is open in `tz`: `now` itself when open,
    /// else the next opening on an allowed weekday. Always `Some` for a window with at least
    /// one weekday.
    pub fn next_opening(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(tz, now) {
            return Some(now);
        }
        let today = now.with_timezone(&tz).date_naive();
        (0..=7u64)
            .filter_map(|d| today.checked_add_days(Days::new(d)))
            .find_map(|date| {
                if !self.days.contains(date.weekday()) {
                    return None;
                }
                let opening = local_to_utc(tz, date, self.start)?;
                (opening > now).then_some(opening)
            })
    }

    /// The first instant ≥ `now` at which the window is open in all of `zones`, searching up
    /// to eight days ahead; `None` if there is none (zones too far apart for the window).
    pub fn next_opening_in_all(&self, zones: &[Tz], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = now;
        let horizon = now + chrono::Duration::days(8);
        while at <= horizon {
            if self.is_open_in_all(zones, at) {
                return Some(at);
            }
            // Jump to the latest of the zones' next openings; being open in every zone can
            // only start at one of them.
            let next = zones
                .iter()
                .filter_map(|tz| self.next_opening(*tz, at))
                .max()?;
            at = if next > at {
                next
            } else {
                at + chrono::Duration::minutes(1)
            };
        }
        None
    }
}

/// The UTC instant of local `date` + `time` in `tz`. A time skipped by a DST jump moves
/// forward to the first valid minute; an ambiguous one (clocks going back) takes the
/// earlier instant.
fn local_to_utc(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    for shift in 0..=180 {
        match tz.from_local_datetime(&(naive + chrono::Duration::minutes(shift))) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(early, _) => return Some(early.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Los_Angeles, New_York, Phoenix};

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn open_and_closed_around_the_edges() {
        let w = CallingWindow::voice_legal();
        // 2026-07-01 is a Wednesday; New York is UTC-4 in summer.
        assert!(
            !w.is_open(New_York, utc("2026-07-01T11:59:59Z")),
            "07:59:59 local"
        );
        assert!(
            w.is_open(New_York, utc("2026-07-01T12:00:00Z")),
            "08:00 local"
        );
        assert!(
            w.is_open(New_York, utc("2026-07-02T00:59:59Z")),
            "20:59:59 local"
        );
        assert!(
            !w.is_open(New_York, utc("2026-07-02T01:00:00Z")),
            "21:00 local"
        );
    }

    #[test]
    fn window_follows_dst_in_new_york() {
        let w = CallingWindow::voice_legal();
        // US DST 2026 begins Sunday March 8 (02:00 → 03:00). 12:30 UTC is 07:30 EST the day
        // before (closed) and 08:30 EDT the day after (open).
        assert!(!w.is_open(New_York, utc("2026-03-07T12:30:00Z")));
        assert!(w.is_open(New_York, utc("2026-03-09T12:30:00Z")));
        // Next opening from Saturday night is Sunday 08:00 EDT = 12:00 UTC, not 13:00.
        assert_eq!(
            w.next_opening(New_York, utc("2026-03-08T02:00:00Z")),
            Some(utc("2026-03-08T12:00:00Z"))
        );
        // DST ends Sunday November 1: 08:00 EST = 13:00 UTC.
        assert_eq!(
            w.next_opening(New_York, utc("2026-11-01T02:00:00Z")),
            Some(utc("2026-11-01T13:00:00Z"))
        );
    }

    #[test]
    fn phoenix_has_no_dst() {
        let w = CallingWindow::voice_legal();
        // 08:00 MST = 15:00 UTC all year.
        assert_eq!(
            w.next_opening(Phoenix, utc("2026-01-10T10:00:00Z")),
            Some(utc("2026-01-10T15:00:00Z"))
        );
        assert_eq!(
            w.next_opening(Phoenix, utc("2026-07-10T10:00:00Z")),
            Some(utc("2026-07-10T15:00:00Z"))
        );
    }

    #[test]
    fn next_opening_skips_excluded_weekdays() {
        let w = CallingWindow::narrowed(
            CallingWindow::voice_legal(),
            hm(9, 0),
            hm(17, 0),
            Weekdays::MON_FRI,
        )
        .expect("window");
        // Friday 2026-07-03 18:00 PDT → Monday 2026-07-06 09:00 PDT = 16:00 UTC.
        assert_eq!(
            w.next_opening(Los_Angeles, utc("2026-07-04T01:00:00Z")),
            Some(utc("2026-07-06T16:00:00Z"))
        );
    }

    #[test]
    fn campaigns_cannot_widen_the_legal_window() {
        let w = CallingWindow::narrowed(
            CallingWindow::voice_legal(),
            hm(6, 0),
            hm(23, 0),
            Weekdays::ALL,
        )
        .expect("window");
        assert_eq!((w.start, w.end), (hm(8, 0), hm(21, 0)));
        assert!(matches!(
            CallingWindow::narrowed(
                CallingWindow::voice_legal(),
                hm(21, 0),
                hm(23, 0),
                Weekdays::ALL
            ),
            Err(WindowError::Empty { .. })
        ));
        assert_eq!(
            CallingWindow::narrowed(
                CallingWindow::voice_legal(),
                hm(9, 0),
                hm(10, 0),
                Weekdays(0)
            ),
            Err(WindowError::NoDays)
        );
    }

    #[test]
    fn multi_zone_window_needs_every_zone_open() {
        let w = CallingWindow::voice_legal();
        let zones = [New_York, Los_Angeles];
        // 12:30 UTC: 08:30 in New York, 05:30 in Los Angeles.
        assert!(!w.is_open_in_all(&zones, utc("2026-07-01T12:30:00Z")));
        // Opens when Los Angeles reaches 08:00 (15:00 UTC).
        assert_eq!(
            w.next_opening_in_all(&zones, utc("2026-07-01T12:30:00Z")),
            Some(utc("2026-07-01T15:00:00Z"))
        );
    }
}
