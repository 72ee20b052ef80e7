//! Configuration: the TOML file (`config/logsieve.toml` by default), the rules file it names,
//! `LOGSIEVE_*` environment overrides, and validation. Every problem is reported as
//! `file:line: key: problem (fix)` so a user can act on it without reading our source.
//! Sections are flat structs rather than tagged enums so that TOML keeps the line of each value.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The file `run`, `classify` and `validate` read when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/logsieve.toml";
const BUILT_IN_CONFIG: &str = include_str!("../config/logsieve.toml");
const BUILT_IN_RULES: &str = include_str!("../config/rules.toml");

/// The seed's nine labels; `Unclassified` is always allowed besides.
pub const SEED_LABELS: &[&str] = &[
    "HTTP Status",
    "Critical Error",
    "Security Alert",
    "Error",
    "System Notification",
    "Resource Usage",
    "User Action",
    "Workflow Error",
    "Deprecation Warning",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where checkpoints live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The labels tiers may give (besides `Unclassified`).
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub batch: BatchConfig,
    #[serde(default)]
    pub tiers: TiersConfig,
    #[serde(default = "default_sinks")]
    pub sinks: Vec<SinkConfig>,
}

impl Config {
    /// Sources that routing sends straight to the LLM.
    pub fn routed_sources(&self) -> Vec<&str> {
        self.tiers
            .route
            .iter()
            .filter_map(|r| r.source.as_ref().map(|s| s.get_ref().as_str()))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_address")]
    pub address: Spanned<String>,
    /// Largest `POST /classify` body accepted; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            enabled: true,
            address: default_address(),
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    File,
    Stdin,
    Kafka,
}

/// Where a Kafka source takes a record's `source` from (`source_from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaSourceFrom {
    /// The topic's name (default).
    Topic,
    /// The message key (UTF-8, lossily).
    Key,
    /// A message header.
    Header(String),
}

