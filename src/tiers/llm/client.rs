//! One client for every OpenAI-compatible `/chat/completions` endpoint (Groq, OpenAI, vLLM,
//! llama.cpp's server, Ollama): builds the request from the prompt template and the label set,
//! asks the server to keep to the set where it can (`constrain`), and retries what is worth
//! retrying — 5xx, timeouts, refused connections with exponential backoff and jitter, 429 after
//! its `Retry-After` — within one deadline per line. Counts every attempt by outcome, its
//! latency and the tokens the server reports. The API key goes into one header and nowhere else:
//! this type has no `Debug`, and no error message carries it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounterVec};
use serde_json::{json, Value};

use super::config::{Constrain, LlmConfig};
use crate::event::UNCLASSIFIED;
use crate::metrics::Registry;

/// What to ask about one line.
pub struct Question<'a> {
    pub message: &'a str,
    pub source: &'a str,
    pub labels: &'a [Arc<str>],
}

/// Why a line got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429 until the deadline.
    RateLimited,
    /// 5xx, a refused or broken connection, until the deadline or the last retry.
    Unavailable(String),
    /// No response within `timeout_ms` on the last attempt.
    Timeout,
    /// A 4xx other than 401, 403 and 429, or a body that is not a chat completion: this line's
    /// request is refused, retrying will not help, the server itself is fine.
    Rejected(String),
    /// 401 or 403: the key (or its rights) is refused; every request will be.
    Unauthorized(String),
}

impl Failure {
    /// The `reason` a record gets.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::RateLimited => "llm_rate_limited",
            Failure::Unavailable(_) => "llm_unavailable",
            Failure::Timeout => "llm_timeout",
            Failure::Rejected(_) => "llm_rejected",
            Failure::Unauthorized(_) => "llm_unauthorized",
        }
    }

    /// Whether it says the server cannot answer anyone (what the circuit breaker counts), as
    /// opposed to one line's request being refused.
    pub fn is_server_down(&self) -> bool {
        !matches!(self, Failure::Rejected(_))
    }
}

/// How one attempt ended.
enum Attempt {
    Answer(String),
    Retry {
        after: Option<Duration>,
        why: Failure,
    },
    GiveUp(Failure),
}

pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    temperature: f32,
    max_tokens: u32,
    constrain: Constrain,
    prompt: String,
    timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff: Duration,
    backoff_max: Duration,
    requests: IntCounterVec,
    latency: Histogram,
    tokens: IntCounterVec,
}

