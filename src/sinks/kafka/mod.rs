//! Kafka sink: produces each record as one JSON message (rdkafka `FutureProducer`, `acks = all`
//! by default) to a topic that may depend on the record (`logs.{label}` puts each label in a
//! topic of its own). A batch is delivered when the broker acknowledged every message of it —
//! that is what moves the source's checkpoint or offsets. When librdkafka gives up on a message
//! (`message_timeout_ms`), the write fails: it is logged and counted, the batch's origins are not
//! acknowledged, and the pipeline retries the batch (messages of it that did arrive are sent
//! again: at least once). A message no retry can deliver (larger than the broker takes, an
//! invalid topic) is the exception: it is dropped, logged and counted
//! (`logsieve_kafka_dropped_records_total`), so that one record cannot stall every source
//! behind the sink. A healthcheck at start keeps `/ready` at 503 until the brokers answer.

mod topic;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::IntCounterVec;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use tracing::error;

use self::topic::TopicTemplate;
use super::{Sink, SinkBuild, SinkConfig, SinkPlan};
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
    /// Passed to librdkafka as they are (they win over logsieve's own settings).
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_message_timeout_ms() -> u64 {
    30_000
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
            "kafka {} topic {} (acks {}, compression {}, key {:?})",
            self.servers,
            self.topic,
            s.acks.as_str(),
            s.compression.as_str(),
            s.key
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
    producer: FutureProducer<kafka::Logged>,
    topic: TopicTemplate,
    key: KafkaKey,
    /// How long a send may wait for room in librdkafka's queue.
    queue_timeout: Timeout,
    metrics: KafkaSinkMetrics,
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
            // A write is a whole batch, sent at once and waited for: lingering would only
            // add to every batch's wait (0 doubled Kafka → Kafka throughput in benches/kafka.rs).
            ("linger.ms", "0".into()),
        ];
        let producer: FutureProducer<kafka::Logged> =
            kafka::client_config(&plan.servers, &ours, &cfg.librdkafka_options)
                .create_with_context(kafka::Logged::new(name.clone()))
                .map_err(|e| anyhow::anyhow!("sink {name}: bad Kafka client configuration: {e}"))?;
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
            // 0 is librdkafka's "no timeout".
            queue_timeout: match cfg.message_timeout_ms {
                0 => Timeout::Never,
                ms => Timeout::After(Duration::from_millis(ms)),
            },
            metrics: KafkaSinkMetrics::register(cx.registry),
        })
    }
}

#[async_trait]
impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64> {
        let mut messages = Vec::with_capacity(records.len());
        let mut bytes = 0;
        for record in records {
            let mut payload = Vec::with_capacity(256);
            record.write_json(&mut payload);
            bytes += payload.len() as u64;
            let key: Option<Vec<u8>> = match self.key {
                KafkaKey::None => None,
                KafkaKey::Source => Some(record.event.source.as_bytes().to_vec()),
                KafkaKey::Original => match &record.event.origin {
                    Origin::Kafka { key, .. } => key.as_ref().map(|k| k.to_vec()),
                    _ => None,
                },
            };
            messages.push((self.topic.render(record), payload, key));
        }
        let sends = messages.iter().map(|(topic, payload, key)| {
            let mut message = FutureRecord::<[u8], [u8]>::to(topic).payload(payload.as_slice());
            if let Some(key) = key {
                message = message.key(key.as_slice());
            }
            self.producer.send(message, self.queue_timeout)
        });
        let results = futures_util::future::join_all(sends).await;
        let mut failed = 0;
        let mut first = None;
        for ((topic, payload, _), result) in messages.iter().zip(results) {
            let Err((e, _)) = result else { continue };
            if let Some(reason) = undeliverable(&e) {
                self.metrics
                    .dropped
                    .with_label_values(&[&self.name, reason])
                    .inc();
                error!(sink = %self.name, topic = %topic, bytes = payload.len(), "Kafka refuses this record for good ({e}); dropped it, so that it does not hold up the stream");
                continue;
            }
            failed += 1;
            first.get_or_insert(e);
        }
        if let Some(first) = first {
            self.metrics
                .errors
                .with_label_values(&[&self.name])
                .inc_by(failed);
            return Err(std::io::Error::other(format!(
                "{failed} of {} records not delivered to Kafka: {first}",
                records.len()
            )));
        }
        Ok(bytes)
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
