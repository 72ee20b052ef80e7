//! Kafka source: consumes topics as one member of a consumer group and remembers, per
//! partition, how far the messages were *delivered* (every sink wrote them), not read. The
//! offset stored for commit is that partition's contiguous delivered watermark
//! (`enable.auto.offset.store = false`; librdkafka commits what we store every
//! `commit_interval_ms`), so a crash replays what was in flight and never skips a message.
//!
//! The consumer runs on a thread of its own (an rdkafka `StreamConsumer` on a current-thread
//! runtime): a rebalance callback may block there — when partitions are revoked it waits, up to
//! `drain_timeout_ms`, for their messages still in the pipeline, and stores what was delivered,
//! which librdkafka commits as it lets the partitions go — without stalling the agent's runtime.
//! Messages read but not yet handed to the pipeline when their partition is revoked are
//! dropped; the partition's next owner reads them from the committed offset.
//!
//! No call here waits on a broker without a bound: librdkafka's synchronous commit waits
//! forever for a group coordinator that is down, so commits are librdkafka's own (on its
//! interval, on unassign, on close), and closing the consumer at shutdown is bounded too.
//!
//! Payloads are lines: invalid UTF-8 is replaced and flagged, long ones cut at
//! `max_line_bytes` and flagged, a JSON object's `message_field` is the message (as in the file
//! source). Tombstones (no payload) are skipped and counted; their offsets still count as
//! delivered.

mod config;
mod partitions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use prometheus::{IntCounterVec, IntGaugeVec};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use self::config::{AutoOffsetReset, KafkaSourceConfig, KafkaSourcePlan, SourceFrom};
use self::partitions::{Context, Mark, Partition, Partitions};
use super::lines::decode;
use super::{Chunk, LineDecoder, Source, SourceContext, SourceMetrics};
use crate::ack::{track, Watermark};
use crate::event::{now_rfc3339, Event, Origin};
use crate::health::Health;
use crate::kafka;
use crate::metrics::Registry;

/// Messages handed to the pipeline together (per partition), or after this long.
const CHUNK_MESSAGES: usize = 512;
const CHUNK_WAIT: Duration = Duration::from_millis(5);
/// How long shutdown waits for the consumer to commit and leave its group.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How often delivered offsets are stored for librdkafka's next commit.
const STORE_EVERY: Duration = Duration::from_millis(100);

/// Metrics of every Kafka source.
#[derive(Clone)]
pub struct KafkaMetrics {
    messages: IntCounterVec,
    tombstones: IntCounterVec,
    lag: IntGaugeVec,
    commits: IntCounterVec,
    commit_errors: IntCounterVec,
    rebalances: IntCounterVec,
    assigned: IntGaugeVec,
}

impl KafkaMetrics {
    pub fn register(registry: &Registry) -> KafkaMetrics {
        KafkaMetrics {
            messages: registry.counter_vec(
                "logsieve_kafka_messages_total",
                "Kafka messages consumed, by topic.",
                &["topic"],
            ),
            tombstones: registry.counter_vec(
                "logsieve_kafka_tombstones_total",
                "Kafka messages without a payload, skipped, by topic.",
                &["topic"],
            ),
            lag: registry.gauge_vec(
                "logsieve_kafka_consumer_lag",
                "Messages in a partition not yet delivered by every sink (high watermark - stored offset), from librdkafka's statistics every second.",
                &["topic", "partition"],
            ),
            commits: registry.counter_vec(
                "logsieve_kafka_commits_total",
                "Offset commits that succeeded, by source.",
                &["source"],
            ),
            commit_errors: registry.counter_vec(
                "logsieve_kafka_commit_errors_total",
                "Offset commits that failed, by source.",
                &["source"],
            ),
            rebalances: registry.counter_vec(
                "logsieve_kafka_rebalances_total",
                "Consumer group rebalances, by source and kind (assign, revoke, error).",
                &["source", "kind"],
            ),
            assigned: registry.gauge_vec(
                "logsieve_kafka_assigned_partitions",
                "Partitions this consumer owns now, by source.",
                &["source"],
            ),
        }
    }
}