impl KafkaSourceFrom {
    /// `"topic"`, `"key"` or `"header:<name>"`.
    pub fn parse(text: &str) -> Option<KafkaSourceFrom> {
        match text {
            "topic" => Some(KafkaSourceFrom::Topic),
            "key" => Some(KafkaSourceFrom::Key),
            _ => text
                .strip_prefix("header:")
                .filter(|h| !h.is_empty())
                .map(|h| KafkaSourceFrom::Header(h.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    Beginning,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// A line that parses as a JSON object is read as one; any other line is text.
    Auto,
    /// Every line is text.
    Text,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(rename = "type")]
    pub kind: Spanned<SourceType>,
    /// The record's `source` (what routing matches); a JSON line's `source_field` overrides it.
    /// Default: the file's path for a file source, `stdin` for standard input.
    pub name: Option<String>,
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default = "default_read_from")]
    pub read_from: ReadFrom,
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    #[serde(default = "default_format")]
    pub format: LineFormat,
    #[serde(default = "default_message_field")]
    pub message_field: String,
    #[serde(default = "default_source_field")]
    pub source_field: String,
    /// How often globs are expanded again to find new files.
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// How long a file that was renamed away or deleted is kept open after its last growth.
    #[serde(default = "default_rotate_wait_ms")]
    pub rotate_wait_ms: u64,
    /// Checkpoints are written at most this often (and at shutdown).
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    // ----- type = "kafka" -----
    /// `host:port[,host:port…]`. Env: `LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS` (every Kafka source and sink).
    pub bootstrap_servers: Option<Spanned<String>>,
    /// Topic names, or regexes when they start with `^`.
    #[serde(default)]
    pub topics: Vec<Spanned<String>>,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where a group with no committed offset starts: "earliest" (default) | "latest".
    #[serde(default = "default_auto_offset_reset")]
    pub auto_offset_reset: Spanned<String>,
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Delivered offsets are committed at most this often (and on rebalance and shutdown).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// How long a rebalance waits for the in-flight messages of revoked partitions.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// "topic" (default) | "key" | "header:<name>"; a JSON payload's `source_field` wins.
    pub source_from: Option<Spanned<String>>,
    /// Passed to librdkafka as they are (they win over logsieve's own settings).
    #[serde(default)]
    pub librdkafka_options: std::collections::BTreeMap<String, String>,
}

impl SourceConfig {
    /// Where a Kafka source takes the record's `source` from.
    pub fn kafka_source_from(&self) -> KafkaSourceFrom {
        self.source_from
            .as_ref()
            .and_then(|s| KafkaSourceFrom::parse(s.get_ref()))
            .unwrap_or(KafkaSourceFrom::Topic)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_lines: default_max_lines(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    #[serde(default)]
    pub route: Vec<RouteConfig>,
    #[serde(default)]
    pub regex: RegexConfig,
    /// The model tier (MiniLM embeddings + logistic head); off when absent.
    pub model: Option<ModelConfig>,
    #[serde(default)]
    pub cache: CacheConfig,
    /// The LLM tier; off when absent, disabled, or its API key is not there.
    pub llm: Option<LlmConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// ONNX Runtime's shared library (from the onnxruntime wheel; scripts/fetch-models.sh).
    #[serde(default = "default_onnxruntime")]
    pub onnxruntime: PathBuf,
    #[serde(default = "default_model")]
    pub model: PathBuf,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: PathBuf,
    /// sha256 of each asset, checked before use.
    #[serde(default = "default_checksums")]
    pub checksums: PathBuf,
    /// The trained logistic head (`logsieve train`).
    #[serde(default = "default_head")]
    pub head: PathBuf,
    /// Below this probability a line escalates to the LLM tier.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Lines per ONNX run.
    #[serde(default = "default_model_batch")]
    pub batch_size: usize,
    /// ONNX Runtime intra-op threads.
    #[serde(default = "default_model_threads")]
    pub threads: usize,
}

impl ModelConfig {
    pub fn files(&self) -> crate::tiers::embed::ModelFiles {
        crate::tiers::embed::ModelFiles {
            onnxruntime: self.onnxruntime.clone(),
            model: self.model.clone(),
            tokenizer: self.tokenizer.clone(),
            checksums: self.checksums.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Templates remembered (LRU); 0 turns the cache off.
    #[serde(default = "default_cache_capacity")]
    pub capacity: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: default_cache_capacity(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTarget {
    Llm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Lines whose `source` equals this go straight to `to`, skipping the cheaper tiers.
    pub source: Option<Spanned<String>>,
    /// Or (when `source` is not given) lines whose message matches this regex.
    pub message: Option<Spanned<String>>,
    pub to: RouteTarget,
    /// The labels the LLM may choose from for these lines [default: every label].
    pub labels: Option<Vec<Spanned<String>>>,
}

impl RouteConfig {
    /// The labels the LLM may give lines of this route.
    pub fn allowed_labels<'a>(&'a self, all: &'a [String]) -> Vec<&'a str> {
        match &self.labels {
            Some(labels) => labels.iter().map(|l| l.get_ref().as_str()).collect(),
            None => all.iter().map(String::as_str).collect(),
        }
    }
}

/// How the LLM is asked to keep to the label set; servers differ (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Up to and including `/v1`: `/chat/completions` is appended.
    #[serde(default = "default_llm_base_url")]
    pub base_url: String,
    #[serde(default = "default_llm_model")]
    pub model: String,
    /// The environment variable holding the API key; "" for a server without one.
    #[serde(default = "default_llm_api_key_env")]
    pub api_key_env: String,
    /// Or a file holding the key (a mounted secret); wins over `api_key_env`.
    pub api_key_file: Option<PathBuf>,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default = "default_llm_max_tokens")]
    pub max_tokens: u32,
    /// One attempt's timeout.
    #[serde(default = "default_llm_timeout_ms")]
    pub timeout_ms: u64,
    /// All attempts at one line, retries and waits included.
    #[serde(default = "default_llm_deadline_ms")]
    pub deadline_ms: u64,
    /// Extra request headers (e.g. an organisation id).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
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
    #[serde(default = "default_llm_on_full")]
    pub on_full: OnFull,
    /// Retries of a line after a 5xx, a timeout, a refused connection or a 429.
    #[serde(default = "default_llm_max_retries")]
    pub max_retries: u32,
    /// First backoff; doubled per retry (with jitter), capped at `backoff_max_ms`.
    #[serde(default = "default_llm_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "default_llm_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Consecutive failed lines that open the circuit breaker.
    #[serde(default = "default_llm_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe is let through.
    #[serde(default = "default_llm_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Keep the records of a batch in order: wait for the batch's LLM answers before writing
    /// any of it (a slow LLM then slows the stream).
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

    /// Why the tier is off, or `None` when it runs.
    pub fn off_because(&self) -> Option<String> {
        if !self.enabled {
            return Some("disabled in [tiers.llm]".into());
        }
        if self.base_url.trim().is_empty() {
            return Some("no base_url".into());
        }
        self.api_key().err()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// Rules file, relative to the config file's folder.
    pub rules: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    Stdout,
    File,
    Kafka,
}

/// The key a Kafka sink gives each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaKey {
    /// No key (default): the producer spreads messages over partitions.
    None,
    /// The record's `source`: one source's records stay in one partition, in order.
    Source,
    /// The key of the Kafka message the record came from (none for other sources).
    Original,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    #[serde(rename = "type")]
    pub kind: Spanned<SinkType>,
    pub path: Option<Spanned<String>>,
    /// fsync after every batch before acknowledging it (survives power loss, costs throughput).
    #[serde(default)]
    pub fsync: bool,
    // ----- type = "kafka" -----
    pub bootstrap_servers: Option<Spanned<String>>,
    /// The topic; `{label}` and `{source}` are replaced by the record's (lower-cased, characters
    /// Kafka does not allow in topic names as `-`), e.g. "logs.{label}".
    pub topic: Option<Spanned<String>>,
    #[serde(default = "default_kafka_key")]
    pub key: KafkaKey,
    /// "none" (default) | "gzip" | "snappy" | "lz4".
    #[serde(default = "default_compression")]
    pub compression: Spanned<String>,
    /// How long librdkafka keeps trying to deliver a message before the batch is retried.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// "all" (default) | "1" | "0".
    #[serde(default = "default_acks")]
    pub acks: Spanned<String>,
    #[serde(default)]
    pub librdkafka_options: std::collections::BTreeMap<String, String>,
}

/// One regex rule as written in the rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    name: Spanned<String>,
    pattern: Spanned<String>,
    label: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

/// A rule ready for the regex tier (its pattern compiled and its label checked).
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: Arc<str>,
    pub pattern: String,
    pub label: Arc<str>,
}

/// A loaded, validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub rules: Vec<Rule>,
    /// The config file, or a `<built-in ...>` name.
    pub origin: String,
    pub rules_origin: Option<String>,
}

/// One problem with the configuration, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {} ({})", self.key, self.problem, self.fix)
    }
}

