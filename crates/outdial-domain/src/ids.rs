//! Typed identifiers. All are Postgres `BIGINT` ids wrapped so an organization id can never
//! be passed where a campaign id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// An organization (tenant); limits and tokens belong to one (product §4, §10).
    OrgId
);
id_type!(
    /// A voice or SMS campaign (product §8).
    CampaignId
);
id_type!(
    /// A contact / prospect: one person with an ordered list of phone numbers (product §5.4).
    ContactId
);
id_type!(
    /// A caller ID (DID) owned by an organization (product §5.5, §7).
    DidId
);
id_type!(
    /// One call attempt, unique per (contact, attempt index) (product §5.6).
    AttemptId
);
id_type!(
    /// One contact upload (CSV import); ties contacts to their file (product §11).
    UploadId
);
