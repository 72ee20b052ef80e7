//! Sinks write labelled records somewhere and say when they are delivered. Every sink sits
//! behind the one [`Sink`] trait; [`drive`] runs one: it writes each [`Delivery`], releases its
//! acknowledgements only after the write succeeded, and on failure logs, counts and retries with
//! backoff, so a broken sink stops the sources advancing instead of losing lines. At shutdown a
//! sink that still cannot write gives up after a grace period; what it held is not acknowledged
//! and is read again after a restart.
//!
//! Each sink type owns its `[[sinks]]` table: a config struct, its checks, and the
//! [`SinkPlan`] they give, which `validate` describes and `run` opens. [`TYPES`] lists the
//! types; adding one is its own module plus one line there.

pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod stdout;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGaugeVec};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::ack::Ack;
use crate::config::{keys_of, plan_list, schema_of, ComponentType, ConfigErrors, Section};
use crate::event::Record;
use crate::health::{Health, SINK_STALL};
use crate::metrics::Registry;

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
    up: IntGaugeVec,
}

impl SinkMetrics {
    pub fn register(registry: &Registry) -> SinkMetrics {
        SinkMetrics {
            records: registry.counter_vec(
                "logsieve_sink_records_total",
                "Records written and flushed, by sink.",
                &["sink"],
            ),
            bytes: registry.counter_vec(
                "logsieve_sink_bytes_total",
                "Bytes written, by sink.",
                &["sink"],
            ),
            errors: registry.counter_vec(
                "logsieve_sink_errors_total",
                "Failed writes, by sink (each is retried).",
                &["sink"],
            ),
            up: registry.gauge_vec(
                "logsieve_sink_up",
                "1 while the sink writes, 0 while its writes fail or one has hung for a minute, by sink.",
                &["sink"],
            ),
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs a sink until its channel closes (or, failing, until `give_up`). Returns how many
/// records it gave up on: not delivered, so read again after a restart.
pub async fn drive(
    mut sink: Box<dyn Sink>,
    mut deliveries: mpsc::Receiver<Delivery>,
    give_up: CancellationToken,
    metrics: SinkMetrics,
    health: Arc<Health>,
) -> usize {
    let name = sink.name().to_string();
    let up = metrics.up.with_label_values(&[&name]);
    up.set(1);
    while let Some(delivery) = deliveries.recv().await {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match write_watched(sink.as_mut(), &delivery.records, &name, &up, &health).await {
                Ok(bytes) => {
                    health.sink_wrote(&name);
                    up.set(1);
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
                    health.sink_failing(&name);
                    up.set(0);
                    metrics.errors.with_label_values(&[&name]).inc();
                    if give_up.is_cancelled() {
                        let mut lost = delivery.records.len();
                        deliveries.close();
                        while let Some(held) = deliveries.recv().await {
                            lost += held.records.len();
                        }
                        error!(sink = %name, "write failed: {e}; giving up at shutdown, {lost} records not delivered (read again after restart)");
                        return lost;
                    }
                    error!(sink = %name, "write failed: {e}; retrying in {:?} (sources wait meanwhile; /ready is 503)", backoff);
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
    0
}

/// One write; if it has not finished after [`SINK_STALL`], that is said (`up` is 0, `/ready`
/// is 503) while it goes on waiting: a reader that stopped reading, a broker that stopped
/// answering.
async fn write_watched(
    sink: &mut dyn Sink,
    records: &[Record],
    name: &str,
    up: &prometheus::IntGauge,
    health: &Health,
) -> std::io::Result<u64> {
    let started = Instant::now();
    let write = sink.write(records);
    tokio::pin!(write);
    tokio::select! {
        result = &mut write => return result,
        _ = tokio::time::sleep(SINK_STALL) => {}
    }
    up.set(0);
    health.sink_stalled(name, started);
    warn!(sink = %name, "a write has not finished for {} s (a reader that stopped reading?); the sources wait, /ready is 503", SINK_STALL.as_secs());
    let result = write.await;
    info!(sink = %name, "the hung write finished");
    result
}

/// Appends records as JSON lines to `buf`.
pub fn encode_json_lines(records: &[Record], buf: &mut Vec<u8>) {
    for record in records {
        record.write_json(buf);
        buf.push(b'\n');
    }
}

/// What opening a sink may need from the agent.
pub struct SinkBuild<'a> {
    pub registry: &'a Registry,
    /// A sink with a start-up check (a Kafka sink waiting for its brokers) holds `/ready` here.
    pub health: &'a Arc<Health>,
    /// The agent is stopping: start-up checks give up.
    pub stop: &'a CancellationToken,
}

/// A sink's checked settings: what `validate` prints and what `run` opens.
pub trait SinkPlan: Send + Sync {
    /// One line for `validate` and the start-up log, after `sink: `.
    fn describe(&self) -> String;
    /// Where it writes, when two sinks must not write there both (standard output, a file).
    fn exclusive(&self) -> Option<String> {
        None
    }
    fn open(&self, cx: &SinkBuild) -> anyhow::Result<Box<dyn Sink>>;
}

/// A `[[sinks]]` table of one `type`: its keys, read with serde from the file, and the checks
/// that turn them into a plan.
pub trait SinkConfig: DeserializeOwned + schemars::JsonSchema {
    /// Its `type = "…"`.
    const TYPE: &'static str;
    /// Checks the settings; problems go to `errs` at their keys' lines. `index` is the table's
    /// place among `[[sinks]]`.
    fn plan(self, index: usize, at: &Section, errs: &mut ConfigErrors)
        -> Option<Box<dyn SinkPlan>>;
}

const fn sink_type<C: SinkConfig>() -> ComponentType<dyn SinkPlan> {
    ComponentType {
        name: C::TYPE,
        plan: plan_as::<C>,
        schema: schema_of::<C>,
        keys: keys_of::<C>,
    }
}

fn plan_as<C: SinkConfig>(
    index: usize,
    at: &Section,
    errs: &mut ConfigErrors,
) -> Option<Box<dyn SinkPlan>> {
    at.parse::<C>(errs)?.plan(index, at, errs)
}

/// Every sink type this build knows.
pub const TYPES: &[ComponentType<dyn SinkPlan>] = &[
    sink_type::<stdout::StdoutSinkConfig>(),
    sink_type::<file::FileSinkConfig>(),
    #[cfg(feature = "kafka")]
    sink_type::<kafka::KafkaSinkConfig>(),
];

/// Plans every `[[sinks]]` table; without any, records go to standard output.
pub fn plan_all(tables: &[Section], errs: &mut ConfigErrors) -> Vec<Box<dyn SinkPlan>> {
    if tables.is_empty() {
        return vec![Box::new(stdout::StdoutPlan)];
    }
    plan_list(tables, "sink", TYPES, |p| p.exclusive(), errs)
}
