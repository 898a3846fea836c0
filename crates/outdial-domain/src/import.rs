//! Contact files (product §11): a CSV of contacts is validated row by row — E.164 parsing of
//! every number, duplicates within the file, time zones — and every rejected row is reported
//! with its row number and reason. Nothing is dropped silently.
//!
//! Format: a header row, then one contact per row. Columns (case-insensitive, any order):
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `phone` | yes | primary number, any common notation (`(212) 555-0143`, `+1 212 555 0143`, …) |
//! | `phone_2` … `phone_9` | no | further numbers, dialed in this order after the primary |
//! | `name` | no | display name |
//! | `external_id` | no | the uploader's id |
//! | `timezone` | no | IANA zone where the contact may be: each number is dialed only in hours open there **and** in its own area-code zone(s) ([`crate::phone::number_timezone_key`]) |
//!
//! Other columns are ignored. Row numbers are 1-based data rows (the header is row 0; file
//! line = row + 1).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::phone::{E164, number_timezone_key};

/// A valid contact row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRow {
    /// the uploader's id
    pub external_id: Option<String>,
    /// the CSV `name` column, if present
    pub name: Option<String>,
    /// numbers in dialing order (at least one)
    pub phone_numbers: Vec<E164>,
    /// each number's time-zone key, in the same order: the zones (`&`-joined) that must all
    /// be open for it to be dialed ([`crate::phone::number_timezone_key`])
    pub phone_timezones: Vec<String>,
    /// 1-based data row
    pub row: usize,
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// 1-based data row
    pub row: usize,
    /// why, e.g. `malformed: phone "(123) 555-0100" is not a valid phone number`
    pub error: String,
}

/// The validated file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParsedFile {
    /// data rows read
    pub rows_read: usize,
    /// valid, de-duplicated contacts in file order
    pub contacts: Vec<ContactRow>,
    /// rejected rows in row order
    pub rejections: Vec<Rejection>,
    /// how many rejections are malformed rows
    pub malformed: usize,
    /// how many rejections are duplicates within the file
    pub duplicates: usize,
}

/// A file that cannot be read at all (as opposed to a bad row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The header has no `phone` column.
    #[error("the header has no `phone` column (found: {0})")]
    NoPhoneColumn(String),
    /// The file is empty or its header is unreadable.
    #[error("cannot read the header: {0}")]
    BadHeader(String),
    /// The fallback time zone is not an IANA zone.
    #[error("unknown fallback time zone {0:?}")]
    BadDefaultZone(String),
}

/// Validates a contact CSV. `default_timezone` (IANA) is the zone of a number whose zone
/// is neither derivable from its area code nor stated on its row.
///
/// Errors: [`ImportError`] for a file without a usable header; bad rows are not errors but
/// [`Rejection`]s.
pub fn parse_contacts_csv(bytes: &[u8], default_timezone: &str) -> Result<ParsedFile, ImportError> {
    if default_timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ImportError::BadDefaultZone(default_timezone.to_owned()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ImportError::BadHeader(e.to_string()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let phone_col = col("phone").ok_or_else(|| ImportError::NoPhoneColumn(header.join(", ")))?;
    let extra_cols: Vec<usize> = (2..=9)
        .filter_map(|i| col(&format!("phone_{i}")).or_else(|| col(&format!("phone{i}"))))
        .collect();
    let (name_col, ext_col, tz_col) = (col("name"), col("external_id"), col("timezone"));

    let mut out = ParsedFile::default();
    let mut seen: HashMap<E164, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 1;
        out.rows_read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                out.malformed += 1;
                out.rejections.push(Rejection {
                    row,
                    error: format!("malformed: unreadable row: {e}"),
                });
                continue;
            }
        };
        let field = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        match validate_row(
            &field,
            phone_col,
            &extra_cols,
            field(tz_col),
            default_timezone,
        ) {
            Err(error) => {
                out.malformed += 1;
                out.rejections.push(Rejection {
                    row,
                    error: format!("malformed: {error}"),
                });
            }
            Ok((phone_numbers, phone_timezones)) => {
                if let Some(first) = seen.get(&phone_numbers[0]) {
                    out.duplicates += 1;
                    out.rejections.push(Rejection {
                        row,
                        error: format!("duplicate: {} is also on row {first}", phone_numbers[0]),
                    });
                    continue;
                }
                seen.insert(phone_numbers[0].clone(), row);
                out.contacts.push(ContactRow {
                    external_id: field(ext_col).map(str::to_owned),
                    name: field(name_col).map(str::to_owned),
                    phone_numbers,
                    phone_timezones,
                    row,
                });
            }
        }
    }
    Ok(out)
}