/// Every problem found, one per line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems found in one file.
struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<ConfigError>,
}

impl Problems<'_> {
    fn at(&mut self, span: Option<std::ops::Range<usize>>, key: &str, problem: String, fix: &str) {
        let line = span.map(|s| line_of(self.text, s.start));
        self.found.push(ConfigError {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            problem,
            fix: fix.to_string(),
        });
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

fn parse_error(file: &str, text: &str, err: toml::de::Error) -> ConfigError {
    let span = err.span();
    let key = span
        .clone()
        .and_then(|s| text.get(s))
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty() && !s.contains('\n'))
        .unwrap_or_else(|| "(file)".to_string());
    let message = err.message().trim().to_string();
    let fix = if message.starts_with("unknown field") {
        "remove it or correct its spelling; config/logsieve.toml documents every key"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed"
    } else {
        "fix the TOML at that line"
    };
    ConfigError {
        file: file.to_string(),
        line: span.map(|s| line_of(text, s.start)),
        key,
        problem: message,
        fix: fix.to_string(),
    }
}

/// Loads `path`, or `config/logsieve.toml` when it exists, or the built-in defaults (equal to it).
pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    let default = Path::new(DEFAULT_CONFIG_PATH);
    let chosen = match path {
        Some(p) => Some(p.to_path_buf()),
        None if default.exists() => Some(default.to_path_buf()),
        None => None,
    };
    match chosen {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    file: p.display().to_string(),
                    line: None,
                    key: "(file)".into(),
                    problem: format!("cannot read it: {e}"),
                    fix: "check the path given to --config".into(),
                }])
            })?;
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            load_str(&text, &p.display().to_string(), RulesAt::Dir(&dir))
        }
        None => load_str(
            BUILT_IN_CONFIG,
            "<built-in config/logsieve.toml>",
            RulesAt::BuiltIn,
        ),
    }
}

enum RulesAt<'a> {
    Dir(&'a Path),
    BuiltIn,
}

