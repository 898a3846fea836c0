//! # outdial-domain
//!
//! The rules of the outdial campaign engine as pure functions of their inputs and an
//! explicit `now`. Nothing here does I/O: no Postgres, no Redis, no tokio. Every other
//! crate calls into this one, so a rule lives in exactly one place and is unit-tested
//! without services.
//!
//! | module | rule | source |
//! |---|---|---|
//! | [`ids`] | typed identifiers (`OrgId`, `CampaignId`, …) | — |
//! | [`phone`] | E.164 parsing, NANP area codes and their time zones | product §5.2, §11 |
//! | [`window`] | calling windows (TCPA 08–21, SMS 08–19) across DST | product §5.2, §6 |
//! | [`allocation`] | proportional slot allocation with water-filling | product §4 |
//! | [`pacing`] | voice tick interval, SMS drip interval, tick scheduling | product §5, §6 |
//! | [`contact`] | statuses, dispositions, phone selection, outcome resolution | product §5.4, §5 "Outcomes" |
//! | [`health`] | caller-ID health score and action | product §7 |
//! | [`did`] | caller-ID states and selection | product §5.5, §7 |
//! | [`campaign`] | campaign state machine and settings | product §8 |
//! | [`start`] | what starting an admitted contact does: DNC → number → window → caller ID → dial | product §5 "One attempt" |
//! | [`sms`] | text-message statuses, forward-only, and the prospect status each implies | product §6 |
//! | [`import`] | contact files: E.164 validation, duplicates, time zones, row-numbered rejections | product §11 |

pub mod allocation;
pub mod campaign;
pub mod contact;
pub mod did;
pub mod health;
pub mod ids;
pub mod import;
pub mod pacing;
pub mod phone;
pub mod sms;
pub mod start;
mod text;
pub mod window;

pub use ids::{AttemptId, CampaignId, ContactId, DidId, OrgId, UploadId};
