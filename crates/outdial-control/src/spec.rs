//! Campaign settings as an API client or operator writes them (JSON for
//! `POST /api/campaigns`, flags for `outdialctl campaign create`), validated into a new
//! campaign (product §5, §6, §12).

use outdial_domain::OrgId;
use outdial_domain::campaign::Channel;

/// A campaign as an API client or operator describes it (JSON for `POST /api/campaigns`,
/// flags for `outdialctl campaign create`). Unset fields take product §12 defaults.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// shown in lists; required, need not be unique
    pub name: String,
    /// `voice` (default) or `sms`
    #[serde(default)]
    pub channel: Option<Channel>,
    /// call starts per second, (0, 1000] (default 1)
    #[serde(default)]
    pub calls_per_second: Option<f64>,
    /// higher dials first (default 0)
    #[serde(default)]
    pub priority: Option<i32>,
    /// attempts per number before the next one, 1..=20 (default 2)
    #[serde(default)]
    pub max_attempts_per_phone_number: Option<u32>,
    /// delay before a retry, ms (default 3 600 000)
    #[serde(default)]
    pub retry_delay_ms: Option<i64>,
    /// voicemail drops a message and completes (default false: retry)
    #[serde(default)]
    pub voicemail_drop: Option<bool>,
    /// busy retries (default false: completes)
    #[serde(default)]
    pub retry_busy: Option<bool>,
    /// calling window, local time; clipped to the legal window (voice 08–21, SMS 08–19)
    #[serde(default)]
    pub window: Option<WindowSpec>,
    /// fallback time zone for contacts without one (default America/Los_Angeles)
    #[serde(default)]
    pub timezone: Option<String>,
    /// caller IDs to use (E.164); default: any of the organization's
    #[serde(default)]
    pub caller_ids: Option<Vec<String>>,
    /// SIP channel pool (default `campaign`)
    #[serde(default)]
    pub sip_pool: Option<String>,
    /// SMS text (required for SMS)
    #[serde(default)]
    pub message_body: Option<String>,
}

/// A calling window: `"HH:MM"` start and end in local time, optional weekdays
/// (`mon`…`sun`, default every day).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// first allowed local time, `HH:MM`
    pub start: String,
    /// end (exclusive), `HH:MM`
    pub end: String,
    /// weekdays, e.g. `["mon","tue","wed","thu","fri"]`
    #[serde(default)]
    pub days: Option<Vec<String>>,
}

impl CampaignSpec {
    /// Validates the spec into a campaign of `org` (product §5, §6, §12).
    ///
    /// Errors: a message naming the first bad field.
    pub fn into_new(
        self,
        org: OrgId,
        pools: &outdial_channels::ChannelConfig,
    ) -> Result<outdial_store::campaigns::NewCampaign, String> {
        use outdial_domain::window::{CallingWindow, Weekdays};
        use outdial_store::campaigns::NewCampaign;
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        let channel = self.channel.unwrap_or(Channel::Voice);
        let mut c = match channel {
            Channel::Voice => NewCampaign::voice(org, self.name.trim()),
            Channel::Sms => {
                let body = self
                    .message_body
                    .clone()
                    .filter(|b| !b.trim().is_empty())
                    .ok_or("message_body is required for an SMS campaign")?;
                NewCampaign::sms(org, self.name.trim(), body)
            }
        };
        if let Some(cps) = self.calls_per_second {
            if !(cps > 0.0 && cps <= outdial_domain::pacing::MAX_CALLS_PER_SECOND) {
                return Err(format!("calls_per_second must be in (0, 1000], got {cps}"));
            }
            c.calls_per_second = cps;
        }
        if let Some(p) = self.priority {
            c.priority = p;
        }
        if let Some(n) = self.max_attempts_per_phone_number {
            if !(1..=20).contains(&n) {
                return Err(format!(
                    "max_attempts_per_phone_number must be in 1..=20, got {n}"
                ));
            }
            c.retry.max_attempts_per_phone_number = n;
        }
        if let Some(ms) = self.retry_delay_ms {
            if ms < 0 {
                return Err("retry_delay_ms must not be negative".into());
            }
            c.retry.retry_delay_ms = ms;
        }
        c.retry.voicemail_drop = self.voicemail_drop.unwrap_or(c.retry.voicemail_drop);
        c.retry.retry_busy = self.retry_busy.unwrap_or(c.retry.retry_busy);
        if let Some(w) = &self.window {
            let time = |s: &str| {
                chrono::NaiveTime::parse_from_str(s, "%H:%M")
                    .map_err(|_| format!("window time {s:?} is not HH:MM"))
            };
            let days = match &w.days {
                None => Weekdays::ALL,
                Some(list) => {
                    let mut bits = 0u8;
                    for d in list {
                        let day: chrono::Weekday =
                            d.parse().map_err(|_| format!("unknown weekday {d:?}"))?;
                        bits |= 1 << day.num_days_from_monday();
                    }
                    Weekdays(bits)
                }
            };
            let legal = match channel {
                Channel::Voice => CallingWindow::voice_legal(),
                Channel::Sms => CallingWindow::sms_default(),
            };
            c.window = CallingWindow::narrowed(legal, time(&w.start)?, time(&w.end)?, days)
                .map_err(|e| e.to_string())?;
        }
        if let Some(tz) = self.timezone {
            tz.parse::<chrono_tz::Tz>()
                .map_err(|_| format!("unknown time zone {tz:?}"))?;
            c.timezone = tz;
        }
        if let Some(ids) = self.caller_ids {
            c.caller_ids = ids
                .iter()
                .map(|raw| {
                    outdial_domain::phone::E164::parse(raw).map_err(|e| format!("caller_ids: {e}"))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(pool) = self.sip_pool {
            if !pools.pools.contains_key(&pool) {
                return Err(format!(
                    "unknown sip_pool {pool:?}; configured: {}",
                    pools.pools.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            c.sip_pool = pool;
        }
        Ok(c)
    }
}