fn load_str(text: &str, file: &str, rules_at: RulesAt<'_>) -> Result<Loaded, ConfigErrors> {
    let mut config: Config =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![parse_error(file, text, e)]))?;
    apply_env(&mut config);
    if let Err(e) = apply_llm_env(&mut config) {
        return Err(ConfigErrors(vec![e]));
    }
    let mut problems = Problems {
        file,
        text,
        found: Vec::new(),
    };
    check(&config, &mut problems);

    let mut rules = Vec::new();
    let mut rules_origin = None;
    if let Some(rules_path) = &config.tiers.regex.rules {
        let (rules_file, rules_text) = match rules_at {
            RulesAt::Dir(dir) => {
                let path = dir.join(rules_path.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(t) => (path.display().to_string(), t),
                    Err(e) => {
                        problems.at(
                            Some(rules_path.span()),
                            "tiers.regex.rules",
                            format!("cannot read {}: {e}", path.display()),
                            "give a path relative to the config file's folder",
                        );
                        return Err(ConfigErrors(problems.found));
                    }
                }
            }
            RulesAt::BuiltIn => (
                "<built-in config/rules.toml>".to_string(),
                BUILT_IN_RULES.to_string(),
            ),
        };
        let mut found = std::mem::take(&mut problems.found);
        match load_rules(&rules_text, &rules_file, &config.labels) {
            Ok(r) => rules = r,
            Err(ConfigErrors(mut e)) => found.append(&mut e),
        }
        problems.found = found;
        rules_origin = Some(rules_file);
    }
    if problems.found.is_empty() {
        Ok(Loaded {
            config,
            rules,
            origin: file.to_string(),
            rules_origin,
        })
    } else {
        Err(ConfigErrors(problems.found))
    }
}