pub struct KafkaSource {
    name: Arc<str>,
    plan: KafkaSourcePlan,
    metrics: SourceMetrics,
    kafka: KafkaMetrics,
    health: Arc<Health>,
}

impl KafkaSource {
    fn client_config(&self) -> rdkafka::ClientConfig {
        let cfg = &self.plan.settings;
        let ours = [
            ("group.id", cfg.group_id.clone()),
            ("client.id", format!("logsieve-{}", self.name)),
            ("enable.auto.commit", "true".into()),
            (
                "auto.commit.interval.ms",
                cfg.commit_interval_ms.to_string(),
            ),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", cfg.auto_offset_reset.as_str().into()),
            ("session.timeout.ms", cfg.session_timeout_ms.to_string()),
            ("statistics.interval.ms", "1000".into()),
            // A topic that does not exist yet (or a broker that came back without it) is
            // looked for again within seconds, not librdkafka's default 5 minutes.
            ("topic.metadata.refresh.interval.ms", "10000".into()),
            // librdkafka stops fetching a partition whose local queue holds queued.min.messages
            // (100,000) and looks again only after this long (default 1 s). A consumer slower
            // than the fetcher, as one that labels every message is, then stalls ~0.75 s each
            // time the queue fills: 500,000 waiting messages took 1.9–2.7 s instead of 1.0 s
            // here (BENCHMARKS.md §4).
            ("fetch.queue.backoff.ms", "10".into()),
        ];
        kafka::client_config(&self.plan.servers, &ours, &cfg.librdkafka_options)
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        // The healthcheck uses a client of its own: the group consumer lives on its thread.
        let probe: BaseConsumer<kafka::Logged> = self
            .client_config()
            .create_with_context(kafka::Logged::new(format!("{}-healthcheck", self.name)))
            .with_context(|| format!("Kafka source `{}`: bad client configuration", self.name))?;
        tokio::spawn(kafka::healthcheck(
            format!("Kafka source `{}`", self.name),
            self.plan.servers.clone(),
            self.health.clone(),
            ctx.shutdown.clone(),
            move |timeout| probe.fetch_metadata(None, timeout),
        ));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("kafka-{name}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(consume(*self, ctx)));
                let _ = done_tx.send(result);
            })?;
        done_rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("Kafka source `{name}`: its thread died")))
    }
}

/// A message read, not yet handed to the pipeline.
struct Read {
    partition: Partition,
    /// `Partitions::revocations` when it was read.
    stamp: u64,
    offset: i64,
    /// `None`: a tombstone.
    event: Option<Event>,
    bytes: u64,
}

