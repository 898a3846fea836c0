//! Contact uploads (product §11): a CSV validated row by row and imported in one transaction.

use outdial_domain::{CampaignId, OrgId};
use outdial_fleet::services::Services;
use outdial_store::StoreError;

/// Why an import failed as a whole (bad rows are reported, not failures).
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// The file has no usable header.
    #[error(transparent)]
    File(#[from] outdial_domain::import::ImportError),
    /// The campaign does not exist, or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates and imports a contact CSV into `campaign` of `org` (product §11): every row is
/// parsed and validated; valid, de-duplicated contacts are inserted in one transaction with
/// an upload record; the report lists every rejected row with its number.
///
/// Errors: [`ImportFailure::File`] for an unusable header (nothing is written),
/// [`ImportFailure::Store`] for an unknown campaign or a database failure (nothing is
/// written).
pub async fn import_contacts(
    svc: &Services,
    org: OrgId,
    campaign: CampaignId,
    filename: &str,
    bytes: &[u8],
) -> Result<outdial_store::contacts::ImportReport, ImportFailure> {
    let c = svc.store.campaign(campaign, Some(org)).await?;
    let parsed = outdial_domain::import::parse_contacts_csv(bytes, &c.timezone)?;
    let now = svc.clock.now();
    let report = svc
        .store
        .import_contacts(
            org,
            Some(campaign),
            filename,
            parsed.rows_read,
            &parsed.contacts,
            parsed.rejections,
            parsed.malformed,
            now,
        )
        .await?;
    Ok(report)
}
