//! `[tiers.llm]`: the LLM tier's settings, the `LOGSIEVE_LLM_<KEY>` overrides, where its API
//! key comes from (a file or the environment, never the config itself), and the checks that
//! decide whether it runs.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{at_least_one, ConfigError, ConfigErrors, Section};

/// How the LLM is asked to keep to the label set; servers differ (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Constrain {
    /// OpenAI's `response_format: {type: json_schema}` with an enum (OpenAI, Groq, vLLM).
    JsonSchema,
    /// `response_format: {type: json_object, schema}` (llama.cpp's server).
    JsonObject,
    /// A GBNF `grammar` (llama.cpp's server).
    Grammar,
    /// Free text, parsed.
    None,
}

/// What happens to a line bound for the LLM when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFull {
    /// Emit it at once as `Unclassified`, reason `llm_queue_full`: the stream never waits.
    Fallback,
    /// Wait for room: backpressure on the sources.
    Block,
}

/// `[tiers.llm]`: an OpenAI-compatible `/chat/completions` endpoint behind a bounded queue.
/// Every key can be set from the environment as `LOGSIEVE_LLM_<KEY>` (e.g.
/// `LOGSIEVE_LLM_BASE_URL`), which wins over the file.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Run the LLM tier (when its API key is there too).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Up to and including `/v1`: `/chat/completions` is appended.
    #[serde(default = "default_llm_base_url")]
    pub base_url: String,
    /// The model the server is asked to use.
    #[serde(default = "default_llm_model")]
    pub model: String,
    /// The environment variable holding the API key; "" for a server without one.
    #[serde(default = "default_llm_api_key_env")]
    pub api_key_env: String,
    /// Or a file holding the key (a mounted secret); wins over `api_key_env`.
    pub api_key_file: Option<PathBuf>,
    /// Sampling temperature; 0 for the most likely answer.
    #[serde(default)]
    pub temperature: f32,
    /// Longest answer, in tokens.
    #[serde(default = "default_llm_max_tokens")]
    pub max_tokens: u32,
    /// One attempt's timeout (ms).
    #[serde(default = "default_llm_timeout_ms")]
    pub timeout_ms: u64,
    /// All attempts at one line, retries and waits included (ms).
    #[serde(default = "default_llm_deadline_ms")]
    pub deadline_ms: u64,
    /// Extra request headers (e.g. an organisation id).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// How the server is asked to keep to the label set (servers differ; see the README).
    #[serde(default = "default_llm_constrain")]
    pub constrain: Constrain,
    /// The user message; `{labels}`, `{message}` and `{source}` are filled in.
    #[serde(default = "default_llm_prompt")]
    pub prompt: String,
    /// Lines waiting for or at the LLM; beyond it `on_full` applies.
    #[serde(default = "default_llm_queue_capacity")]
    pub queue_capacity: usize,
    /// Concurrent requests.
    #[serde(default = "default_llm_max_in_flight")]
    pub max_in_flight: usize,
    /// What happens to a line when the queue is full.
    #[serde(default = "default_llm_on_full")]
    pub on_full: OnFull,
    /// Retries of a line after a 5xx, a timeout, a refused connection or a 429.
    #[serde(default = "default_llm_max_retries")]
    pub max_retries: u32,
    /// First backoff (ms); doubled per retry (with jitter), capped at `backoff_max_ms`.
    #[serde(default = "default_llm_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest backoff between retries (ms).
    #[serde(default = "default_llm_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Consecutive failed lines that open the circuit breaker.
    #[serde(default = "default_llm_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe is let through (ms).
    #[serde(default = "default_llm_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Keep the records of a batch together and in order: wait for the batch's model run and
    /// LLM answers before writing any of it (a slow LLM then slows the stream). Without it
    /// the lines the rules (or the cache) decide leave before the model runs on the rest of
    /// their batch, and LLM lines leave when answered. Applies with the LLM tier off too.
    #[serde(default)]
    pub ordered: bool,
    /// Keep LLM verdicts in `data_dir/llm-cache.jsonl` so a restart does not ask again.
    #[serde(default = "yes")]
    pub persist_cache: bool,
    /// Append `source,log_message,target_label` for each LLM verdict (one per template), for
    /// `logsieve train` to learn from.
    pub verdicts_out: Option<PathBuf>,
}

impl LlmConfig {
    /// The API key, from `api_key_file` or `api_key_env`. `Ok(None)`: the server takes none.
    /// The key itself never appears in an error.
    pub fn api_key(&self) -> Result<Option<String>, String> {
        if let Some(file) = &self.api_key_file {
            return match std::fs::read_to_string(file) {
                Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
                Ok(_) => Err(format!("api_key_file {} is empty", file.display())),
                Err(e) => Err(format!("cannot read api_key_file {}: {e}", file.display())),
            };
        }
        if self.api_key_env.is_empty() {
            return Ok(None);
        }
        match std::env::var(&self.api_key_env) {
            Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
            _ => Err(format!("{} is not set", self.api_key_env)),
        }
    }
}

/// Whether the LLM tier runs, and with what.
pub enum LlmPlan {
    /// It does not; why (no `[tiers.llm]`, disabled, no key).
    Off(String),
    On(Box<LlmSettings>),
}

/// The settings of an LLM tier that runs. Not `Debug`: it holds the API key.
pub struct LlmSettings {
    pub config: LlmConfig,
    /// `None`: the server takes no key.
    pub api_key: Option<String>,
}

