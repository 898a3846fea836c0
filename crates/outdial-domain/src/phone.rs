//! Phone numbers: E.164 parsing and validation (through the `phonenumber` crate, a port of
//! libphonenumber), NANP area codes, and the time zones a NANP number may be in
//! (product §5.2 "Timezone: … derived from its NANP area code", product §11 upload validation).

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A validated phone number in E.164 form, e.g. `"+12125550100"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164(String);

/// Why a phone number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// The text could not be parsed as a phone number at all.
    #[error("not a phone number: {0:?}")]
    Unparseable(String),
    /// It parsed, but no such number can exist (wrong length, unassigned area code, …).
    #[error("not a valid phone number: {0:?}")]
    Invalid(String),
}

impl E164 {
    /// Parses `raw` (any common notation: `(212) 555-0100`, `+1 212 555 0100`, …) and
    /// validates it with libphonenumber's metadata. Numbers without a country code are read
    /// as US numbers. Text with letters is refused: libphonenumber would read them as a
    /// keypad (vanity) number, which turns a typo like `212 555 O143` into a real, different
    /// number — calling it would reach a stranger.
    ///
    /// Errors: [`PhoneError::Unparseable`] for text that is not a number or has letters,
    /// [`PhoneError::Invalid`] for a number that cannot exist.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.chars().any(|c| c.is_alphabetic()) {
            return Err(PhoneError::Unparseable(trimmed.to_owned()));
        }
        let number = phonenumber::parse(Some(phonenumber::country::Id::US), trimmed)
            .map_err(|_| PhoneError::Unparseable(trimmed.to_owned()))?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid(trimmed.to_owned()));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// A number read back from outdial's own storage, where only [`E164::parse`]d numbers
    /// are written: checked for the E.164 shape (`+`, then 2 to 15 digits, the first not 0)
    /// without libphonenumber's metadata, so reading a million contacts stays cheap.
    ///
    /// Errors: [`PhoneError::Invalid`] for text of another shape (a corrupt row).
    pub fn from_stored(e164: impl Into<String>) -> Result<Self, PhoneError> {
        let e164 = e164.into();
        let digits = e164.strip_prefix('+').unwrap_or("");
        let shaped = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if shaped {
            Ok(Self(e164))
        } else {
            Err(PhoneError::Invalid(e164))
        }
    }

    /// The E.164 text, e.g. `"+12125550100"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The three-digit NANP area code (`"212"` for `+12125550100`), or `None` for numbers
    /// outside country code 1.
    pub fn area_code(&self) -> Option<&str> {
        area_code(&self.0)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for E164 {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for E164 {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The NANP area code of an E.164 string (`"+1NPA…"` with 10 national digits), else `None`.
pub fn area_code(e164: &str) -> Option<&str> {
    let national = e164.strip_prefix("+1")?;
    (national.len() == 10 && national.bytes().all(|b| b.is_ascii_digit())).then(|| &national[..3])
}

/// Prefix → zones table for country code 1, derived from libphonenumber's
/// `resources/timezones/map_data.txt` (Apache-2.0; see the file's header).
static NANP_TIMEZONES_TXT: &str = include_str!("../data/nanp_timezones.txt");

fn nanp_table() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        NANP_TIMEZONES_TXT
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| line.split_once('|'))
            .collect()
    })
}

/// The time-zone key of a NANP number: the IANA zone, or several zones joined by `&` in
/// alphabetical order when the number's prefix spans more than one (e.g.
/// `"America/Adak&America/Anchorage"` for area code 907). `None` when the number is not
/// NANP or its prefix is unknown.
///
/// The longest matching prefix (up to 7 digits after the `+`) wins, as in libphonenumber.
/// A multi-zone key is checked against every zone it names, so a contact is only called
/// when it is inside the window in all of them (TCPA-safe; product §5.2).
pub fn nanp_timezone_key(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if !digits.starts_with('1') {
        return None;
    }
    let table = nanp_table();
    (4..=digits.len().min(7))
        .rev()
        .find_map(|len| table.get(&digits[..len]).copied())
}

