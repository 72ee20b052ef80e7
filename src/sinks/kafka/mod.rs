//! Kafka sink: produces each record as one JSON message (rdkafka `ThreadedProducer`, `acks = all`
//! by default) to a topic that may depend on the record (`logs.{label}` puts each label in a
//! topic of its own). A batch is delivered when the broker acknowledged every message of it —
//! that is what moves the source's checkpoint or offsets. Up to `batches_in_flight` batches are
//! produced before the oldest is acknowledged; acknowledgements go back in batch order. The
//! producer's delivery reports are counted per batch (one shared tally per batch, settled on
//! librdkafka's polling thread), not waited for one message at a time. When
//! librdkafka gives up on a message (`message_timeout_ms`) or its queue is full, the write
//! fails: it is logged and counted, the batch's origins are not acknowledged, and the pipeline
//! retries the batch (messages of it that did arrive are sent again: at least once). A message
//! no retry can deliver (larger than the broker takes, an invalid topic) is the exception: it
//! is dropped, logged and counted (`logsieve_kafka_dropped_records_total`), so that one record
//! cannot stall every source behind the sink. A healthcheck at start keeps `/ready` at 503
//! until the brokers answer.

mod topic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prometheus::IntCounterVec;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use tracing::error;

use self::topic::TopicTemplate;
use super::{PendingWrite, Sink, SinkBuild, SinkConfig, SinkPlan};
use crate::config::{ConfigErrors, Section};
use crate::event::{Origin, Record};
use crate::kafka;
use crate::metrics::Registry;

/// `type = "kafka"`: each record is one JSON message; a batch is delivered when the broker
/// acknowledged every message of it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port…]`. Env: `LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS` (every Kafka source
    /// and sink).
    pub bootstrap_servers: Option<String>,
    /// The topic, or a template: `{label}` and `{source}` are replaced by the record's
    /// (lower-cased, characters Kafka does not allow in topic names as `-`), e.g.
    /// `"logs.{label}"` puts Security Alerts in `logs.security-alert`.
    pub topic: Option<String>,
    /// The key each message gets.
    #[serde(default)]
    pub key: KafkaKey,
    /// The codec messages are compressed with.
    #[serde(default)]
    pub compression: Compression,
    /// How long librdkafka keeps trying to deliver a message before the batch counts as
    /// failed and is retried (ms); 0 waits for ever.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// Which brokers must have a message before it counts as delivered.
    #[serde(default)]
    pub acks: Acks,
    /// Batches produced before the oldest of them is acknowledged; the sources' positions
    /// still move in batch order. 1 waits for each batch before producing the next.
    #[serde(default = "default_batches_in_flight")]
    pub batches_in_flight: usize,
    /// Passed to librdkafka as they are (they win over logsieve's own settings).
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_message_timeout_ms() -> u64 {
    30_000
}

/// One at a time left the producer idle while each batch's acknowledgements came back:
/// Kafka → Kafka ran at 0.41× a bare consumer (BENCHMARKS.md §4).
fn default_batches_in_flight() -> usize {
    8
}

/// The key a Kafka sink gives each message.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KafkaKey {
    /// No key: the producer spreads messages over partitions.
    #[default]
    None,
    /// The record's `source`: one source's records stay in one partition, in order.
    Source,
    /// The key of the Kafka message the record came from (none for other sources).
    Original,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
pub enum Acks {
    /// Every in-sync replica.
    #[default]
    #[serde(rename = "all", alias = "-1")]
    All,
    /// The partition's leader.
    #[serde(rename = "1")]
    Leader,
    /// None: a message counts as delivered once sent.
    #[serde(rename = "0")]
    None,
}

impl Acks {
    fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

impl SinkConfig for KafkaSinkConfig {
    const TYPE: &'static str = "kafka";

    fn plan(
        self,
        index: usize,
        at: &Section,
        errs: &mut ConfigErrors,
    ) -> Option<Box<dyn SinkPlan>> {
        let servers = kafka::bootstrap_servers(self.bootstrap_servers.as_deref(), at, errs);
        let topic = match &self.topic {
            None => {
                errs.add(
                    at.key("topic"),
                    "a Kafka sink needs a topic",
                    "add topic = \"logs-labelled\" (or a template such as \"logs.{label}\")",
                );
                None
            }
            Some(t) if t.trim().is_empty() => {
                errs.add(at.key("topic"), "is empty", "name the topic");
                None
            }
            Some(t) => Some(t.clone()),
        };
        if self.batches_in_flight == 0 {
            errs.add(
                at.key("batches_in_flight"),
                "must be at least 1",
                format!(
                    "use 1 to wait for each batch, or more to keep several in flight (default {})",
                    default_batches_in_flight()
                ),
            );
            return None;
        }
        Some(Box::new(KafkaSinkPlan {
            name: format!("kafka-{index}"),
            servers: servers?,
            topic: topic?,
            settings: self,
        }))
    }
}

/// A Kafka sink's checked settings.
struct KafkaSinkPlan {
    name: String,
    servers: String,
    topic: String,
    settings: KafkaSinkConfig,
}

impl SinkPlan for KafkaSinkPlan {
    fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "kafka {} topic {} (acks {}, compression {}, key {:?}, {} batches in flight)",
            self.servers,
            self.topic,
            s.acks.as_str(),
            s.compression.as_str(),
            s.key,
            s.batches_in_flight
        )
    }

    fn open(&self, cx: &SinkBuild) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(KafkaSink::open(self, cx)?))
    }
}

