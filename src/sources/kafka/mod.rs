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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGaugeVec, Registry};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::lines::decode;
use super::{count, Chunk, LineDecoder, Source, SourceContext, SourceMetrics};
use crate::ack::{track, Watermark};
use crate::config::{KafkaSourceFrom, SourceConfig};
use crate::event::{now_rfc3339, Event, Origin};
use crate::kafka;
use crate::metrics;
use crate::server::Health;

/// Messages handed to the pipeline together (per partition), or after this long.
const CHUNK_MESSAGES: usize = 512;
const CHUNK_WAIT: Duration = Duration::from_millis(5);
/// How long shutdown waits for the consumer to commit and leave its group.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How often delivered offsets are stored for librdkafka's next commit.
const STORE_EVERY: Duration = Duration::from_millis(100);

/// Metrics of every Kafka source, registered once.
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
            messages: metrics::counter_vec(
                registry,
                "logsieve_kafka_messages_total",
                "Kafka messages consumed, by topic.",
                &["topic"],
            ),
            tombstones: metrics::counter_vec(
                registry,
                "logsieve_kafka_tombstones_total",
                "Kafka messages without a payload, skipped, by topic.",
                &["topic"],
            ),
            lag: metrics::gauge_vec(
                registry,
                "logsieve_kafka_consumer_lag",
                "Messages in a partition not yet delivered by every sink (high watermark - stored offset), from librdkafka's statistics every second.",
                &["topic", "partition"],
            ),
            commits: metrics::counter_vec(
                registry,
                "logsieve_kafka_commits_total",
                "Offset commits that succeeded, by source.",
                &["source"],
            ),
            commit_errors: metrics::counter_vec(
                registry,
                "logsieve_kafka_commit_errors_total",
                "Offset commits that failed, by source.",
                &["source"],
            ),
            rebalances: metrics::counter_vec(
                registry,
                "logsieve_kafka_rebalances_total",
                "Consumer group rebalances, by source and kind (assign, revoke, error).",
                &["source", "kind"],
            ),
            assigned: metrics::gauge_vec(
                registry,
                "logsieve_kafka_assigned_partitions",
                "Partitions this consumer owns now, by source.",
                &["source"],
            ),
        }
    }
}

pub struct KafkaSource {
    name: Arc<str>,
    cfg: SourceConfig,
    metrics: SourceMetrics,
    kafka: KafkaMetrics,
    health: Arc<Health>,
}

impl KafkaSource {
    pub fn new(
        cfg: SourceConfig,
        index: usize,
        metrics: SourceMetrics,
        kafka: KafkaMetrics,
        health: Arc<Health>,
    ) -> KafkaSource {
        let name = cfg.name.clone().unwrap_or_else(|| format!("kafka-{index}"));
        KafkaSource {
            name: Arc::from(name),
            cfg,
            metrics,
            kafka,
            health,
        }
    }

    fn servers(&self) -> String {
        self.cfg
            .bootstrap_servers
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_default()
    }

    fn client_config(&self) -> rdkafka::ClientConfig {
        let cfg = &self.cfg;
        let ours = [
            ("group.id", cfg.group_id.clone()),
            ("client.id", format!("logsieve-{}", self.name)),
            ("enable.auto.commit", "true".into()),
            (
                "auto.commit.interval.ms",
                cfg.commit_interval_ms.to_string(),
            ),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", cfg.auto_offset_reset.get_ref().clone()),
            ("session.timeout.ms", cfg.session_timeout_ms.to_string()),
            ("statistics.interval.ms", "1000".into()),
            // A topic that does not exist yet (or a broker that came back without it) is
            // looked for again within seconds, not librdkafka's default 5 minutes.
            ("topic.metadata.refresh.interval.ms", "10000".into()),
        ];
        kafka::client_config(&self.servers(), &ours, &cfg.librdkafka_options)
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
            self.servers(),
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

type Partition = (Arc<str>, i32);

/// One partition's delivery tracking.
struct Mark {
    watermark: Watermark<i64>,
    /// The offset last stored for commit.
    stored: i64,
}

/// What the consumer loop and the rebalance callbacks share.
#[derive(Default)]
struct Partitions {
    marks: HashMap<Partition, Mark>,
    assigned: HashSet<Partition>,
    /// Counts revocations; every read is stamped with its value when it was read.
    revocations: u64,
    /// For each partition revoked, the `revocations` count just after: a read of it stamped
    /// earlier belongs to an ownership that ended, and is dropped, not sent on.
    revoked_at: HashMap<Partition, u64>,
}

impl Partitions {
    /// The delivered offset of every partition whose watermark moved past what was stored.
    fn delivered(&mut self) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), mark) in self.marks.iter_mut() {
            let delivered = mark.watermark.advance();
            if delivered > mark.stored {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(delivered));
            }
        }
        tpl
    }

    /// Records the offsets librdkafka accepted (the elements of `tpl` without an error).
    fn stored(&mut self, tpl: &TopicPartitionList) {
        for e in tpl.elements() {
            if e.error().is_err() {
                continue;
            }
            let Offset::Offset(offset) = e.offset() else {
                continue;
            };
            let mark = self
                .marks
                .iter_mut()
                .find(|((t, p), _)| **t == *e.topic() && *p == e.partition());
            if let Some((_, mark)) = mark {
                mark.stored = mark.stored.max(offset);
            }
        }
    }

    /// Whether a read of `partition`, stamped `stamp`, was made before the partition was
    /// last revoked.
    fn is_stale(&self, partition: &Partition, stamp: u64) -> bool {
        self.revoked_at.get(partition).is_some_and(|&at| stamp < at)
    }

    /// Forgets `revoked` (after their offsets were committed): their marks, their ownership,
    /// and every read of them made until now.
    fn forget(&mut self, revoked: &HashSet<Partition>) {
        self.marks
            .retain(|partition, _| !revoked.contains(partition));
        self.revocations += 1;
        for tp in revoked {
            self.assigned.remove(tp);
            self.revoked_at.insert(tp.clone(), self.revocations);
        }
    }
}