/// `LOGSIEVE_DATA_DIR` and `LOGSIEVE_SERVER_ADDRESS` override the file.
fn apply_env(config: &mut Config) {
    if let Ok(dir) = std::env::var("LOGSIEVE_DATA_DIR") {
        config.data_dir = PathBuf::from(dir);
    }
    if let Ok(address) = std::env::var("LOGSIEVE_SERVER_ADDRESS") {
        let span = config.server.address.span();
        config.server.address = Spanned::new(span, address);
    }
    if let Ok(servers) = std::env::var("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS") {
        let kafka_sources = config
            .sources
            .iter_mut()
            .filter(|s| *s.kind.get_ref() == SourceType::Kafka)
            .map(|s| &mut s.bootstrap_servers);
        let kafka_sinks = config
            .sinks
            .iter_mut()
            .filter(|s| *s.kind.get_ref() == SinkType::Kafka)
            .map(|s| &mut s.bootstrap_servers);
        for field in kafka_sources.chain(kafka_sinks) {
            let span = field.as_ref().map(|f| f.span()).unwrap_or(0..0);
            *field = Some(Spanned::new(span, servers.clone()));
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
fn apply_llm_env(config: &mut Config) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| Some((k.strip_prefix("LOGSIEVE_LLM_")?.to_lowercase(), v)))
        .collect();
    if vars.is_empty() {
        return Ok(());
    }
    vars.sort();
    let env_error = |key: &str, problem: String, fix: &str| ConfigError {
        file: "environment".into(),
        line: None,
        key: format!("LOGSIEVE_LLM_{}", key.to_uppercase()),
        problem,
        fix: fix.into(),
    };
    let mut table = match &config.tiers.llm {
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
    config.tiers.llm = Some(toml::Value::Table(table).try_into().map_err(
        |e: toml::de::Error| {
            env_error(
                "*",
                e.message().to_string(),
                "check the LOGSIEVE_LLM_* variables against [tiers.llm] in the README",
            )
        },
    )?);
    Ok(())
}

fn sink_type_name(kind: SinkType) -> &'static str {
    match kind {
        SinkType::Stdout => "stdout",
        SinkType::File => "file",
        SinkType::Kafka => "kafka",
    }
}

fn check_bootstrap(
    servers: &Option<Spanned<String>>,
    at: Option<std::ops::Range<usize>>,
    key: &str,
    p: &mut Problems<'_>,
) {
    match servers {
        None => p.at(
            at,
            key,
            "a Kafka source or sink needs bootstrap_servers".into(),
            "add bootstrap_servers = \"kafka-1:9092,kafka-2:9092\" (or set LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS)",
        ),
        Some(s) if s.get_ref().split(',').any(|h| !h.trim().contains(':')) => p.at(
            Some(s.span()),
            key,
            format!("`{}` is not a list of host:port", s.get_ref()),
            "write it like \"kafka-1:9092,kafka-2:9092\"",
        ),
        Some(_) => {}
    }
}

fn check_kafka_source(source: &SourceConfig, i: usize, p: &mut Problems<'_>) {
    let key = |k: &str| format!("sources[{i}].{k}");
    let span = Some(source.kind.span());
    check_bootstrap(
        &source.bootstrap_servers,
        span.clone(),
        &key("bootstrap_servers"),
        p,
    );
    if source.topics.is_empty() {
        p.at(
            span.clone(),
            &key("topics"),
            "a Kafka source needs at least one topic".into(),
            "add topics = [\"app-logs\"] (a name, or a regex starting with ^)",
        );
    }
    for topic in &source.topics {
        if topic.get_ref().trim().is_empty() {
            p.at(
                Some(topic.span()),
                &key("topics"),
                "a topic is empty".into(),
                "name the topic",
            );
        }
    }
    let reset = source.auto_offset_reset.get_ref();
    if reset != "earliest" && reset != "latest" {
        p.at(
            Some(source.auto_offset_reset.span()),
            &key("auto_offset_reset"),
            format!("`{reset}` is not a starting point"),
            "use \"earliest\" or \"latest\"",
        );
    }
    if let Some(from) = &source.source_from {
        if KafkaSourceFrom::parse(from.get_ref()).is_none() {
            p.at(
                Some(from.span()),
                &key("source_from"),
                format!(
                    "`{}` is not a place to take the source from",
                    from.get_ref()
                ),
                "use \"topic\", \"key\" or \"header:<name>\"",
            );
        }
    }
    for (name, value) in [
        ("commit_interval_ms", source.commit_interval_ms),
        ("session_timeout_ms", source.session_timeout_ms),
    ] {
        if value == 0 {
            p.at(
                span.clone(),
                &key(name),
                "must be at least 1".into(),
                "remove it to use the default",
            );
        }
    }
}

fn check_kafka_sink(sink: &SinkConfig, i: usize, p: &mut Problems<'_>) {
    let key = |k: &str| format!("sinks[{i}].{k}");
    let span = Some(sink.kind.span());
    check_bootstrap(
        &sink.bootstrap_servers,
        span.clone(),
        &key("bootstrap_servers"),
        p,
    );
    match &sink.topic {
        None => p.at(
            span,
            &key("topic"),
            "a Kafka sink needs a topic".into(),
            "add topic = \"logs-labelled\" (or a template such as \"logs.{label}\")",
        ),
        Some(t) if t.get_ref().trim().is_empty() => p.at(
            Some(t.span()),
            &key("topic"),
            "is empty".into(),
            "name the topic",
        ),
        Some(_) => {}
    }
    let compression = sink.compression.get_ref();
    if !["none", "gzip", "snappy", "lz4"].contains(&compression.as_str()) {
        p.at(
            Some(sink.compression.span()),
            &key("compression"),
            format!("`{compression}` is not a supported codec"),
            "use \"none\", \"gzip\", \"snappy\" or \"lz4\"",
        );
    }
    let acks = sink.acks.get_ref();
    if !["all", "-1", "1", "0"].contains(&acks.as_str()) {
        p.at(
            Some(sink.acks.span()),
            &key("acks"),
            format!("`{acks}` is not an acks setting"),
            "use \"all\" (every in-sync replica), \"1\" (the leader) or \"0\" (none)",
        );
    }
}

fn check(config: &Config, p: &mut Problems<'_>) {
    let address = config.server.address.get_ref();
    if address.parse::<std::net::SocketAddr>().is_err() {
        p.at(
            Some(config.server.address.span()),
            "server.address",
            format!("`{address}` is not an IP:port address"),
            "write it like 127.0.0.1:9598",
        );
    }
    if config.batch.max_lines == 0 {
        p.at(
            None,
            "batch.max_lines",
            "must be at least 1".into(),
            "use 512",
        );
    }
    for (i, source) in config.sources.iter().enumerate() {
        let key = |k: &str| format!("sources[{i}].{k}");
        let span = Some(source.kind.span());
        match source.kind.get_ref() {
            SourceType::File => {
                if source.include.is_empty() {
                    p.at(
                        span.clone(),
                        &key("include"),
                        "a file source needs at least one glob".into(),
                        "add include = [\"/var/log/app/*.log\"]",
                    );
                }
                for pattern in &source.include {
                    if let Err(e) = glob::Pattern::new(pattern.get_ref()) {
                        p.at(
                            Some(pattern.span()),
                            &key("include"),
                            format!("`{}` is not a glob: {e}", pattern.get_ref()),
                            "fix the pattern",
                        );
                    } else if let Some(dir) = glob_base(pattern.get_ref()) {
                        if !dir.is_dir() {
                            p.at(
                                Some(pattern.span()),
                                &key("include"),
                                format!("folder {} does not exist", dir.display()),
                                "create it or correct the path",
                            );
                        }
                    }
                }
                for pattern in &source.exclude {
                    if let Err(e) = glob::Pattern::new(pattern) {
                        p.at(
                            span.clone(),
                            &key("exclude"),
                            format!("`{pattern}` is not a glob: {e}"),
                            "fix the pattern",
                        );
                    }
                }
            }
            SourceType::Stdin => {}
            SourceType::Kafka => check_kafka_source(source, i, p),
        }
        if *source.kind.get_ref() != SourceType::File
            && (!source.include.is_empty() || !source.exclude.is_empty())
        {
            p.at(
                span.clone(),
                &key("include"),
                "include/exclude only apply to type = \"file\"".into(),
                "remove them",
            );
        }
        if *source.kind.get_ref() != SourceType::Kafka {
            let kafka_keys = [
                ("bootstrap_servers", source.bootstrap_servers.is_some()),
                ("topics", !source.topics.is_empty()),
                ("source_from", source.source_from.is_some()),
                ("librdkafka_options", !source.librdkafka_options.is_empty()),
            ];
            for (name, set) in kafka_keys {
                if set {
                    p.at(
                        span.clone(),
                        &key(name),
                        format!("`{name}` only applies to type = \"kafka\""),
                        "remove it, or set type = \"kafka\"",
                    );
                }
            }
        }
        if source.max_line_bytes < 16 {
            p.at(
                span,
                &key("max_line_bytes"),
                format!("{} is too small", source.max_line_bytes),
                "use the default, 102400",
            );
        }
    }
    if config
        .sources
        .iter()
        .any(|s| *s.kind.get_ref() == SourceType::Stdin)
        && config
            .sources
            .iter()
            .filter(|s| *s.kind.get_ref() == SourceType::Stdin)
            .count()
            > 1
    {
        p.at(
            None,
            "sources",
            "more than one stdin source".into(),
            "keep one",
        );
    }
    for (i, sink) in config.sinks.iter().enumerate() {
        let key = format!("sinks[{i}].path");
        match (sink.kind.get_ref(), &sink.path) {
            (SinkType::File, None) => p.at(
                Some(sink.kind.span()),
                &key,
                "a file sink needs a path".into(),
                "add path = \"/var/lib/logsieve/labelled.jsonl\"",
            ),
            (SinkType::File, Some(path)) => {
                let parent = Path::new(path.get_ref()).parent();
                if let Some(parent) = parent.filter(|d| !d.as_os_str().is_empty()) {
                    if !parent.is_dir() {
                        p.at(
                            Some(path.span()),
                            &key,
                            format!("folder {} does not exist", parent.display()),
                            "create it or correct the path",
                        );
                    }
                }
            }
            (SinkType::Stdout | SinkType::Kafka, Some(path)) => p.at(
                Some(path.span()),
                &key,
                format!(
                    "a {} sink takes no path",
                    sink_type_name(*sink.kind.get_ref())
                ),
                "remove it, or use type = \"file\"",
            ),
            (SinkType::Stdout | SinkType::Kafka, None) => {}
        }
        if *sink.kind.get_ref() == SinkType::Kafka {
            check_kafka_sink(sink, i, p);
        } else {
            for (name, set) in [
                ("bootstrap_servers", sink.bootstrap_servers.is_some()),
                ("topic", sink.topic.is_some()),
                ("librdkafka_options", !sink.librdkafka_options.is_empty()),
            ] {
                if set {
                    p.at(
                        Some(sink.kind.span()),
                        &format!("sinks[{i}].{name}"),
                        format!("`{name}` only applies to type = \"kafka\""),
                        "remove it, or set type = \"kafka\"",
                    );
                }
            }
        }
    }
    if config
        .sinks
        .iter()
        .filter(|s| *s.kind.get_ref() == SinkType::Stdout)
        .count()
        > 1
    {
        p.at(
            None,
            "sinks",
            "more than one stdout sink".into(),
            "keep one",
        );
    }
    if let Some(model) = config.tiers.model.as_ref().filter(|m| m.enabled) {
        if !(0.0..=1.0).contains(&model.threshold) {
            p.at(
                None,
                "tiers.model.threshold",
                format!("{} is not a probability", model.threshold),
                "use a value between 0 and 1, e.g. 0.5",
            );
        }
        for (key, path) in [
            ("tiers.model.onnxruntime", &model.onnxruntime),
            ("tiers.model.model", &model.model),
            ("tiers.model.tokenizer", &model.tokenizer),
        ] {
            if !path.is_file() {
                p.at(
                    None,
                    key,
                    format!("{} does not exist", path.display()),
                    "run scripts/fetch-models.sh to fetch the model assets, or set [tiers.model] enabled = false",
                );
            }
        }
    }
    for (i, route) in config.tiers.route.iter().enumerate() {
        let key = |k: &str| format!("tiers.route[{i}].{k}");
        match (&route.source, &route.message) {
            (Some(source), _) if source.get_ref().is_empty() => p.at(
                Some(source.span()),
                &key("source"),
                "is empty".into(),
                "name the source, e.g. \"LegacyCRM\"",
            ),
            (Some(source), Some(_)) => p.at(
                Some(source.span()),
                &key("source"),
                "a route takes `source` or `message`, not both".into(),
                "split it into two routes",
            ),
            (None, None) => p.at(
                None,
                &key("source"),
                "a route needs `source` or `message`".into(),
                "add source = \"LegacyCRM\" or message = \"^legacy:\"",
            ),
            (None, Some(message)) => {
                if let Err(e) = regex::Regex::new(message.get_ref()) {
                    let detail = e.to_string().lines().last().unwrap_or_default().to_string();
                    p.at(
                        Some(message.span()),
                        &key("message"),
                        format!("`{}` does not compile: {detail}", message.get_ref()),
                        "fix the regex (Rust regex syntax)",
                    );
                }
            }
            (Some(_), None) => {}
        }
        for label in route.labels.iter().flatten() {
            if !is_known_label(&config.labels, label.get_ref()) {
                p.at(
                    Some(label.span()),
                    &key("labels"),
                    format!("`{}` is not a known label", label.get_ref()),
                    &format!("use some of: {}", config.labels.join(", ")),
                );
            }
        }
    }
    if let Some(llm) = &config.tiers.llm {
        if llm.enabled && !llm.base_url.is_empty() {
            if !(llm.base_url.starts_with("http://") || llm.base_url.starts_with("https://")) {
                p.at(
                    None,
                    "tiers.llm.base_url",
                    format!("`{}` is not an http(s) URL", llm.base_url),
                    "write it like https://api.groq.com/openai/v1",
                );
            }
            for (key, zero) in [
                ("queue_capacity", llm.queue_capacity == 0),
                ("max_in_flight", llm.max_in_flight == 0),
                ("timeout_ms", llm.timeout_ms == 0),
                ("deadline_ms", llm.deadline_ms == 0),
                ("breaker_failures", llm.breaker_failures == 0),
            ] {
                if zero {
                    p.at(
                        None,
                        &format!("tiers.llm.{key}"),
                        "must be at least 1".into(),
                        "remove it to use the default",
                    );
                }
            }
            if !llm.prompt.contains("{message}") {
                p.at(
                    None,
                    "tiers.llm.prompt",
                    "does not contain {message}".into(),
                    "put {message} where the log line goes (and {labels} for the label list)",
                );
            }
        }
    }
}

/// The folder a glob starts in: its longest leading part without wildcards.
pub fn glob_base(pattern: &str) -> Option<PathBuf> {
    let mut base = PathBuf::new();
    for part in Path::new(pattern).components() {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            return Some(if base.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                base
            });
        }
        base.push(part);
    }
    base.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