fn validate_row<'a>(
    field: &impl Fn(Option<usize>) -> Option<&'a str>,
    phone_col: usize,
    extra_cols: &[usize],
    tz: Option<&str>,
    default_timezone: &str,
) -> Result<(Vec<E164>, Vec<String>), String> {
    let primary = field(Some(phone_col)).ok_or("phone is empty")?;
    let mut numbers = vec![E164::parse(primary).map_err(|e| format!("phone: {e}"))?];
    for c in extra_cols {
        if let Some(raw) = field(Some(*c)) {
            let n = E164::parse(raw).map_err(|e| format!("phone_{}: {e}", numbers.len() + 1))?;
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
    }
    if let Some(z) = tz {
        z.parse::<chrono_tz::Tz>()
            .map_err(|_| format!("timezone {z:?} is not an IANA time zone"))?;
    }
    let zones = numbers
        .iter()
        .map(|n| number_timezone_key(n.as_str(), tz, default_timezone))
        .collect();
    Ok((numbers, zones))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_dedups_and_numbers_rows() {
        let csv = "external_id,name,phone,phone_2,timezone\n\
                   A1,Ann,(212) 555-0143,+1 312 555 0100,\n\
                   A2,Bob,call me,,\n\
                   A3,Cid,+12125550143,,\n\
                   A4,Dee,6025550100,,America/Denver\n\
                   A5,Eve,2065550100,,Mars/Olympus\n\
                   A6,Fay,,,\n";
        let f = parse_contacts_csv(csv.as_bytes(), "America/Los_Angeles").expect("parse");
        assert_eq!(
            (f.rows_read, f.contacts.len(), f.malformed, f.duplicates),
            (6, 2, 3, 1)
        );
        assert_eq!(
            f.contacts[0].phone_numbers,
            vec!["+12125550143", "+13125550100"]
        );
        assert_eq!(
            f.contacts[0].phone_timezones,
            vec!["America/New_York", "America/Chicago"],
            "each number's zone from its own area code"
        );
        assert_eq!(
            (f.contacts[1].row, f.contacts[1].phone_timezones[0].as_str()),
            (4, "America/Denver&America/Phoenix"),
            "a stated zone joins the area code's: both must be open"
        );
        let rows: Vec<(usize, &str)> = f
            .rejections
            .iter()
            .map(|r| (r.row, r.error.as_str()))
            .collect();
        assert_eq!(rows[0].0, 2);
        assert!(rows[0].1.starts_with("malformed: phone"), "{}", rows[0].1);
        assert_eq!(rows[1], (3, "duplicate: +12125550143 is also on row 1"));
        assert!(rows[2].1.contains("Mars/Olympus"));
        assert_eq!(rows[3], (6, "malformed: phone is empty"));
    }

    #[test]
    fn header_problems_are_errors() {
        assert!(matches!(
            parse_contacts_csv(b"name,number\nA,1\n", "America/Los_Angeles"),
            Err(ImportError::NoPhoneColumn(_))
        ));
        assert!(matches!(
            parse_contacts_csv(b"phone\n", "Nowhere/Land"),
            Err(ImportError::BadDefaultZone(_))
        ));
    }

    #[test]
    fn the_shipped_demo_file_gives_the_documented_counts() {
        let bytes = include_bytes!("../../../deploy/demo/contacts.csv");
        let f = parse_contacts_csv(bytes, "America/Los_Angeles").expect("parse");
        assert_eq!(
            (f.rows_read, f.contacts.len(), f.malformed, f.duplicates),
            (2400, 2355, 20, 25)
        );
        let malformed: Vec<usize> = f
            .rejections
            .iter()
            .filter(|r| r.error.starts_with("malformed"))
            .map(|r| r.row)
            .collect();
        assert_eq!(
            malformed,
            vec![
                82, 154, 284, 410, 585, 678, 728, 879, 962, 1070, 1211, 1325, 1468, 1583, 1678,
                1795, 1967, 2055, 2176, 2287
            ]
        );
        let zones: std::collections::BTreeSet<&str> = f
            .contacts
            .iter()
            .map(|c| c.phone_timezones[0].as_str())
            .collect();
        assert!(zones.len() >= 4, "{zones:?}");
    }
}
