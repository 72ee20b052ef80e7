//! Kafka plumbing shared by the Kafka source and sink (rdkafka over a bundled librdkafka):
//! the client configuration (logsieve's settings first, then the user's `librdkafka_options`,
//! which win), librdkafka's own log lines and errors routed into `tracing`, and the start-up
//! healthcheck — a metadata fetch that keeps `/ready` at 503 until the brokers answer and says
//! in one line what is wrong while they do not — and the one setting both take, the brokers'
//! addresses.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{ConfigErrors, Section};
use crate::health::Health;

/// The brokers a Kafka source or sink connects to: `LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS` when
/// set, else its `bootstrap_servers`; checked to be a list of `host:port`.
pub fn bootstrap_servers(
    configured: Option<&str>,
    at: &Section,
    errs: &mut ConfigErrors,
) -> Option<String> {
    let servers = std::env::var("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .or(configured.map(str::to_string));
    match servers {
        None => {
            errs.add(
                at.key("bootstrap_servers"),
                "a Kafka source or sink needs bootstrap_servers",
                "add bootstrap_servers = \"kafka-1:9092,kafka-2:9092\" (or set LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS)",
            );
            None
        }
        Some(s) if s.split(',').any(|h| !h.trim().contains(':')) => {
            errs.add(
                at.key("bootstrap_servers"),
                format!("`{s}` is not a list of host:port"),
                "write it like \"kafka-1:9092,kafka-2:9092\"",
            );
            None
        }
        Some(s) => Some(s),
    }
}

/// How long one healthcheck metadata request may take, and the pause between failed ones.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A client configuration: `ours`, then `user` (librdkafka_options) on top.
pub fn client_config(
    bootstrap_servers: &str,
    ours: &[(&str, String)],
    user: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    for (key, value) in ours {
        config.set(*key, value.as_str());
    }
    for (key, value) in user {
        config.set(key.as_str(), value.as_str());
    }
    // librdkafka logs through the context below, at the level tracing lets through.
    config.set_log_level(RDKafkaLogLevel::Info);
    config
}

/// How often one kind of client error or log line is repeated while it persists (a broker
/// that is down makes librdkafka report it many times a second).
const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// Says a recurring thing once per [`REPEAT_EVERY`], with how often it was not said.
#[derive(Default)]
pub struct Throttle {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    /// `Some(suppressed since the last time)` when `key` may be logged now.
    pub fn allow(&self, key: &str) -> Option<u64> {
        let mut seen = self.seen.lock().expect("throttle lock");
        match seen.get_mut(key) {
            Some((at, suppressed)) if at.elapsed() < REPEAT_EVERY => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                *at = Instant::now();
                Some(std::mem::take(suppressed))
            }
            None => {
                seen.insert(key.to_string(), (Instant::now(), 0));
                Some(0)
            }
        }
    }
}

fn repeated(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(
            " ({suppressed} more like it in the last {} s)",
            REPEAT_EVERY.as_secs()
        )
    }
}

/// librdkafka's log line, as a tracing event of the client `name` (a recurring one at most
/// every 30 s per facility).
pub fn log(name: &str, throttle: &Throttle, level: RDKafkaLogLevel, facility: &str, message: &str) {
    let Some(suppressed) = throttle.allow(facility) else {
        return;
    };
    let more = repeated(suppressed);
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => error!(client = name, facility, "librdkafka: {message}{more}"),
        RDKafkaLogLevel::Warning => warn!(client = name, facility, "librdkafka: {message}{more}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(client = name, facility, "librdkafka: {message}{more}")
        }
        RDKafkaLogLevel::Debug => debug!(client = name, facility, "librdkafka: {message}{more}"),
    }
}

/// A client-level error (a broker went away, every broker is down, …), at most every 30 s per
/// kind. librdkafka keeps reconnecting by itself; this is for the operator.
pub fn client_error(name: &str, throttle: &Throttle, error: &KafkaError, reason: &str) {
    let kind = format!("{:?}", error.rdkafka_error_code());
    if let Some(suppressed) = throttle.allow(&kind) {
        warn!(
            client = name,
            "Kafka: {error}: {reason}{}",
            repeated(suppressed)
        );
    }
}

/// The context of a client that only logs (the sink's producer, the healthcheck's probe).
pub struct Logged {
    pub name: String,
    pub throttle: Throttle,
}

impl Logged {
    pub fn new(name: String) -> Logged {
        Logged {
            name,
            throttle: Throttle::default(),
        }
    }
}

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(&self.name, &self.throttle, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.name, &self.throttle, &error, reason);
    }
}

/// A consumer that never joins a group (the source's healthcheck probe) needs no more.
impl rdkafka::consumer::ConsumerContext for Logged {}

/// Fetches metadata until the brokers answer (or `stop`), holding `/ready` at 503 meanwhile.
/// `fetch` is a blocking metadata request (run on the blocking pool).
pub async fn healthcheck(
    what: String,
    servers: String,
    health: Arc<Health>,
    stop: CancellationToken,
    fetch: impl Fn(Duration) -> Result<Metadata, KafkaError> + Send + Sync + 'static,
) {
    let _pending = health.check();
    let fetch = Arc::new(fetch);
    let mut failures = 0u32;
    loop {
        let attempt = fetch.clone();
        let result = tokio::task::spawn_blocking(move || attempt(HEALTHCHECK_TIMEOUT)).await;
        match result {
            Ok(Ok(metadata)) => {
                info!(
                    "{what}: connected to Kafka at {servers} ({} broker(s), {} topic(s))",
                    metadata.brokers().len(),
                    metadata.topics().len()
                );
                return;
            }
            Ok(Err(e)) => {
                failures += 1;
                // The first failure, then every 30 s.
                if failures % 6 == 1 {
                    error!(
                        "{what}: cannot reach Kafka at {servers} ({e}); /ready stays 503, retrying every {} s (attempt {failures}). Check bootstrap_servers and that the broker is up.",
                        HEALTHCHECK_TIMEOUT.as_secs()
                    );
                }
            }
            Err(e) => {
                error!("{what}: the Kafka healthcheck task failed: {e}");
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(HEALTHCHECK_TIMEOUT) => {}
            _ = stop.cancelled() => return,
        }
    }
}
