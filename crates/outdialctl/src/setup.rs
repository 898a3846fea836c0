//! What the demo, the benchmarks and the campaign commands share: a fresh database and
//! Redis prefix with the fleet's clock pinned, the variables every fleet process gets, the
//! workspace's paths and binaries, and campaign creation from a spec. It depends on no other
//! command module, so the commands do not depend on each other.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Utc;
use outdial_control::spec::CampaignSpec;
use outdial_domain::OrgId;
use outdial_fleet::config::Config;
use outdial_fleet::services::Services;

/// Re-creates database `database` on the configured server, migrates it, clears the fleet's
/// Redis keys, and pins the clock to 18:00 UTC today (a US afternoon: every zone's calling
/// window is open). Returns the services and the configuration the fleet must share.
///
/// Errors: a service is unreachable or the migration fails.
pub(crate) async fn fresh_environment(
    mut config: Config,
    database: &str,
) -> anyhow::Result<(Services, Config)> {
    let admin = outdial_store::replace_database(&config.postgres.url, "postgres");
    outdial_store::drop_database(&admin, database)
        .await
        .with_context(|| format!("dropping database {database}"))?;
    config.postgres.url = outdial_store::ensure_database(&admin, database)
        .await
        .with_context(|| format!("creating database {database}"))?;
    let now = Utc::now();
    let pinned = now
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .map_or(now, |t| t.and_utc());
    config.clock.offset_ms = (pinned - now).num_milliseconds();
    let clock = outdial_fleet::services::clock_from_config(&config);
    let svc = Services::connect(config.clone(), clock).await?;
    svc.store
        .migrate()
        .await
        .with_context(|| format!("migrating {database}"))?;
    clear_redis(&svc).await?;
    Ok((svc, config))
}

/// The variables every fleet process gets: connections, the shared clock, the carrier
/// account.
pub(crate) fn base_fleet_env(config: &Config) -> BTreeMap<String, String> {
    [
        ("OUTDIAL_POSTGRES__URL", config.postgres.url.clone()),
        ("OUTDIAL_REDIS__URL", config.redis.url.clone()),
        ("OUTDIAL_REDIS__PREFIX", config.redis.prefix.clone()),
        (
            "OUTDIAL_CLOCK__OFFSET_MS",
            config.clock.offset_ms.to_string(),
        ),
        (
            "OUTDIAL_CARRIER__ACCOUNT_SID",
            config.carrier.account_sid.clone(),
        ),
        ("OUTDIAL_LOG__FILTER", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn clear_redis(svc: &Services) -> anyhow::Result<()> {
    let prefix = &svc.config.redis.prefix;
    let mut conn = svc.redis.get().await?;
    for pattern in [
        format!("{prefix}bull:{{campaign-*"),
        format!("{prefix}channels:*"),
        format!("{{{prefix}channels:*"),
    ] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut *conn)
            .await?;
        if !keys.is_empty() {
            let () = redis::cmd("DEL").arg(&keys).query_async(&mut *conn).await?;
        }
    }
    Ok(())
}

/// The workspace root (the demo's data and logs live under it): two levels above this
/// crate's manifest under `cargo run`, else the current directory.
pub(crate) fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|m| m.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Under `cargo run` (CARGO is set), builds the fleet's binaries with the same profile so
/// they match this `outdialctl`. Only the fleet's packages: rebuilding `outdialctl` itself
/// with another feature set would overwrite the running binary and make every `cargo demo`
/// rebuild both.
pub(crate) fn build_fleet_if_under_cargo(bin_dir: &Path) -> anyhow::Result<()> {
    let Ok(cargo) = std::env::var("CARGO") else {
        return Ok(());
    };
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--bins"])
        .current_dir(workspace_root());
    // Each fleet binary is the package of the same name.
    for package in crate::fleet::BINARIES {
        cmd.args(["--package", package]);
    }
    // `cargo run` exports this package's CARGO_PKG_*/CARGO_MANIFEST_* variables to us; some
    // build scripts (ring's) watch them, so passing them on would rebuild half the tree.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    if bin_dir.ends_with("release") {
        cmd.arg("--release");
    }
    println!("building the fleet's binaries …");
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --bins failed ({status})");
    }
    Ok(())
}

/// Creates a campaign of `org` from `spec` (product §12 defaults for unset fields), now by
/// `svc`'s clock.
///
/// Errors: an invalid spec (its message), or Postgres failures.
pub(crate) async fn new_campaign(
    svc: &Services,
    org: OrgId,
    spec: CampaignSpec,
) -> anyhow::Result<outdial_store::campaigns::Campaign> {
    let new = spec
        .into_new(org, &svc.config.channels)
        .map_err(anyhow::Error::msg)?;
    Ok(svc.store.create_campaign(&new, svc.clock.now()).await?)
}

/// The non-empty values of the `phone` column (any case) of CSV `bytes`, in file order: a
/// suppression file (`outdialctl suppress add --file`, the demo's `suppressions.csv`).
///
/// Errors: no `phone` column, or an unreadable row (named by its 1-based number).
pub(crate) fn read_phone_column(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader.headers()?.clone();
    let col = headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case("phone"))
        .context("the file has no `phone` column")?;
    let mut out = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("row {}", i + 1))?;
        if let Some(p) = rec.get(col).filter(|p| !p.is_empty()) {
            out.push(p.to_owned());
        }
    }
    Ok(out)
}
