//! `outdialctl`'s command-line arguments (clap): one type per subcommand group.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// outdial operator CLI. Connections: OUTDIAL_POSTGRES__URL, OUTDIAL_REDIS__URL,
/// OUTDIAL_REDIS__PREFIX (see docs/configuration.md).
#[derive(Debug, Parser)]
#[command(name = "outdialctl", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `outdialctl` (product §11).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations.
    Migrate {
        /// Create the database first if it does not exist.
        #[arg(long)]
        create: bool,
    },
    /// Organizations (tenants): create, list.
    #[command(subcommand)]
    Org(OrgCommand),
    /// API bearer tokens: create one (the secret is printed once).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Caller IDs (DIDs): add, list with state and score.
    #[command(subcommand)]
    Did(DidCommand),
    /// Suppression (DNC) list: add numbers.
    #[command(subcommand)]
    Suppress(SuppressCommand),
    /// Import a contact CSV into a campaign (E.164 validation; malformed and duplicate rows
    /// reported with their row numbers).
    Import {
        /// The CSV file (columns: phone, phone_2…phone_9, name, external_id, timezone).
        file: PathBuf,
        /// Id of the campaign to import into.
        #[arg(long)]
        campaign: i64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Campaigns: create, list, start, pause, resume, cancel, status.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Channel pools: live count vs holders; `--repair` drops expired holders and fixes drift.
    Channels {
        /// Drop expired holders and set each count to its live holders.
        #[arg(long)]
        repair: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Queue depths, lateness of the oldest due job, dead letters.
    Queues {
        /// Also list up to this many dead letters per queue.
        #[arg(long, default_value_t = 0)]
        dead: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dispatch: why campaigns are (not) dialing.
    #[command(subcommand)]
    Dispatch(DispatchCommand),
    /// Run the demo: migrate, seed, start the fleet, dial a campaign, summarize.
    Demo(DemoArgs),
    /// Benchmarks on the local services with the real binaries (build with --release).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Subcommands of `outdialctl dispatch`.
#[derive(Debug, Subcommand)]
pub enum DispatchCommand {
    /// For the current state: each organization's limit, active calls, room, demand and
    /// allocation, and for each voice campaign why it is or is not dialing.
    Explain {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `outdialctl bench`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Campaign pacing: one campaign at each rate in turn; achieved vs configured starts per
    /// second and inter-start jitter, measured where the calls arrive (the simulator).
    Pacing {
        /// Calls per second to measure, in order.
        #[arg(long, value_delimiter = ',', default_value = "1,5,20,100")]
        rates: Vec<f64>,
        /// Seconds measured per rate.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Dialer processes to run.
        #[arg(long, default_value_t = 2)]
        dialers: usize,
        /// Database to (re)create.
        #[arg(long, default_value = "outdial_bench")]
        database: String,
    },
    /// Dispatch at scale: contacts, organizations and campaigns in Postgres; dispatch-cycle
    /// duration and the sustained attempt-start rate with an instantly answering simulator.
    Dispatch {
        /// Contacts to seed, spread evenly over the campaigns.
        #[arg(long, default_value_t = 1_000_000)]
        contacts: i64,
        /// Organizations to seed.
        #[arg(long, default_value_t = 1_000)]
        orgs: i64,
        /// Campaigns (spread evenly over the organizations).
        #[arg(long, default_value_t = 2_000)]
        campaigns: i64,
        /// Calls per second of each campaign.
        #[arg(long, default_value_t = 0.5)]
        cps: f64,
        /// Seconds measured (after a 10 s warm-up).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Dialer processes to run.
        #[arg(long, default_value_t = 2)]
        dialers: usize,
        /// Handlers per dialer process.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Pooled Postgres connections per fleet process (`OUTDIAL_POSTGRES__MAX_CONNECTIONS`;
        /// each dialer has its dispatch connections besides).
        #[arg(long, default_value_t = 14)]
        pg_connections: u32,
        /// Database to (re)create.
        #[arg(long, default_value = "outdial_bench")]
        database: String,
    },
}

/// Subcommands of `outdialctl org`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization.
    Create {
        /// Unique name.
        name: String,
        /// Simultaneous calls (1..=10000, default 10).
        #[arg(long)]
        concurrency_limit: Option<i32>,
    },
    /// List organizations.
    List,
}

/// Subcommands of `outdialctl token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a bearer token; the secret is printed once.
    Create {
        /// Organization id or name.
        #[arg(long)]
        org: String,
        /// Comma-separated scopes, e.g. campaigns:read,concurrency:manage.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

/// Subcommands of `outdialctl did`.
#[derive(Debug, Subcommand)]
pub enum DidCommand {
    /// Add caller IDs.
    Add {
        /// Organization id or name.
        #[arg(long)]
        org: String,
        /// Numbers (any notation; stored E.164).
        numbers: Vec<String>,
    },
    /// List caller IDs with state and score.
    List {
        /// Organization id or name.
        #[arg(long)]
        org: Option<String>,
    },
}

/// Subcommands of `outdialctl suppress`.
#[derive(Debug, Subcommand)]
pub enum SuppressCommand {
    /// Add numbers to the suppression list (from arguments and/or a CSV with a `phone` column).
    Add {
        /// Organization id or name.
        #[arg(long)]
        org: String,
        /// A CSV file with a `phone` column.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Numbers to suppress (any notation; stored E.164).
        numbers: Vec<String>,
    },
}

/// Subcommands of `outdialctl campaign`.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign.
    Create(Box<CreateCampaign>),
    /// List campaigns.
    List {
        /// Organization id or name.
        #[arg(long)]
        org: Option<String>,
    },
    /// Start (created → dialing).
    Start(CampaignRef),
    /// Pause (dialing → paused).
    Pause(CampaignRef),
    /// Resume (paused → dialing).
    Resume(CampaignRef),
    /// Cancel (→ cancelled; queued contacts are cancelled).
    Cancel(CampaignRef),
    /// Progress: expected vs processed, counts by status and disposition, attempts, rate.
    Status {
        /// Id of the campaign to report on.
        id: i64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A campaign to act on.
#[derive(Debug, Args)]
pub struct CampaignRef {
    /// Id of the campaign to act on.
    pub id: i64,
    /// Why (recorded with the transition).
    #[arg(long)]
    pub reason: Option<String>,
}

/// Flags of `outdialctl campaign create`; unset ones take product §12 defaults.
#[derive(Debug, Args)]
pub struct CreateCampaign {
    /// Organization id or name.
    #[arg(long)]
    pub org: String,
    /// Name shown in lists (need not be unique).
    #[arg(long)]
    pub name: String,
    /// voice or sms.
    #[arg(long, default_value = "voice")]
    pub channel: String,
    /// Call starts per second.
    #[arg(long)]
    pub cps: Option<f64>,
    /// Priority (higher first).
    #[arg(long)]
    pub priority: Option<i32>,
    /// Local window, e.g. 09:00-20:00 (clipped to the legal window).
    #[arg(long)]
    pub window: Option<String>,
    /// Weekdays, e.g. mon,tue,wed,thu,fri.
    #[arg(long, value_delimiter = ',')]
    pub days: Option<Vec<String>>,
    /// Fallback time zone.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Retry delay, ms.
    #[arg(long)]
    pub retry_delay_ms: Option<i64>,
    /// Attempts per number.
    #[arg(long)]
    pub max_attempts_per_number: Option<u32>,
    /// Caller IDs to use (E.164, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub caller_ids: Option<Vec<String>>,
    /// SMS body (required with `--channel sms`).
    #[arg(long)]
    pub message: Option<String>,
}

/// Flags of `outdialctl demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Contact CSV to dial.
    #[arg(long, default_value = "deploy/demo/contacts.csv")]
    pub contacts: PathBuf,
    /// Suppression list CSV.
    #[arg(long, default_value = "deploy/demo/suppressions.csv")]
    pub suppressions: PathBuf,
    /// Numbers the simulator reports unallocated.
    #[arg(long, default_value = "deploy/demo/unallocated.txt")]
    pub unallocated: PathBuf,
    /// Calls per second of the voice campaign.
    #[arg(long, default_value_t = 20.0)]
    pub cps: f64,
    /// Prospects of the SMS campaign run beside the voice one: the first rows of the
    /// contact CSV (0: no SMS campaign).
    #[arg(long, default_value_t = 400)]
    pub sms_prospects: usize,
    /// Minimum gap between two texts of one DID in the demo, ms (production: 15 min).
    #[arg(long, default_value_t = 2_000)]
    pub sms_gap_ms: i64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 290)]
    pub timeout_s: u64,
    /// Dialer processes to run.
    #[arg(long, default_value_t = 2)]
    pub dialers: usize,
    /// Database the demo (re)creates on the local server.
    #[arg(long, default_value = "outdial_demo")]
    pub database: String,
    /// Where process logs go.
    #[arg(long, default_value = ".demo/logs")]
    pub log_dir: PathBuf,
    /// Do not draw the progress bar (for logs and CI).
    #[arg(long)]
    pub no_progress: bool,
}