impl ChatClient {
    pub fn new(
        config: &LlmConfig,
        key: Option<String>,
        registry: &Registry,
    ) -> anyhow::Result<ChatClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(5_000)))
            .pool_max_idle_per_host(config.max_in_flight)
            .build()?;
        Ok(ChatClient {
            http,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            model: config.model.clone(),
            key,
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            temperature: config.temperature,
            max_tokens: config.max_tokens,
            constrain: config.constrain,
            prompt: config.prompt.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            deadline: Duration::from_millis(config.deadline_ms),
            max_retries: config.max_retries,
            backoff: Duration::from_millis(config.backoff_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
            requests: registry.counter_vec(
                "logsieve_llm_requests_total",
                "LLM requests (every attempt), by outcome: ok, rate_limited, server_error, timeout, connect_error, unauthorized, rejected.",
                &["outcome"],
            ),
            latency: registry.histogram(
                "logsieve_llm_request_duration_seconds",
                "Latency of one LLM request.",
                prometheus::exponential_buckets(0.01, 2.0, 14).expect("valid buckets"),
            ),
            tokens: registry.counter_vec(
                "logsieve_llm_tokens_total",
                "Tokens the LLM server reported in `usage`, by direction (prompt, completion).",
                &["direction"],
            ),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Requests sent so far (every attempt), and how many of them succeeded.
    pub fn requests_sent(&self) -> u64 {
        use prometheus::core::Collector;
        self.requests
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    pub fn requests_ok(&self) -> u64 {
        self.requests.with_label_values(&["ok"]).get()
    }

    /// Tokens reported so far, `prompt` or `completion`.
    pub fn tokens(&self, direction: &str) -> u64 {
        self.tokens.with_label_values(&[direction]).get()
    }

    /// The chat request for one line.
    pub fn request_body(&self, q: &Question<'_>) -> Value {
        let listed: Vec<&str> = q.labels.iter().map(|l| &**l).collect();
        let content = self
            .prompt
            .replace("{labels}", &listed.join(", "))
            .replace("{source}", q.source)
            .replace("{message}", q.message);
        let mut body = json!({
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        });
        let mut choices: Vec<&str> = listed.clone();
        choices.push(UNCLASSIFIED);
        let schema = json!({
            "type": "object",
            "properties": {"label": {"type": "string", "enum": choices}},
            "required": ["label"],
            "additionalProperties": false,
        });
        match self.constrain {
            Constrain::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": "log_label", "strict": true, "schema": schema},
                });
            }
            Constrain::JsonObject => {
                body["response_format"] = json!({"type": "json_object", "schema": schema});
            }
            Constrain::Grammar => {
                let alternatives: Vec<String> = choices.iter().map(|c| gbnf_literal(c)).collect();
                body["grammar"] = Value::String(format!("root ::= {}", alternatives.join(" | ")));
            }
            Constrain::None => {}
        }
        body
    }

    /// Asks about one line, retrying within the deadline. Returns the answer's text.
    pub async fn ask(&self, q: &Question<'_>) -> Result<String, Failure> {
        let body = serde_json::to_vec(&self.request_body(q)).expect("json");
        let deadline = Instant::now() + self.deadline;
        let mut retries = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Timeout);
            }
            let (after, why) = match self.attempt(&body, self.timeout.min(left)).await {
                Attempt::Answer(text) => return Ok(text),
                Attempt::GiveUp(why) => return Err(why),
                Attempt::Retry { after, why } => (after, why),
            };
            if retries >= self.max_retries {
                return Err(why);
            }
            let wait = after.unwrap_or_else(|| self.backoff_for(retries));
            // (A wait too long to add to an instant is past any deadline.)
            if Instant::now()
                .checked_add(wait)
                .is_none_or(|at| at >= deadline)
            {
                return Err(why);
            }
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with full jitter: a random wait in [backoff·2^n / 2, backoff·2^n].
    fn backoff_for(&self, retry: u32) -> Duration {
        let full = self
            .backoff
            .saturating_mul(1u32 << retry.min(16))
            .min(self.backoff_max);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }

    async fn attempt(&self, body: &[u8], timeout: Duration) -> Attempt {
        let mut request = self
            .http
            .post(&self.url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let result = request.send().await;
        let (outcome, attempt) = match result {
            Err(e) if e.is_timeout() => (
                "timeout",
                Attempt::Retry {
                    after: None,
                    why: Failure::Timeout,
                },
            ),
            Err(e) => (
                "connect_error",
                Attempt::Retry {
                    after: None,
                    why: Failure::Unavailable(error_chain(&e)),
                },
            ),
            Ok(response) => self.read(response).await,
        };
        self.latency.observe(started.elapsed().as_secs_f64());
        self.requests.with_label_values(&[outcome]).inc();
        attempt
    }

    async fn read(&self, response: reqwest::Response) -> (&'static str, Attempt) {
        let status = response.status();
        if status.as_u16() == 429 {
            let after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            return (
                "rate_limited",
                Attempt::Retry {
                    after,
                    why: Failure::RateLimited,
                },
            );
        }
        if status.is_server_error() {
            return (
                "server_error",
                Attempt::Retry {
                    after: None,
                    why: Failure::Unavailable(format!("HTTP {status}")),
                },
            );
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return (
                "unauthorized",
                Attempt::GiveUp(Failure::Unauthorized(format!(
                    "HTTP {status}: check the API key (api_key_env / api_key_file)"
                ))),
            );
        }
        if !status.is_success() {
            return (
                "rejected",
                Attempt::GiveUp(Failure::Rejected(format!("HTTP {status}"))),
            );
        }
        let body = match read_bounded(response).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return (
                    "rejected",
                    Attempt::GiveUp(Failure::Rejected(format!(
                        "the response is larger than {} bytes",
                        MAX_RESPONSE_BYTES
                    ))),
                )
            }
            Err(e) if e.is_timeout() => {
                return (
                    "timeout",
                    Attempt::Retry {
                        after: None,
                        why: Failure::Timeout,
                    },
                )
            }
            Err(e) => {
                return (
                    "connect_error",
                    Attempt::Retry {
                        after: None,
                        why: Failure::Unavailable(error_chain(&e)),
                    },
                )
            }
        };
        let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
            return (
                "rejected",
                Attempt::GiveUp(Failure::Rejected(format!(
                    "the response is not JSON ({} bytes)",
                    body.len()
                ))),
            );
        };
        if let Some(usage) = parsed.get("usage") {
            for (field, direction) in [
                ("prompt_tokens", "prompt"),
                ("completion_tokens", "completion"),
            ] {
                if let Some(n) = usage.get(field).and_then(Value::as_u64) {
                    self.tokens.with_label_values(&[direction]).inc_by(n);
                }
            }
        }
        match parsed
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
        {
            Some(text) => ("ok", Attempt::Answer(text.to_string())),
            None => (
                "rejected",
                Attempt::GiveUp(Failure::Rejected(
                    "the response has no choices[0].message.content".into(),
                )),
            ),
        }
    }
}

