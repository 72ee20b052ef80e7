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
mod ordered;
pub mod stdout;

pub use ordered::OrderedWriter;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
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
    /// For a sink whose client queues writes and confirms each later (Kafka): starts writing
    /// the records and returns at once with what finishes when they are delivered, so that
    /// several batches can be in flight. `None` (the default): [`Sink::write`] them, one batch
    /// at a time.
    fn start_write(&mut self, _records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
        None
    }
    /// How many started writes may be in flight at once.
    fn writes_in_flight(&self) -> usize {
        1
    }
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

/// A write a sink started and goes on with by itself (see [`Sink::start_write`]).
pub type PendingWrite = Pin<Box<dyn Future<Output = std::io::Result<u64>> + Send>>;

/// One sink's run: its name, metrics and health, shared by its writes.
struct Driver {
    name: String,
    metrics: SinkMetrics,
    up: prometheus::IntGauge,
    health: Arc<Health>,
    give_up: CancellationToken,
}

/// Runs a sink until its channel closes (or, failing, until `give_up`). Returns how many
/// records it gave up on: not delivered, so read again after a restart.
///
/// A sink that can have several writes in flight ([`Sink::start_write`]) gets up to
/// [`Sink::writes_in_flight`] of them; their acknowledgements go back in the order the batches
/// came, each once its batch and every batch before it are delivered. A failed write is retried
/// (with backoff) before any later batch is acknowledged.
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
    let driver = Driver {
        name,
        metrics,
        up,
        health,
        give_up,
    };
    let window = sink.writes_in_flight().max(1);
    // The oldest write in flight, and the ones started after it, in order.
    let mut oldest: Option<(Delivery, PendingWrite)> = None;
    let mut later: VecDeque<(Delivery, PendingWrite)> = VecDeque::new();
    let mut open = true;
    loop {
        let room = open && oldest.is_some() as usize + later.len() < window;
        tokio::select! {
            biased;
            result = async { oldest.as_mut().expect("guarded").1.as_mut().await }, if oldest.is_some() => {
                let (delivery, _) = oldest.take().expect("guarded");
                let delivered = match result {
                    Ok(bytes) => {
                        driver.delivered(delivery, bytes);
                        Ok(())
                    }
                    Err(e) => {
                        driver.failed(&e);
                        driver.deliver(sink.as_mut(), delivery, true).await
                    }
                };
                if let Err(lost) = delivered {
                    let held: usize = later.drain(..).map(|(d, _)| d.records.len()).sum();
                    return driver.give_up_rest(lost + held, &mut deliveries).await;
                }
                oldest = later.pop_front();
            }
            next = deliveries.recv(), if room => match next {
                Some(delivery) => match sink.start_write(&delivery.records) {
                    Some(write) => {
                        let write = Box::pin(driver.watched(write));
                        if oldest.is_none() {
                            oldest = Some((delivery, write));
                        } else {
                            later.push_back((delivery, write));
                        }
                    }
                    None => {
                        if let Err(lost) = driver.deliver(sink.as_mut(), delivery, false).await {
                            return driver.give_up_rest(lost, &mut deliveries).await;
                        }
                    }
                },
                None => open = false,
            },
            else => break,
        }
    }
    info!(sink = %driver.name, "sink finished");
    0
}

