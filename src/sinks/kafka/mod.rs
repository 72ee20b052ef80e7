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

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::IntCounterVec;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::Sink;
use crate::config::{KafkaKey, SinkConfig};
use crate::event::{Origin, Record};
use crate::kafka;
use crate::server::Health;

pub struct KafkaSink {
    name: String,
    producer: FutureProducer<kafka::Logged>,
    topic: TopicTemplate,
    key: KafkaKey,
    /// How long a send may wait for room in librdkafka's queue.
    queue_timeout: Timeout,
    errors: IntCounterVec,
    dropped: IntCounterVec,
}

/// The metrics of every Kafka sink, registered once.
#[derive(Clone)]
pub struct KafkaSinkMetrics {
    pub errors: IntCounterVec,
    pub dropped: IntCounterVec,
}

impl KafkaSink {
    /// The producer, and its healthcheck started on the current runtime.
    pub fn open(
        cfg: &SinkConfig,
        index: usize,
        health: &Arc<Health>,
        stop: CancellationToken,
        metrics: KafkaSinkMetrics,
    ) -> anyhow::Result<KafkaSink> {
        let name = format!("kafka-{index}");
        let servers = cfg
            .bootstrap_servers
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default();
        let topic = cfg
            .topic
            .as_ref()
            .map(|t| t.get_ref().clone())
            .ok_or_else(|| anyhow::anyhow!("sinks[{index}]: a Kafka sink needs a topic"))?;
        let ours = [
            ("client.id", format!("logsieve-{name}")),
            ("acks", cfg.acks.get_ref().clone()),
            ("compression.codec", cfg.compression.get_ref().clone()),
            ("message.timeout.ms", cfg.message_timeout_ms.to_string()),
            // A write is a whole batch, sent at once and waited for: lingering would only
            // add to every batch's wait (0 doubled Kafka → Kafka throughput in benches/kafka.rs).
            ("linger.ms", "0".into()),
        ];
        let producer: FutureProducer<kafka::Logged> =
            kafka::client_config(&servers, &ours, &cfg.librdkafka_options)
                .create_with_context(kafka::Logged::new(name.clone()))
                .map_err(|e| {
                    anyhow::anyhow!("sinks[{index}]: bad Kafka client configuration: {e}")
                })?;
        let probe = producer.clone();
        tokio::spawn(kafka::healthcheck(
            format!("Kafka sink `{name}`"),
            servers,
            health.clone(),
            stop,
            move |timeout| probe.client().fetch_metadata(None, timeout),
        ));
        Ok(KafkaSink {
            name,
            producer,
            topic: TopicTemplate::parse(&topic),
            key: cfg.key,
            // 0 is librdkafka's "no timeout".
            queue_timeout: match cfg.message_timeout_ms {
                0 => Timeout::Never,
                ms => Timeout::After(Duration::from_millis(ms)),
            },
            errors: metrics.errors,
            dropped: metrics.dropped,
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
                self.dropped.with_label_values(&[&self.name, reason]).inc();
                error!(sink = %self.name, topic = %topic, bytes = payload.len(), "Kafka refuses this record for good ({e}); dropped it, so that it does not hold up the stream");
                continue;
            }
            failed += 1;
            first.get_or_insert(e);
        }
        if let Some(first) = first {
            self.errors.with_label_values(&[&self.name]).inc_by(failed);
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

const MAX_TOPIC_LEN: usize = 249;

/// A topic name with `{label}` and `{source}` filled in per record.
#[derive(Debug, PartialEq)]
enum TopicTemplate {
    Fixed(String),
    Parts(Vec<Part>),
}

#[derive(Debug, PartialEq)]
enum Part {
    Text(String),
    Label,
    Source,
}

impl TopicTemplate {
    fn parse(template: &str) -> TopicTemplate {
        if !template.contains("{label}") && !template.contains("{source}") {
            return TopicTemplate::Fixed(template.to_string());
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (field, after) = if rest[open..].starts_with("{label}") {
                (Part::Label, &rest[open + "{label}".len()..])
            } else if rest[open..].starts_with("{source}") {
                (Part::Source, &rest[open + "{source}".len()..])
            } else {
                parts.push(Part::Text(rest[..=open].to_string()));
                rest = &rest[open + 1..];
                continue;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            parts.push(field);
            rest = after;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        TopicTemplate::Parts(parts)
    }

    fn render(&self, record: &Record) -> String {
        match self {
            TopicTemplate::Fixed(topic) => topic.clone(),
            TopicTemplate::Parts(parts) => {
                let mut topic = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => topic.push_str(text),
                        Part::Label => push_topic_safe(&mut topic, &record.verdict.label),
                        Part::Source => push_topic_safe(&mut topic, &record.event.source),
                    }
                }
                // Kafka's limit on a topic name's length (what is filled in is ASCII).
                topic.truncate(MAX_TOPIC_LEN);
                topic
            }
        }
    }
}

/// Appends `value` lower-cased, with every character Kafka does not allow in a topic name
/// (outside `a-z 0-9 . _ -`) as `-`: "Security Alert" → "security-alert".
fn push_topic_safe(topic: &mut String, value: &str) {
    topic.extend(value.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
            c
        } else {
            '-'
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, TierName, Verdict};

    fn record(label: &str, source: &str) -> Record {
        Record {
            event: Event {
                timestamp: Arc::from("2026-11-27T00:00:00.000Z"),
                source: Arc::from(source),
                message: "m".into(),
                origin: Origin::Row { row: 1 },
                fields: None,
                truncated: false,
                invalid_utf8: false,
            },
            verdict: Verdict {
                label: Arc::from(label),
                tier: TierName::Regex,
                confidence: None,
                rule: None,
                reason: None,
            },
        }
    }

    #[test]
    fn a_topic_template_takes_the_label_and_source_in_a_topic_safe_form() {
        let template = TopicTemplate::parse("logs.{label}.{source}");
        assert_eq!(
            template.render(&record("Security Alert", "LegacyCRM/eu")),
            "logs.security-alert.legacycrm-eu"
        );
        assert_eq!(
            TopicTemplate::parse("plain-topic"),
            TopicTemplate::Fixed("plain-topic".into())
        );
        let odd = TopicTemplate::parse("{x}-{label}");
        assert_eq!(odd.render(&record("Error", "a")), "{x}-error");
        let long = TopicTemplate::parse("logs.{source}");
        assert_eq!(long.render(&record("Error", &"s".repeat(400))).len(), 249);
    }
}