/// The consumer's context: librdkafka's logs, statistics (lag), commits and rebalances.
struct Context {
    name: Arc<str>,
    throttle: kafka::Throttle,
    partitions: Arc<Mutex<Partitions>>,
    kafka: KafkaMetrics,
    drain_timeout: Duration,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        kafka::log(&self.name, &self.throttle, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        kafka::client_error(&self.name, &self.throttle, &error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Against the stored offset, which is the delivered watermark: messages not yet
                // written by every sink (librdkafka's `consumer_lag` counts from the last
                // commit instead, so it also holds up to commit_interval_ms of delivered ones).
                if *partition >= 0 && p.consumer_lag_stored >= 0 {
                    self.kafka
                        .lag
                        .with_label_values(&[topic, &partition.to_string()])
                        .set(p.consumer_lag_stored);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    /// Before partitions go: wait for their messages still in the pipeline (bounded by
    /// `drain_timeout_ms`) and store what was delivered; librdkafka commits the stored offsets
    /// of the partitions it removes (`enable.auto.commit`), so the next owner starts there.
    /// Not a synchronous commit: that would block this thread for as long as the group
    /// coordinator is unreachable (the broker went down, the session timed out).
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let revoked: HashSet<Partition> = match rebalance {
            Rebalance::Revoke(tpl) => tpl
                .elements()
                .iter()
                .map(|e| (Arc::from(e.topic()), e.partition()))
                .collect(),
            // librdkafka gives up the whole assignment after a failed rebalance.
            Rebalance::Error(_) => {
                let partitions = self.partitions.lock().expect("partitions lock");
                partitions.assigned.clone()
            }
            Rebalance::Assign(_) => return,
        };
        let started = Instant::now();
        let offsets = loop {
            let mut partitions = self.partitions.lock().expect("partitions lock");
            let mut offsets = TopicPartitionList::new();
            let mut waiting = false;
            for (key, mark) in partitions.marks.iter_mut() {
                if !revoked.contains(key) {
                    continue;
                }
                let (topic, partition) = key;
                let delivered = mark.watermark.advance().max(mark.stored);
                waiting |= mark.watermark.in_flight() > 0 && !mark.watermark.is_stuck();
                let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(delivered));
            }
            if !waiting || started.elapsed() >= self.drain_timeout {
                if waiting {
                    warn!(source = %self.name, "rebalance: messages of revoked partitions still in flight after {:?}; their next owner reads them again", self.drain_timeout);
                }
                partitions.forget(&revoked);
                self.kafka
                    .assigned
                    .with_label_values(&[&self.name])
                    .set(partitions.assigned.len() as i64);
                break offsets;
            }
            drop(partitions);
            std::thread::sleep(Duration::from_millis(10));
        };
        if offsets.count() > 0 {
            if let Err(e) = consumer.store_offsets(&offsets) {
                warn!(source = %self.name, "rebalance: cannot store the revoked partitions' offsets: {e} (what was delivered since the last commit is read again)");
            }
        }
        info!(source = %self.name, partitions = revoked.len(), waited_ms = started.elapsed().as_millis() as u64, lost = consumer.assignment_lost(), "Kafka partitions revoked; their delivered offsets stored for the commit on unassign");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let kind = match rebalance {
            Rebalance::Assign(tpl) => {
                let mut partitions = self.partitions.lock().expect("partitions lock");
                for e in tpl.elements() {
                    partitions
                        .assigned
                        .insert((Arc::from(e.topic()), e.partition()));
                }
                self.kafka
                    .assigned
                    .with_label_values(&[&self.name])
                    .set(partitions.assigned.len() as i64);
                let list: Vec<String> = tpl
                    .elements()
                    .iter()
                    .map(|e| format!("{}/{}", e.topic(), e.partition()))
                    .collect();
                info!(source = %self.name, "Kafka partitions assigned: {}", list.join(", "));
                "assign"
            }
            Rebalance::Revoke(_) => "revoke",
            Rebalance::Error(e) => {
                warn!(source = %self.name, "Kafka rebalance failed: {e}");
                "error"
            }
        };
        self.kafka
            .rebalances
            .with_label_values(&[&self.name, kind])
            .inc();
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.kafka.commits.with_label_values(&[&self.name]).inc(),
            // Nothing new to commit: not an error.
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.kafka
                    .commit_errors
                    .with_label_values(&[&self.name])
                    .inc();
                warn!(source = %self.name, "Kafka offset commit failed: {e}");
            }
        }
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
    let context = Context {
        name: name.clone(),
        throttle: kafka::Throttle::default(),
        partitions: partitions.clone(),
        kafka: source.kafka.clone(),
        drain_timeout: Duration::from_millis(source.cfg.drain_timeout_ms),
    };
    let consumer: StreamConsumer<Context> = source
        .client_config()
        .create_with_context(context)
        .with_context(|| format!("Kafka source `{name}`: bad client configuration"))?;
    let topics: Vec<&str> = source
        .cfg
        .topics
        .iter()
        .map(|t| t.get_ref().as_str())
        .collect();
    consumer
        .subscribe(&topics)
        .with_context(|| format!("Kafka source `{name}`: cannot subscribe to {topics:?}"))?;
    info!(source = %name, topics = ?topics, group = %source.cfg.group_id, "Kafka source subscribed");

