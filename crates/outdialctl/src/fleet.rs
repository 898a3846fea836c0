//! Starts outdial's processes — carrier simulator, API, dialer(s), health, stats — as child
//! processes on one Postgres database and one Redis prefix, waits for each to report ready,
//! and stops them all with SIGTERM (then SIGKILL after a grace period). Used by the demo and
//! by the end-to-end tests, so both run the real binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Binaries of the fleet; each is built by the package of the same name.
pub const BINARIES: [&str; 5] = [
    "outdial-carrier-sim",
    "outdial-api",
    "outdial-dialer",
    "outdial-health",
    "outdial-stats",
];

/// How to start a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Directory holding the binaries.
    pub bin_dir: PathBuf,
    /// Where each process's stderr goes (`<name>.log`).
    pub log_dir: PathBuf,
    /// `OUTDIAL_…` variables for every outdial process (Postgres URL, Redis prefix, clock
    /// offset, dialer settings, …). The fleet adds the addresses it allocates.
    pub env: BTreeMap<String, String>,
    /// `OUTDIAL_SIM_…` variables for the simulator (mix, time scale, seed, …).
    pub sim_env: BTreeMap<String, String>,
    /// Dialer processes to start (at least 1), named `outdial-dialer-<n>`.
    pub dialers: usize,
}

/// A running child.
#[derive(Debug)]
pub struct Proc {
    /// display name, e.g. `outdial-dialer-2`
    pub name: String,
    child: Child,
}

/// A running fleet.
#[derive(Debug)]
pub struct Fleet {
    /// base URL of the API, e.g. `http://127.0.0.1:41234`
    pub api_url: String,
    /// base URL of the carrier simulator
    pub sim_url: String,
    /// every process, in start order
    pub procs: Vec<Proc>,
    /// directory of each process's `<name>.log` (its stderr)
    pub log_dir: PathBuf,
}

/// The directory of the running executable, where cargo puts the fleet's binaries.
///
/// Errors: the executable's path is unknown.
pub fn sibling_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the current executable")?;
    let dir = exe.parent().context("executable without a directory")?;
    // Test executables live in target/<profile>/deps; binaries one level up.
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// Checks that every fleet binary exists in `dir`.
///
/// Errors: names the missing binaries and how to build them.
pub fn check_binaries(dir: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !dir.join(b).exists())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing binaries in {}: {} (build them with `cargo build --bins`)",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound then released; a tiny race is accepted).
///
/// Errors: no port could be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Fleet {
    /// Starts the simulator, then the API, then the workers, each waiting for its ready line.
    ///
    /// Errors: a binary is missing, fails to start, or does not report ready within 30 s
    /// (its log file is named). Processes already started are stopped.
    pub async fn start(opts: &FleetOptions) -> anyhow::Result<Self> {
        check_binaries(&opts.bin_dir)?;
        std::fs::create_dir_all(&opts.log_dir)
            .with_context(|| format!("creating {}", opts.log_dir.display()))?;
        let mut fleet = Self {
            api_url: String::new(),
            sim_url: String::new(),
            procs: Vec::new(),
            log_dir: opts.log_dir.clone(),
        };
        match fleet.start_all(opts).await {
            Ok(()) => Ok(fleet),
            Err(e) => {
                fleet.stop(Duration::from_secs(5)).await;
                Err(e)
            }
        }
    }

    async fn start_all(&mut self, opts: &FleetOptions) -> anyhow::Result<()> {
        let mut sim_env = opts.sim_env.clone();
        sim_env.insert("OUTDIAL_SIM_LISTEN".into(), "127.0.0.1:0".into());
        let line = self
            .spawn(
                "outdial-carrier-sim",
                "outdial-carrier-sim",
                opts,
                &sim_env,
                "listening on ",
            )
            .await?;
        // "… listening on http://ADDR metrics=http://…/metrics"
        self.sim_url = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();

        let api_port = free_port()?;
        self.api_url = format!("http://127.0.0.1:{api_port}");
        let mut env = opts.env.clone();
        env.insert(
            "OUTDIAL_API__LISTEN".into(),
            format!("127.0.0.1:{api_port}"),
        );
        env.insert("OUTDIAL_API__PUBLIC_URL".into(), self.api_url.clone());
        env.insert("OUTDIAL_CARRIER__BASE_URL".into(), self.sim_url.clone());
        env.insert(
            "OUTDIAL_DIALER__CALL_URL".into(),
            format!("{}/carrier/voice/twiml", self.api_url),
        );
        env.insert("OUTDIAL_METRICS__LISTEN".into(), "127.0.0.1:0".into());
        if let Some(token) = opts.sim_env.get("OUTDIAL_SIM_AUTH_TOKEN") {
            env.insert("OUTDIAL_CARRIER__AUTH_TOKEN".into(), token.clone());
        }
        self.spawn("outdial-api", "outdial-api", opts, &env, "listening on")
            .await?;
        for i in 1..=opts.dialers.max(1) {
            self.spawn(
                &format!("outdial-dialer-{i}"),
                "outdial-dialer",
                opts,
                &env,
                "ready",
            )
            .await?;
        }
        self.spawn("outdial-health", "outdial-health", opts, &env, "ready")
            .await?;
        self.spawn("outdial-stats", "outdial-stats", opts, &env, "ready")
            .await?;
        Ok(())
    }

    async fn spawn(
        &mut self,
        name: &str,
        bin: &str,
        opts: &FleetOptions,
        env: &BTreeMap<String, String>,
        ready: &str,
    ) -> anyhow::Result<String> {
        let log_path = opts.log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = Command::new(opts.bin_dir.join(bin));
        cmd.env_clear();
        for key in ["PATH", "HOME", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {bin}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
        });
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if line.contains(ready) {
                    return Ok::<_, anyhow::Error>(Some(line));
                }
            }
            Ok(None)
        };
        let line = match tokio::time::timeout(Duration::from_secs(30), wait).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => bail!(
                "{name} exited before it was ready; see {}",
                log_path.display()
            ),
            Ok(Err(e)) => bail!("reading {name}'s output: {e}"),
            Err(_) => bail!(
                "{name} did not report ready within 30 s; see {}",
                log_path.display()
            ),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(line)
    }

    /// Process ids of the running children.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.procs
            .iter()
            .filter_map(|p| p.child.id().map(|id| (p.name.clone(), id)))
            .collect()
    }

    /// Stops every process: SIGTERM in reverse start order, then waits up to `grace` for
    /// each; a process still running is killed. Returns `(name, exit status)` per process.
    pub async fn stop(&mut self, grace: Duration) -> Vec<(String, String)> {
        for p in self.procs.iter().rev() {
            if let Some(pid) = p.child.id().and_then(|id| i32::try_from(id).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let mut out = Vec::new();
        for p in self.procs.iter_mut().rev() {
            let status = match tokio::time::timeout(grace, p.child.wait()).await {
                Ok(Ok(s)) => s.to_string(),
                Ok(Err(e)) => format!("wait failed: {e}"),
                Err(_) => {
                    let _ = p.child.kill().await;
                    "killed after the grace period".to_owned()
                }
            };
            out.push((p.name.clone(), status));
        }
        self.procs.clear();
        out
    }
}