impl LlmConfig {
    /// Checks `[tiers.llm]` (absent: off) and resolves its API key.
    pub fn plan(llm: Option<LlmConfig>, at: &Section, errs: &mut ConfigErrors) -> Option<LlmPlan> {
        let Some(llm) = llm else {
            return Some(LlmPlan::Off("no [tiers.llm]".into()));
        };
        if !llm.enabled {
            return Some(LlmPlan::Off("disabled in [tiers.llm]".into()));
        }
        if llm.base_url.trim().is_empty() {
            return Some(LlmPlan::Off("no base_url".into()));
        }
        let problems = errs.0.len();
        if !(llm.base_url.starts_with("http://") || llm.base_url.starts_with("https://")) {
            errs.add(
                at.key("base_url"),
                format!("`{}` is not an http(s) URL", llm.base_url),
                "write it like https://api.groq.com/openai/v1",
            );
        }
        for (key, value) in [
            ("queue_capacity", llm.queue_capacity as u64),
            ("max_in_flight", llm.max_in_flight as u64),
            ("timeout_ms", llm.timeout_ms),
            ("deadline_ms", llm.deadline_ms),
            ("breaker_failures", llm.breaker_failures as u64),
        ] {
            at_least_one(value, at.key(key), errs);
        }
        if !llm.prompt.contains("{message}") {
            errs.add(
                at.key("prompt"),
                "does not contain {message}",
                "put {message} where the log line goes (and {labels} for the label list)",
            );
        }
        if errs.0.len() > problems {
            return None;
        }
        Some(match llm.api_key() {
            Err(why) => LlmPlan::Off(why),
            Ok(api_key) => LlmPlan::On(Box::new(LlmSettings {
                config: llm,
                api_key,
            })),
        })
    }
}

impl LlmPlan {
    pub fn is_on(&self) -> bool {
        matches!(self, LlmPlan::On(_))
    }

    pub fn describe(&self) -> String {
        match self {
            LlmPlan::Off(why) => format!(
                "tier llm: off ({why}); lines for it leave as Unclassified, reason llm_disabled"
            ),
            LlmPlan::On(s) => {
                let llm = &s.config;
                format!(
                    "tier llm: {} model {} (constrain {:?}, queue {}, {} in flight, on_full {:?}, {})",
                    llm.base_url,
                    llm.model,
                    llm.constrain,
                    llm.queue_capacity,
                    llm.max_in_flight,
                    llm.on_full,
                    if s.api_key.is_some() {
                        "API key set"
                    } else {
                        "no API key"
                    }
                )
            }
        }
    }
}

/// Keys of `[tiers.llm]` whose environment value is always taken as a string.
const LLM_STRING_KEYS: &[&str] = &[
    "base_url",
    "model",
    "api_key_env",
    "api_key_file",
    "constrain",
    "prompt",
    "on_full",
    "verdicts_out",
];

/// `LOGSIEVE_LLM_<KEY>` sets `[tiers.llm] <key>` (creating the section when absent). Values
/// are TOML (`true`, `5000`, `{ X-Org = "a" }`), except for the string keys, taken as written.
pub fn with_env_overrides(llm: Option<LlmConfig>) -> Result<Option<LlmConfig>, ConfigError> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("LOGSIEVE_LLM_")?.to_lowercase(), v)))
        .collect();
    if vars.is_empty() {
        return Ok(llm);
    }
    vars.sort();
    let env_error = |key: &str, problem: String, fix: &str| ConfigError {
        file: "environment".into(),
        line: None,
        key: format!("LOGSIEVE_LLM_{}", key.to_uppercase()),
        problem,
        fix: fix.into(),
    };
    let mut table = match &llm {
        Some(llm) => toml::Table::try_from(llm).expect("LlmConfig serializes"),
        None => toml::Table::new(),
    };
    for (key, value) in vars {
        let parsed = if LLM_STRING_KEYS.contains(&key.as_str()) {
            toml::Value::String(value)
        } else {
            match toml::from_str::<toml::Table>(&format!("v = {value}")) {
                Ok(mut t) => t.remove("v").expect("parsed v"),
                Err(_) => {
                    return Err(env_error(
                        &key,
                        format!("`{value}` is not a TOML value"),
                        "write a number, true/false, or an inline table",
                    ))
                }
            }
        };
        table.insert(key, parsed);
    }
    let llm = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            env_error(
                "*",
                e.message().to_string(),
                "check the LOGSIEVE_LLM_* variables against docs/configuration.md",
            )
        })?;
    Ok(Some(llm))
}

fn yes() -> bool {
    true
}
fn default_llm_base_url() -> String {
    "https://api.groq.com/openai/v1".into()
}
fn default_llm_model() -> String {
    "llama-3.3-70b-versatile".into()
}
fn default_llm_api_key_env() -> String {
    "GROQ_API_KEY".into()
}
fn default_llm_max_tokens() -> u32 {
    256
}
fn default_llm_timeout_ms() -> u64 {
    10_000
}
fn default_llm_deadline_ms() -> u64 {
    30_000
}
fn default_llm_constrain() -> Constrain {
    Constrain::None
}
/// The seed's prompt.
pub const SEED_PROMPT: &str = "Classify the log message into one of these categories: {labels}.\nIf you can't figure out a category, use \"Unclassified\".\nPut the category inside <category> </category> tags.\nLog message: {message}";
fn default_llm_prompt() -> String {
    SEED_PROMPT.into()
}
fn default_llm_queue_capacity() -> usize {
    1024
}
fn default_llm_max_in_flight() -> usize {
    4
}
fn default_llm_on_full() -> OnFull {
    OnFull::Fallback
}
fn default_llm_max_retries() -> u32 {
    3
}
fn default_llm_backoff_ms() -> u64 {
    200
}
fn default_llm_backoff_max_ms() -> u64 {
    5_000
}
fn default_llm_breaker_failures() -> u32 {
    5
}
fn default_llm_breaker_open_ms() -> u64 {
    30_000
}