/// The metrics of every Kafka sink.
#[derive(Clone)]
struct KafkaSinkMetrics {
    errors: IntCounterVec,
    dropped: IntCounterVec,
}

impl KafkaSinkMetrics {
    fn register(registry: &Registry) -> KafkaSinkMetrics {
        KafkaSinkMetrics {
            errors: registry.counter_vec(
                "logsieve_kafka_produce_errors_total",
                "Records the Kafka producer could not deliver (their batch is retried), by sink.",
                &["sink"],
            ),
            dropped: registry.counter_vec(
                "logsieve_kafka_dropped_records_total",
                "Records Kafka refuses for good (too large, invalid topic), dropped, by sink and reason.",
                &["sink", "reason"],
            ),
        }
    }
}

pub struct KafkaSink {
    name: String,
    producer: Arc<ThreadedProducer<Reports>>,
    topic: TopicTemplate,
    key: KafkaKey,
    metrics: KafkaSinkMetrics,
    batches_in_flight: usize,
}

/// The producer's context: logs as every client does, and settles each delivery report on
/// its batch's [`Tally`].
struct Reports {
    logged: kafka::Logged,
    metrics: KafkaSinkMetrics,
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logged.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logged.error(error, reason);
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Arc<Tally>;

    fn delivery(&self, result: &DeliveryResult<'_>, tally: Arc<Tally>) {
        match result {
            Ok(_) => tally.settle(None),
            Err((e, message)) => {
                let (topic, size) = (message.topic(), message.payload_len());
                tally.settle(self.failed(e, topic, size));
            }
        }
    }
}

impl Reports {
    /// A message that did not arrive: `Some(e)` when a retry may deliver it; a message no
    /// retry can deliver is dropped here — logged and counted — and is `None`.
    fn failed(&self, e: &KafkaError, topic: &str, size: usize) -> Option<KafkaError> {
        let Some(reason) = undeliverable(e) else {
            return Some(e.clone());
        };
        let name = &self.logged.name;
        self.metrics
            .dropped
            .with_label_values(&[name, reason])
            .inc();
        error!(sink = %name, topic = %topic, bytes = size, "Kafka refuses this record for good ({e}); dropped it, so that it does not hold up the stream");
        None
    }
}

/// One batch's delivery reports: how many are still to come, and what failed.
struct Tally {
    waiting: AtomicUsize,
    failed: Mutex<Failed>,
    done: Mutex<Option<tokio::sync::oneshot::Sender<Failed>>>,
}

/// The messages of a batch that a retry may still deliver: how many, and the first error.
#[derive(Default)]
struct Failed {
    count: u64,
    first: Option<KafkaError>,
}

impl Tally {
    fn new(messages: usize) -> (Arc<Tally>, tokio::sync::oneshot::Receiver<Failed>) {
        let (done, settled) = tokio::sync::oneshot::channel();
        let tally = Tally {
            waiting: AtomicUsize::new(messages),
            failed: Mutex::new(Failed::default()),
            done: Mutex::new(Some(done)),
        };
        (Arc::new(tally), settled)
    }

    /// One message's report; the last one sends the batch's outcome.
    fn settle(&self, failure: Option<KafkaError>) {
        if let Some(e) = failure {
            let mut failed = self.failed.lock().expect("tally");
            failed.count += 1;
            failed.first.get_or_insert(e);
        }
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            let failed = std::mem::take(&mut *self.failed.lock().expect("tally"));
            if let Some(done) = self.done.lock().expect("tally").take() {
                let _ = done.send(failed);
            }
        }
    }
}