/// The time-zone key of number `e164` (product §5.2): the zones that must all be open for it
/// to be dialed, alphabetical, joined by `&`. They are its area-code zone(s)
/// ([`nanp_timezone_key`]) and, when the upload stated a zone for the contact (`stated`, an
/// IANA name), that zone too — the conservative intersection of the allowed hours, because
/// either may be where the person is. A number with no known area-code zone and no stated
/// zone gets `fallback` (the campaign's `timezone`).
///
/// `"+14155550100"` stated `America/New_York` → `"America/Los_Angeles&America/New_York"`;
/// stated `America/Los_Angeles` → `"America/Los_Angeles"`; none → `"America/Los_Angeles"`.
pub fn number_timezone_key(e164: &str, stated: Option<&str>, fallback: &str) -> String {
    let mut zones: Vec<&str> = nanp_timezone_key(e164)
        .map(|k| k.split('&').collect())
        .unwrap_or_default();
    zones.extend(stated);
    zones.sort_unstable();
    zones.dedup();
    if zones.is_empty() {
        fallback.to_owned()
    } else {
        zones.join("&")
    }
}

/// Parses a time-zone key (one IANA zone name, or several joined by `&`) into zones.
///
/// Errors: the first component that is not a known IANA zone name.
pub fn parse_timezone_key(key: &str) -> Result<Vec<Tz>, String> {
    key.split('&')
        .map(|name| name.parse::<Tz>().map_err(|_| name.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_notations_to_e164() {
        for raw in [
            "(212) 555-0100",
            "+1 212 555 0100",
            "212.555.0100",
            "12125550100",
        ] {
            assert_eq!(
                E164::parse(raw).map(|n| n.to_string()),
                Ok("+12125550100".to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_garbage_and_impossible_numbers() {
        assert!(matches!(
            E164::parse("call me"),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(
            matches!(E164::parse("212 555 O143"), Err(PhoneError::Unparseable(_))),
            "letter O is not a zero"
        );
        assert!(E164::parse("1-800-FLOWERS").is_err(), "no vanity numbers");
        assert!(E164::parse("555-0100").is_err());
        assert!(matches!(
            E164::parse("+1 012 555 0100"),
            Err(PhoneError::Invalid(_))
        ));
    }

    #[test]
    fn stored_numbers_are_checked_for_their_shape() {
        assert_eq!(
            E164::from_stored("+12125550100").map(|n| n.to_string()),
            Ok("+12125550100".to_owned())
        );
        for bad in [
            "12125550100",
            "+",
            "+0123",
            "+1212555010x",
            "+1234567890123456",
        ] {
            assert!(E164::from_stored(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn area_code_only_for_nanp() {
        assert_eq!(area_code("+13125550100"), Some("312"));
        assert_eq!(area_code("+442071838750"), None);
        assert_eq!(area_code("+1312"), None);
    }

    #[test]
    fn timezone_by_longest_prefix() {
        assert_eq!(nanp_timezone_key("+12125550100"), Some("America/New_York"));
        assert_eq!(nanp_timezone_key("+13125550100"), Some("America/Chicago"));
        assert_eq!(nanp_timezone_key("+16025550100"), Some("America/Phoenix"));
        assert_eq!(nanp_timezone_key("+13065550100"), Some("America/Regina"));
        assert_eq!(
            nanp_timezone_key("+19075550100"),
            Some("America/Adak&America/Anchorage")
        );
        assert_eq!(nanp_timezone_key("+442071838750"), None);
    }

    #[test]
    fn a_numbers_key_is_its_area_code_zones_and_the_stated_zone() {
        let key = |n, stated| number_timezone_key(n, stated, "America/Los_Angeles");
        assert_eq!(key("+12125550100", None), "America/New_York");
        assert_eq!(
            key("+12125550100", Some("America/New_York")),
            "America/New_York"
        );
        assert_eq!(
            key("+12125550100", Some("America/Los_Angeles")),
            "America/Los_Angeles&America/New_York"
        );
        assert_eq!(
            key("+14155550100", Some("America/New_York")),
            "America/Los_Angeles&America/New_York"
        );
        assert_eq!(
            key("+13125550100", Some("America/New_York")),
            "America/Chicago&America/New_York"
        );
        assert_eq!(
            key("+19075550100", Some("America/Anchorage")),
            "America/Adak&America/Anchorage",
            "a multi-zone prefix keeps every zone"
        );
        assert_eq!(key("+442071838750", Some("Europe/London")), "Europe/London");
        assert_eq!(
            key("+442071838750", None),
            "America/Los_Angeles",
            "no area-code zone, none stated: the fallback"
        );
        for k in [
            key("+14155550100", Some("America/New_York")),
            key("+19075550100", None),
        ] {
            assert!(parse_timezone_key(&k).is_ok(), "{k}");
        }
    }

    #[test]
    fn every_zone_in_the_table_is_known_to_chrono_tz() {
        for zones in nanp_table().values() {
            assert!(parse_timezone_key(zones).is_ok(), "{zones}");
        }
    }
}