    let decoder = LineDecoder::new(name.clone(), &source.cfg);
    let source_from = source.cfg.kafka_source_from();
    let mut topic_names: HashMap<String, Arc<str>> = HashMap::new();
    let mut buffer: Vec<Read> = Vec::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut store = tokio::time::interval(STORE_EVERY);
    store.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<Instant> = None;
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
            message = consumer.recv() => {
                // Stamped after recv(): a revocation it handled came before this message.
                let stamp = partitions.lock().expect("partitions lock").revocations;
                match message {
                    Ok(m) => {
                        let read = read_message(&m, stamp, &source, &decoder, &source_from, &mut topic_names);
                        buffer.push(read);
                        if buffer.len() >= CHUNK_MESSAGES {
                            flush(&source, &partitions, &mut buffer, &ctx.out).await;
                            flush_at = None;
                        } else if flush_at.is_none() {
                            flush_at = Some(tokio::time::Instant::now() + CHUNK_WAIT);
                        }
                    }
                    Err(e) => {
                        // Broker trouble is also reported by the client's error callback;
                        // say it here at most every 10 s.
                        if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            warn!(source = %name, "Kafka consumer: {e}");
                            last_error = Some(Instant::now());
                        }
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
            _ = consumer.recv() => {}
        }
    }
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
    source: &KafkaSource,
    decoder: &LineDecoder,
    source_from: &KafkaSourceFrom,
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
    let line = decode(trimmed, 0, source.cfg.max_line_bytes, false);
    let named: Option<Arc<str>> = match source_from {
        KafkaSourceFrom::Topic => None,
        KafkaSourceFrom::Key => m
            .key()
            .map(|k| Arc::from(String::from_utf8_lossy(k).as_ref())),
        KafkaSourceFrom::Header(name) => m.headers().and_then(|headers| {
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
    let timestamp = now_rfc3339();
    let event = decoder.event_from(line, &timestamp, origin, named.as_ref().unwrap_or(&topic));
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
    // offset. (Revocations only happen inside `recv()`, on this same thread, so none can
    // come between this check and the marks below.)
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
        count(&source.metrics, &source.name, &events, bytes);
        if out.send(Chunk { events, ack }).await.is_err() {
            return; // the pipeline stopped; the ack is dropped, the offsets stay put
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic: &str, p: i32) -> Partition {
        (Arc::from(topic), p)
    }

    #[test]
    fn reads_from_before_a_revocation_are_stale_and_later_ones_are_not() {
        let mut partitions = Partitions::default();
        let p0 = partition("t", 0);
        partitions.assigned.insert(p0.clone());
        let before = partitions.revocations;
        assert!(!partitions.is_stale(&p0, before));
        partitions.forget(&HashSet::from([p0.clone()]));
        assert!(partitions.is_stale(&p0, before), "read before the revoke");
        assert!(
            !partitions.is_stale(&p0, partitions.revocations),
            "read after"
        );
        assert!(
            !partitions.is_stale(&partition("t", 1), before),
            "another partition"
        );
        assert!(partitions.assigned.is_empty());
    }

    #[test]
    fn an_offset_counts_as_stored_only_once_librdkafka_took_it() {
        let mut partitions = Partitions::default();
        let (ack, receipt) = track();
        let mut watermark = Watermark::new(10);
        watermark.push(20, receipt);
        partitions.marks.insert(
            partition("t", 0),
            Mark {
                watermark,
                stored: 10,
            },
        );
        ack.delivered();
        let offsets = partitions.delivered();
        assert_eq!(offsets.count(), 1);
        assert_eq!(
            partitions.delivered().count(),
            1,
            "not stored yet: offered again"
        );
        partitions.stored(&offsets);
        assert_eq!(partitions.delivered().count(), 0, "stored: nothing new");
    }
}