fn load_rules(text: &str, file: &str, labels: &[String]) -> Result<Vec<Rule>, ConfigErrors> {
    let parsed: RulesFile =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![parse_error(file, text, e)]))?;
    let mut p = Problems {
        file,
        text,
        found: Vec::new(),
    };
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for rule in parsed.rules {
        let name = rule.name.get_ref();
        if !names.insert(name.clone()) {
            p.at(
                Some(rule.name.span()),
                "rules.name",
                format!("`{name}` is used twice"),
                "give every rule its own name",
            );
        }
        if let Err(e) = regex::Regex::new(rule.pattern.get_ref()) {
            let detail = e.to_string().lines().last().unwrap_or_default().to_string();
            p.at(
                Some(rule.pattern.span()),
                &format!("rules.pattern (rule `{name}`)"),
                format!("`{}` does not compile: {detail}", rule.pattern.get_ref()),
                "fix the regex (Rust regex syntax; escape literal dots as \\.)",
            );
        }
        let label = rule.label.get_ref();
        if !is_known_label(labels, label) {
            p.at(
                Some(rule.label.span()),
                &format!("rules.label (rule `{name}`)"),
                format!("`{label}` is not a known label"),
                &format!("use one of: {}", labels.join(", ")),
            );
        }
        rules.push(Rule {
            name: Arc::from(name.as_str()),
            pattern: rule.pattern.into_inner(),
            label: Arc::from(label.as_str()),
        });
    }
    if p.found.is_empty() {
        Ok(rules)
    } else {
        Err(ConfigErrors(p.found))
    }
}