impl Driver {
    /// Writes `delivery` until it is delivered or, at shutdown, given up: then the error is
    /// how many records it held. `after_failure`: the first attempt already failed.
    async fn deliver(
        &self,
        sink: &mut dyn Sink,
        delivery: Delivery,
        after_failure: bool,
    ) -> Result<(), usize> {
        let mut backoff = FIRST_BACKOFF;
        let mut wait = after_failure;
        loop {
            if wait {
                if self.give_up.is_cancelled() {
                    // Its acks drop unsettled: its chunks count as failed, read again after a
                    // restart.
                    return Err(delivery.records.len());
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.give_up.cancelled() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            wait = true;
            let result = match sink.start_write(&delivery.records) {
                Some(write) => self.watched(write).await,
                None => self.watched(sink.write(&delivery.records)).await,
            };
            match result {
                Ok(bytes) => {
                    self.delivered(delivery, bytes);
                    return Ok(());
                }
                Err(e) => self.failed(&e),
            }
        }
    }

    fn delivered(&self, delivery: Delivery, bytes: u64) {
        self.health.sink_wrote(&self.name);
        self.up.set(1);
        let records = delivery.records.len() as u64;
        self.metrics
            .records
            .with_label_values(&[&self.name])
            .inc_by(records);
        self.metrics
            .bytes
            .with_label_values(&[&self.name])
            .inc_by(bytes);
        for ack in delivery.acks {
            ack.delivered();
        }
    }

    fn failed(&self, e: &std::io::Error) {
        self.health.sink_failing(&self.name);
        self.up.set(0);
        self.metrics.errors.with_label_values(&[&self.name]).inc();
        if self.give_up.is_cancelled() {
            error!(sink = %self.name, "write failed: {e}");
        } else {
            error!(sink = %self.name, "write failed: {e}; retrying (sources wait meanwhile; /ready is 503)");
        }
    }

    /// At shutdown, with a sink that cannot write: `lost` records are given up on, and so is
    /// everything still queued. Returns the count; nothing of it is acknowledged.
    async fn give_up_rest(&self, lost: usize, deliveries: &mut mpsc::Receiver<Delivery>) -> usize {
        let mut lost = lost;
        deliveries.close();
        while let Some(queued) = deliveries.recv().await {
            lost += queued.records.len();
        }
        error!(sink = %self.name, "giving up at shutdown: {lost} records not delivered (read again after restart)");
        lost
    }

    /// One write; if it has not finished after [`SINK_STALL`], that is said (`up` is 0,
    /// `/ready` is 503) while it goes on waiting: a reader that stopped reading, a broker that
    /// stopped answering.
    fn watched<'a>(
        &self,
        write: impl Future<Output = std::io::Result<u64>> + Send + 'a,
    ) -> impl Future<Output = std::io::Result<u64>> + Send + 'a {
        let (name, up, health) = (self.name.clone(), self.up.clone(), self.health.clone());
        async move {
            let started = Instant::now();
            tokio::pin!(write);
            tokio::select! {
                result = &mut write => return result,
                _ = tokio::time::sleep(SINK_STALL) => {}
            }
            up.set(0);
            health.sink_stalled(&name, started);
            warn!(sink = %name, "a write has not finished for {} s (a reader that stopped reading?); the sources wait, /ready is 503", SINK_STALL.as_secs());
            let result = write.await;
            info!(sink = %name, "the hung write finished");
            result
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{track, ChunkState, Receipt};
    use std::collections::VecDeque;
    use tokio::sync::oneshot;

    /// A sink with several writes in flight, each finished by the test through its sender.
    struct Pipelined {
        started: mpsc::UnboundedSender<oneshot::Sender<std::io::Result<u64>>>,
    }

    #[async_trait]
    impl Sink for Pipelined {
        fn name(&self) -> &str {
            "pipelined"
        }
        async fn write(&mut self, _records: &[Record]) -> std::io::Result<u64> {
            unreachable!("every write is started")
        }
        fn start_write(&mut self, _records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
            let (done, finished) = oneshot::channel();
            self.started.send(done).unwrap();
            Some(Box::pin(async move {
                finished
                    .await
                    .unwrap_or_else(|_| Err(std::io::Error::other("dropped")))
            }))
        }
        fn writes_in_flight(&self) -> usize {
            4
        }
    }

    fn delivery() -> (Delivery, Receipt) {
        let (ack, receipt) = track();
        let records = Arc::new(Vec::new());
        (
            Delivery {
                records,
                acks: vec![ack],
            },
            receipt,
        )
    }

    #[tokio::test]
    async fn writes_in_flight_are_acknowledged_in_order_and_a_failed_one_first_retried() {
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let (queue, deliveries) = mpsc::channel(8);
        let driving = tokio::spawn(drive(
            Box::new(Pipelined {
                started: started_tx,
            }),
            deliveries,
            CancellationToken::new(),
            SinkMetrics::register(&Registry::default()),
            Arc::new(Health::new(CancellationToken::new())),
        ));
        let mut receipts = Vec::new();
        for _ in 0..3 {
            let (d, r) = delivery();
            queue.send(d).await.unwrap();
            receipts.push(r);
        }
        let mut writes = VecDeque::new();
        for _ in 0..3 {
            writes.push_back(started.recv().await.expect("three writes started at once"));
        }
        let states = |receipts: &[Receipt]| receipts.iter().map(Receipt::state).collect::<Vec<_>>();
        // The second and third finish first: nothing is acknowledged before the first.
        let first = writes.pop_front().unwrap();
        for later in writes {
            later.send(Ok(1)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(states(&receipts), [ChunkState::InFlight; 3]);
        // The first fails: it is written again, and only then is everything acknowledged.
        first
            .send(Err(std::io::Error::other("broker said no")))
            .unwrap();
        let retry = started
            .recv()
            .await
            .expect("the failed write started again");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(states(&receipts), [ChunkState::InFlight; 3]);
        retry.send(Ok(1)).unwrap();
        drop(queue);
        assert_eq!(driving.await.unwrap(), 0, "nothing given up");
        assert_eq!(states(&receipts), [ChunkState::Delivered; 3]);
    }
}