async fn consume(source: KafkaSource, ctx: SourceContext) -> anyhow::Result<()> {
    let name = source.name.clone();
    let partitions = Arc::new(Mutex::new(Partitions::default()));
    let context = Context::new(
        name.clone(),
        partitions.clone(),
        source.kafka.clone(),
        Duration::from_millis(source.plan.settings.drain_timeout_ms),
    );
    let consumer: StreamConsumer<Context> = source
        .client_config()
        .create_with_context(context)
        .with_context(|| format!("Kafka source `{name}`: bad client configuration"))?;
    let topics: Vec<&str> = source
        .plan
        .settings
        .topics
        .iter()
        .map(String::as_str)
        .collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("Kafka source `{name}`: cannot subscribe to {topics:?}"))?;
    info!(source = %name, topics = ?topics, group = %source.plan.settings.group_id, "Kafka source subscribed");

    let decoder = LineDecoder::new(name.clone(), &source.plan.common);
    let source_from = source.plan.source_from.clone();
    let mut topic_names: HashMap<String, Arc<str>> = HashMap::new();
    let mut buffer: Vec<Read> = Vec::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut store = tokio::time::interval(STORE_EVERY);
    store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<Instant> = None;
    // One stream for the whole run: `recv()` would make (and register) a new one per message.
    let mut messages = consumer.stream();
    loop {
        let flush_due = async {
            match flush_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = ctx.shutdown.cancelled() => break,
            _ = flush_due => {
                flush(&source, &partitions, &mut buffer, &ctx.out).await;
                flush_at = None;
            }
            _ = store.tick() => store_delivered(&consumer, &partitions, &name),
            message = messages.next() => {
                // Then the messages already fetched, up to a chunk, without going round the
                // loop for each; they share their ingest time, as the lines of a file's read do.
                let timestamp = now_rfc3339();
                let mut next = message;
                let mut failure = None;
                while let Some(message) = next.take() {
                    // Stamped after the poll: a revocation it handled came before this message.
                    let stamp = partitions.lock().expect("partitions lock").revocations;
                    match message {
                        Ok(m) => {
                            let read = read_message(&m, stamp, &timestamp, &source, &decoder, &source_from, &mut topic_names);
                            buffer.push(read);
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                    if buffer.len() >= CHUNK_MESSAGES {
                        break;
                    }
                    next = messages.next().now_or_never().flatten();
                }
                if buffer.len() >= CHUNK_MESSAGES {
                    flush(&source, &partitions, &mut buffer, &ctx.out).await;
                    flush_at = None;
                } else if flush_at.is_none() && !buffer.is_empty() {
                    flush_at = Some(tokio::time::Instant::now() + CHUNK_WAIT);
                }
                if let Some(e) = failure {
                    // Broker trouble is also reported by the client's error callback; say it
                    // here at most every 10 s.
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        warn!(source = %name, "Kafka consumer: {e}");
                        last_error = Some(Instant::now());
                    }
                }
            }
        }
    }
    // Stop reading: hand over what was read, let the pipeline drain, then close. The consumer
    // is still polled meanwhile (what it reads is dropped: not delivered, so not committed), so
    // that a rebalance the group starts is answered rather than held up.
    flush(&source, &partitions, &mut buffer, &ctx.out).await;
    drop(ctx.out);
    loop {
        tokio::select! {
            _ = ctx.drained.cancelled() => break,
            _ = messages.next() => {}
        }
    }
    drop(messages);
    store_delivered(&consumer, &partitions, &name);
    // Closing gives the partitions up (librdkafka commits their stored offsets) and leaves the
    // group. rdkafka's drop waits for that without a limit — forever with the brokers down — so
    // it runs on a thread of its own and the agent waits for it at most CLOSE_WAIT.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("kafka-{name}-close"))
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        })?;
    match tokio::time::timeout(CLOSE_WAIT, closed_rx).await {
        Ok(_) => {
            info!(source = %name, "Kafka consumer closed: delivered offsets committed, group left")
        }
        Err(_) => {
            warn!(source = %name, "Kafka consumer not closed within {CLOSE_WAIT:?} (are the brokers down?); what was delivered since the last commit is read again, and the group hands this member's partitions on after session_timeout_ms")
        }
    }
    Ok(())
}

/// Stores every partition's delivered offset that moved, for librdkafka's next commit; an
/// offset librdkafka did not take is offered again next time.
fn store_delivered(consumer: &StreamConsumer<Context>, partitions: &Mutex<Partitions>, name: &str) {
    let offsets = partitions.lock().expect("partitions lock").delivered();
    if offsets.count() == 0 {
        return;
    }
    // rd_kafka_offsets_store fails only when no partition took its offset; each element
    // carries its own result.
    if let Err(e) = consumer.store_offsets(&offsets) {
        warn!(source = %name, "cannot store Kafka offsets: {e}");
    }
    partitions.lock().expect("partitions lock").stored(&offsets);
}