/// The largest response body read: a chat completion naming one label is a few hundred bytes;
/// a server that sends megabytes (an HTML error page, a runaway answer) is refused, not held.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The response body, or `None` when it is larger than [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A GBNF string literal.
fn gbnf_literal(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(constrain: Constrain) -> ChatClient {
        let mut config: LlmConfig = toml::from_str("").expect("defaults");
        config.constrain = constrain;
        config.base_url = "http://127.0.0.1:1/v1/".into();
        ChatClient::new(&config, Some("sk-secret".into()), &Registry::default()).expect("client")
    }

    fn question<'a>(labels: &'a [Arc<str>]) -> Question<'a> {
        Question {
            message: "Invoice generation aborted",
            source: "LegacyCRM",
            labels,
        }
    }

    #[test]
    fn the_prompt_names_the_labels_and_the_line_and_the_key_stays_out() {
        let labels: Vec<Arc<str>> = vec![
            Arc::from("Workflow Error"),
            Arc::from("Deprecation Warning"),
        ];
        let c = client(Constrain::None);
        assert_eq!(c.endpoint(), "http://127.0.0.1:1/v1/chat/completions");
        let body = c.request_body(&question(&labels)).to_string();
        assert!(
            body.contains("Workflow Error, Deprecation Warning"),
            "{body}"
        );
        assert!(
            body.contains("Log message: Invoice generation aborted"),
            "{body}"
        );
        assert!(!body.contains("sk-secret"));
        assert!(!body.contains("response_format") && !body.contains("grammar"));
    }

    #[test]
    fn each_constrain_mode_sends_the_label_enum_its_way() {
        let labels: Vec<Arc<str>> = vec![Arc::from("Workflow \"Error\"")];
        let schema = client(Constrain::JsonSchema).request_body(&question(&labels));
        assert_eq!(schema["response_format"]["type"], "json_schema");
        assert_eq!(
            schema["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"][1],
            "Unclassified"
        );
        let object = client(Constrain::JsonObject).request_body(&question(&labels));
        assert_eq!(object["response_format"]["type"], "json_object");
        let grammar = client(Constrain::Grammar).request_body(&question(&labels));
        assert_eq!(
            grammar["grammar"],
            r#"root ::= "Workflow \"Error\"" | "Unclassified""#
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after("-1"), None);
        assert_eq!(retry_after("1e20"), None, "absurd, not a panic");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let c = client(Constrain::None);
        for retry in 0..3 {
            let full = Duration::from_millis(200 * (1 << retry));
            let b = c.backoff_for(retry);
            assert!(b >= full / 2 && b <= full, "{b:?} for retry {retry}");
        }
        assert!(c.backoff_for(30) <= Duration::from_millis(5_000));
    }
}