pub fn is_known_label(labels: &[String], label: &str) -> bool {
    label == crate::event::UNCLASSIFIED || labels.iter().any(|l| l == label)
}

fn yes() -> bool {
    true
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_labels() -> Vec<String> {
    SEED_LABELS.iter().map(|s| s.to_string()).collect()
}
fn default_address() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9598".to_string())
}
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_read_from() -> ReadFrom {
    ReadFrom::Beginning
}
fn default_max_line_bytes() -> usize {
    100 * 1024
}
fn default_format() -> LineFormat {
    LineFormat::Auto
}
fn default_message_field() -> String {
    "message".into()
}
fn default_source_field() -> String {
    "source".into()
}
fn default_glob_interval_ms() -> u64 {
    1000
}
fn default_rotate_wait_ms() -> u64 {
    5000
}
fn default_checkpoint_interval_ms() -> u64 {
    1000
}
fn default_max_lines() -> usize {
    512
}
fn default_max_wait_ms() -> u64 {
    20
}
fn default_onnxruntime() -> PathBuf {
    PathBuf::from("models/onnxruntime/libonnxruntime.so")
}
fn default_model() -> PathBuf {
    PathBuf::from("models/minilm/model.onnx")
}
fn default_tokenizer() -> PathBuf {
    PathBuf::from("models/minilm/tokenizer.json")
}
fn default_checksums() -> PathBuf {
    PathBuf::from("models/SHA256SUMS")
}
fn default_head() -> PathBuf {
    PathBuf::from("models/head.json")
}
fn default_threshold() -> f32 {
    0.5
}
fn default_model_batch() -> usize {
    32
}
fn default_model_threads() -> usize {
    2
}
fn default_cache_capacity() -> usize {
    100_000
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
fn default_group_id() -> String {
    "logsieve".into()
}
fn default_auto_offset_reset() -> Spanned<String> {
    Spanned::new(0..0, "earliest".into())
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_commit_interval_ms() -> u64 {
    1_000
}
fn default_drain_timeout_ms() -> u64 {
    5_000
}
fn default_kafka_key() -> KafkaKey {
    KafkaKey::None
}
fn default_compression() -> Spanned<String> {
    Spanned::new(0..0, "none".into())
}
fn default_message_timeout_ms() -> u64 {
    30_000
}
fn default_acks() -> Spanned<String> {
    Spanned::new(0..0, "all".into())
}
fn default_sinks() -> Vec<SinkConfig> {
    vec![SinkConfig {
        kind: Spanned::new(0..0, SinkType::Stdout),
        path: None,
        fsync: false,
        bootstrap_servers: None,
        topic: None,
        key: default_kafka_key(),
        compression: default_compression(),
        message_timeout_ms: default_message_timeout_ms(),
        acks: default_acks(),
        librdkafka_options: Default::default(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(config: &str, rules: &str) -> Result<Loaded, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let path = dir.path().join("logsieve.toml");
        std::fs::write(&path, config).unwrap();
        load(Some(&path))
    }

    #[test]
    fn built_in_defaults_load_the_seed_rules() {
        let loaded = load_str(BUILT_IN_CONFIG, "<built-in>", RulesAt::BuiltIn).unwrap();
        assert_eq!(loaded.rules.len(), 8);
        assert_eq!(
            loaded.config.tiers.route[0]
                .source
                .as_ref()
                .map(|s| s.get_ref().as_str()),
            Some("LegacyCRM")
        );
        assert_eq!(loaded.config.server.address.get_ref(), "127.0.0.1:9598");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = load_text("data_dir = \"x\"\n[batch]\nmax_line = 5\n", "").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("logsieve.toml:3: max_line: unknown field"),
            "{text}"
        );
        assert!(
            text.contains("max_lines"),
            "lists the expected keys: {text}"
        );
    }

    #[test]
    fn bad_regex_and_unknown_label_are_reported_at_their_lines() {
        let rules = "[[rules]]\nname = \"a\"\npattern = 'ok'\nlabel = \"Error\"\n\n[[rules]]\nname = \"b\"\npattern = 'oops ('\nlabel = \"Eror\"\n";
        let err = load_text("[tiers.regex]\nrules = \"rules.toml\"\n", rules).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rules.toml:8: rules.pattern (rule `b`)"),
            "{text}"
        );
        assert!(text.contains("does not compile"), "{text}");
        assert!(
            text.contains("rules.toml:9: rules.label (rule `b`): `Eror` is not a known label"),
            "{text}"
        );
    }

    #[test]
    fn glob_base_is_the_folder_before_the_first_wildcard() {
        assert_eq!(glob_base("/var/log/*.log"), Some(PathBuf::from("/var/log")));
        assert_eq!(glob_base("/var/*/app.log"), Some(PathBuf::from("/var")));
        assert_eq!(glob_base("app.log"), Some(PathBuf::from(".")));
        assert_eq!(glob_base("*.log"), Some(PathBuf::from(".")));
    }
}
