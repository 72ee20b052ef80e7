//! Per-partition delivery tracking for the Kafka source, and the consumer context that keeps
//! it right across rebalances: which partitions this member owns, the contiguous delivered
//! watermark of each (what may be stored for commit), and which reads belong to an ownership
//! that has ended (a revoked partition's next owner reads them again, so they are dropped).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::KafkaMetrics;
use crate::ack::Watermark;
use crate::kafka;

pub type Partition = (Arc<str>, i32);

/// One partition's delivery tracking.
pub struct Mark {
    pub watermark: Watermark<i64>,
    /// The offset last stored for commit.
    pub stored: i64,
}

/// What the consumer loop and the rebalance callbacks share.
#[derive(Default)]
pub struct Partitions {
    pub marks: HashMap<Partition, Mark>,
    assigned: HashSet<Partition>,
    /// Counts revocations; every read is stamped with its value when it was read.
    pub revocations: u64,
    /// For each partition revoked, the `revocations` count just after: a read of it stamped
    /// earlier belongs to an ownership that ended, and is dropped, not sent on.
    revoked_at: HashMap<Partition, u64>,
}

impl Partitions {
    /// The delivered offset of every partition whose watermark moved past what was stored.
    pub fn delivered(&mut self) -> TopicPartitionList {
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
    pub fn stored(&mut self, tpl: &TopicPartitionList) {
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
    pub fn is_stale(&self, partition: &Partition, stamp: u64) -> bool {
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
pub struct Context {
    name: Arc<str>,
    throttle: kafka::Throttle,
    partitions: Arc<Mutex<Partitions>>,
    kafka: KafkaMetrics,
    drain_timeout: Duration,
}

impl Context {
    pub fn new(
        name: Arc<str>,
        partitions: Arc<Mutex<Partitions>>,
        kafka: KafkaMetrics,
        drain_timeout: Duration,
    ) -> Context {
        Context {
            name,
            throttle: kafka::Throttle::default(),
            partitions,
            kafka,
            drain_timeout,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::track;

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
