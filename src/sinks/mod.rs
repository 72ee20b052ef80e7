//! Sinks write labelled records somewhere and say when they are delivered. Every sink sits
//! behind the one [`Sink`] trait; [`drive`] runs one: it writes each [`Delivery`], releases its
//! acknowledgements only after the write succeeded, and on failure logs, counts and retries with
//! backoff, so a broken sink stops the sources advancing instead of losing lines. At shutdown a
//! sink that still cannot write gives up after a grace period; what it held is not acknowledged
//! and is read again after a restart.

pub mod file;
pub mod kafka;
pub mod stdout;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::{IntCounterVec, Registry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::ack::Ack;
use crate::config::{SinkConfig, SinkType};
use crate::event::Record;
use crate::metrics;

/// One batch of records for one sink, with that sink's claims on the batch's chunks.
pub struct Delivery {
    pub records: Arc<Vec<Record>>,
    pub acks: Vec<Ack>,
}

#[async_trait]
pub trait Sink: Send {
    fn name(&self) -> &str;
    /// Writes and flushes the records; `Ok` means they are delivered. Returns bytes written.
    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64>;
}

#[derive(Clone)]
pub struct SinkMetrics {
    records: IntCounterVec,
    bytes: IntCounterVec,
    errors: IntCounterVec,
}

impl SinkMetrics {
    pub fn register(registry: &Registry) -> SinkMetrics {
        SinkMetrics {
            records: metrics::counter_vec(
                registry,
                "logsieve_sink_records_total",
                "Records written and flushed, by sink.",
                &["sink"],
            ),
            bytes: metrics::counter_vec(
                registry,
                "logsieve_sink_bytes_total",
                "Bytes written, by sink.",
                &["sink"],
            ),
            errors: metrics::counter_vec(
                registry,
                "logsieve_sink_errors_total",
                "Failed writes, by sink (each is retried).",
                &["sink"],
            ),
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs a sink until its channel closes (or, failing, until `give_up`).
pub async fn drive(
    mut sink: Box<dyn Sink>,
    mut deliveries: mpsc::Receiver<Delivery>,
    give_up: CancellationToken,
    metrics: SinkMetrics,
) {
    let name = sink.name().to_string();
    while let Some(delivery) = deliveries.recv().await {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match sink.write(&delivery.records).await {
                Ok(bytes) => {
                    metrics
                        .records
                        .with_label_values(&[&name])
                        .inc_by(delivery.records.len() as u64);
                    metrics.bytes.with_label_values(&[&name]).inc_by(bytes);
                    for ack in delivery.acks {
                        ack.delivered();
                    }
                    break;
                }
                Err(e) => {
                    metrics.errors.with_label_values(&[&name]).inc();
                    if give_up.is_cancelled() {
                        error!(sink = %name, "write failed: {e}; giving up at shutdown, {} records not delivered (read again after restart)", delivery.records.len());
                        return;
                    }
                    error!(sink = %name, "write failed: {e}; retrying in {:?} (sources wait meanwhile)", backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = give_up.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    info!(sink = %name, "sink finished");
}

/// Appends records as JSON lines to `buf`.
pub fn encode_json_lines(records: &[Record], buf: &mut Vec<u8>) {
    for record in records {
        record.write_json(buf);
        buf.push(b'\n');
    }
}

/// Opens the configured sinks. Kafka sinks start their healthcheck, which holds `/ready`
/// (through `health`) until their brokers answer, or until `stop`.
pub fn from_config(
    configs: &[SinkConfig],
    registry: &Registry,
    health: &Arc<crate::server::Health>,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut kafka_metrics = None;
    for (i, cfg) in configs.iter().enumerate() {
        match cfg.kind.get_ref() {
            SinkType::Stdout => sinks.push(Box::<stdout::StdoutSink>::default()),
            SinkType::File => {
                let path = cfg
                    .path
                    .as_ref()
                    .map(|p| p.get_ref().clone())
                    .ok_or_else(|| anyhow::anyhow!("sinks[{i}]: a file sink needs a path"))?;
                sinks.push(Box::new(file::FileSink::open(path.into(), cfg.fsync)?));
            }
            SinkType::Kafka => {
                let metrics = kafka_metrics
                    .get_or_insert_with(|| kafka::KafkaSinkMetrics {
                        errors: metrics::counter_vec(
                            registry,
                            "logsieve_kafka_produce_errors_total",
                            "Records the Kafka producer could not deliver (their batch is retried), by sink.",
                            &["sink"],
                        ),
                        dropped: metrics::counter_vec(
                            registry,
                            "logsieve_kafka_dropped_records_total",
                            "Records Kafka refuses for good (too large, invalid topic), dropped, by sink and reason.",
                            &["sink", "reason"],
                        ),
                    })
                    .clone();
                sinks.push(Box::new(kafka::KafkaSink::open(
                    cfg,
                    i,
                    health,
                    stop.clone(),
                    metrics,
                )?));
            }
        }
    }
    Ok(sinks)
}