impl KafkaSink {
    /// The producer, and its healthcheck started on the current runtime.
    fn open(plan: &KafkaSinkPlan, cx: &SinkBuild) -> anyhow::Result<KafkaSink> {
        let name = plan.name.clone();
        let cfg = &plan.settings;
        let ours = [
            ("client.id", format!("logsieve-{name}")),
            ("acks", cfg.acks.as_str().into()),
            ("compression.codec", cfg.compression.as_str().into()),
            ("message.timeout.ms", cfg.message_timeout_ms.to_string()),
            // With one batch in flight a write is a whole batch, sent at once and waited for:
            // lingering only adds to every batch's wait (0 doubled Kafka → Kafka throughput).
            // With several, the next batches fill the produce requests while they linger:
            // 5 ms was 1.3× 0 ms at 8 in flight (benches/kafka.rs).
            (
                "linger.ms",
                if cfg.batches_in_flight > 1 { "5" } else { "0" }.into(),
            ),
        ];
        let metrics = KafkaSinkMetrics::register(cx.registry);
        let reports = Reports {
            logged: kafka::Logged::new(name.clone()),
            metrics: metrics.clone(),
        };
        let producer: ThreadedProducer<Reports> =
            kafka::client_config(&plan.servers, &ours, &cfg.librdkafka_options)
                .create_with_context(reports)
                .map_err(|e| anyhow::anyhow!("sink {name}: bad Kafka client configuration: {e}"))?;
        let producer = Arc::new(producer);
        let probe = producer.clone();
        tokio::spawn(kafka::healthcheck(
            format!("Kafka sink `{name}`"),
            plan.servers.clone(),
            cx.health.clone(),
            cx.stop.clone(),
            move |timeout| probe.client().fetch_metadata(None, timeout),
        ));
        Ok(KafkaSink {
            name,
            producer,
            topic: TopicTemplate::parse(&plan.topic),
            key: cfg.key,
            metrics,
            batches_in_flight: cfg.batches_in_flight,
        })
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64> {
        self.produce(records).await
    }

    fn start_write(&mut self, records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
        Some(self.produce(records))
    }

    fn writes_in_flight(&self) -> usize {
        self.batches_in_flight
    }
}

impl KafkaSink {
    /// Hands every record to librdkafka's queue now (so batches keep their order) and returns
    /// what waits for the broker's acknowledgements.
    fn produce(&self, records: &[Record]) -> PendingWrite {
        if records.is_empty() {
            return Box::pin(async { Ok(0) });
        }
        let (tally, settled) = Tally::new(records.len());
        let mut bytes = 0;
        let mut payload = Vec::with_capacity(256);
        for record in records {
            payload.clear();
            record.write_json(&mut payload);
            bytes += payload.len() as u64;
            let key: Option<&[u8]> = match self.key {
                KafkaKey::None => None,
                KafkaKey::Source => Some(record.event.source.as_bytes()),
                KafkaKey::Original => match &record.event.origin {
                    Origin::Kafka { key, .. } => key.as_deref(),
                    _ => None,
                },
            };
            let topic = self.topic.render(record);
            let mut message = BaseRecord::<[u8], [u8], _>::with_opaque_to(&topic, tally.clone())
                .payload(payload.as_slice());
            if let Some(key) = key {
                message = message.key(key);
            }
            // Refused at once (librdkafka's queue is full, say): settled here, as a report.
            if let Err((e, _)) = self.producer.send(message) {
                let reports = self.producer.context();
                tally.settle(reports.failed(&e, &topic, payload.len()));
            }
        }
        let (name, metrics) = (self.name.clone(), self.metrics.clone());
        let count = records.len();
        Box::pin(async move {
            let failed = settled.await.unwrap_or_else(|_| Failed {
                count: count as u64,
                first: Some(KafkaError::Canceled),
            });
            if let Some(first) = failed.first {
                metrics
                    .errors
                    .with_label_values(&[&name])
                    .inc_by(failed.count);
                return Err(std::io::Error::other(format!(
                    "{} of {count} records not delivered to Kafka: {first}",
                    failed.count
                )));
            }
            Ok(bytes)
        })
    }
}

/// Why no retry can deliver a message, for the errors that say so.
fn undeliverable(e: &KafkaError) -> Option<&'static str> {
    match e.rdkafka_error_code()? {
        RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::InvalidMessageSize
        | RDKafkaErrorCode::MessageBatchTooLarge => Some("too_large"),
        RDKafkaErrorCode::InvalidTopic => Some("invalid_topic"),
        RDKafkaErrorCode::InvalidRecord => Some("invalid_record"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_settled_by_its_last_report_with_what_failed() {
        let (tally, mut settled) = Tally::new(3);
        tally.settle(None);
        tally.settle(Some(KafkaError::Canceled));
        assert!(settled.try_recv().is_err(), "one report is still to come");
        tally.settle(Some(KafkaError::MessageProduction(
            RDKafkaErrorCode::QueueFull,
        )));
        let failed = settled.try_recv().expect("settled by the last report");
        assert_eq!(failed.count, 2);
        assert!(matches!(failed.first, Some(KafkaError::Canceled)));
    }
}