fn read_message(
    m: &BorrowedMessage<'_>,
    stamp: u64,
    timestamp: &Arc<str>,
    source: &KafkaSource,
    decoder: &LineDecoder,
    source_from: &SourceFrom,
    topic_names: &mut HashMap<String, Arc<str>>,
) -> Read {
    let topic = match topic_names.get(m.topic()) {
        Some(t) => t.clone(),
        None => {
            let t: Arc<str> = Arc::from(m.topic());
            topic_names.insert(m.topic().to_string(), t.clone());
            t
        }
    };
    let partition = (topic.clone(), m.partition());
    let Some(payload) = m.payload() else {
        source.kafka.tombstones.with_label_values(&[&topic]).inc();
        return Read {
            partition,
            stamp,
            offset: m.offset(),
            event: None,
            bytes: 0,
        };
    };
    let trimmed = payload
        .strip_suffix(b"\n")
        .map(|p| p.strip_suffix(b"\r").unwrap_or(p))
        .unwrap_or(payload);
    let line = decode(trimmed, 0, source.plan.common.max_line_bytes, false);
    let named: Option<Arc<str>> = match source_from {
        SourceFrom::Topic => None,
        SourceFrom::Key => m
            .key()
            .map(|k| Arc::from(String::from_utf8_lossy(k).as_ref())),
        SourceFrom::Header(name) => m.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| Arc::from(String::from_utf8_lossy(v).as_ref()))
        }),
    };
    let origin = Origin::Kafka {
        topic: topic.clone(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(Arc::from),
    };
    let event = decoder.event_from(line, timestamp, origin, named.as_ref().unwrap_or(&topic));
    Read {
        partition,
        stamp,
        offset: m.offset(),
        event: Some(event),
        bytes: payload.len() as u64,
    }
}

/// Hands what was read to the pipeline: one chunk per partition, each tracked by that
/// partition's watermark.
async fn flush(
    source: &KafkaSource,
    partitions: &Mutex<Partitions>,
    buffer: &mut Vec<Read>,
    out: &mpsc::Sender<Chunk>,
) {
    // Reads of a partition revoked since: its next owner reads them again from the committed
    // offset. (Revocations only happen while the consumer is polled, on this same thread, so
    // none can come between this check and the marks below.)
    {
        let p = partitions.lock().expect("partitions lock");
        buffer.retain(|r| !p.is_stale(&r.partition, r.stamp));
    }
    if buffer.is_empty() {
        return;
    }
    // Per partition, in order of first appearance: events, first and last offset, bytes.
    let mut order: Vec<Partition> = Vec::new();
    let mut groups: HashMap<Partition, (Vec<Event>, i64, i64, u64)> = HashMap::new();
    for read in buffer.drain(..) {
        let group = groups.entry(read.partition.clone()).or_insert_with(|| {
            order.push(read.partition.clone());
            (Vec::new(), read.offset, read.offset, 0)
        });
        if let Some(event) = read.event {
            group.0.push(event);
        }
        group.2 = read.offset;
        group.3 += read.bytes;
    }
    for partition in order {
        let (events, first, last, bytes) = groups.remove(&partition).expect("grouped");
        let (ack, receipt) = track();
        {
            let mut p = partitions.lock().expect("partitions lock");
            let mark = p.marks.entry(partition.clone()).or_insert_with(|| Mark {
                watermark: Watermark::new(first),
                stored: first,
            });
            mark.watermark.push(last + 1, receipt);
        }
        source
            .kafka
            .messages
            .with_label_values(&[&partition.0])
            .inc_by(events.len() as u64);
        if events.is_empty() {
            ack.delivered(); // only tombstones: nothing to write
            continue;
        }
        source.metrics.count(&source.name, &events, bytes);
        if out.send(Chunk { events, ack }).await.is_err() {
            return; // the pipeline stopped; the ack is dropped, the offsets stay put
        }
    }
}
