//! The agent, top to bottom: open sinks, start the HTTP server and the sources, then batch →
//! label → fan out to every sink until the sources are done; on SIGTERM/SIGINT stop reading,
//! drain what is in flight, flush the sinks, write checkpoints, exit 0. Every channel is bounded,
//! so a slow sink slows the sources instead of growing memory. Lines handed to the LLM tier
//! leave later, on their own, with a claim on their chunk: records can leave out of order
//! (`[tiers.llm] ordered = true` keeps them in order at the LLM's pace).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ack::Ack;
use crate::batch::{Batch, Batcher};
use crate::config::Plan;
use crate::health::Health;
use crate::metrics::Registry;
use crate::server;
use crate::sinks::{self, Delivery, SinkBuild, SinkMetrics};
use crate::sources::{Chunk, SourceBuild, SourceContext};
use crate::tiers::{LateRecords, Tiers};

/// Chunks waiting between the sources and the batcher.
const SOURCE_QUEUE: usize = 16;
/// Batches waiting for each sink.
const SINK_QUEUE: usize = 4;
/// How long a sink that cannot write may hold up shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub struct RunOptions {
    /// Stop once every file was read to its end (like Fluent Bit's `exit_on_eof`).
    pub exit_on_eof: bool,
}

pub async fn run(plan: Plan, options: RunOptions) -> anyhow::Result<()> {
    let registry = Registry::default();
    let tiers = Arc::new(Tiers::build(&plan.tiers, &registry)?);
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let give_up = CancellationToken::new();
    let drained = CancellationToken::new();
    for line in plan.describe() {
        info!("{line}");
    }
    if let Some(warning) = plan.tiers.labels_nothing() {
        warn!("{warning}");
    }

    // 1. Sinks, each behind its own bounded queue.
    let sink_metrics = SinkMetrics::register(&registry);
    let mut sink_queues = Vec::new();
    let mut sink_tasks = Vec::new();
    let sink_build = SinkBuild {
        registry: &registry,
        health: &health,
        stop: &shutdown,
    };
    for sink in &plan.sinks {
        let (tx, rx) = mpsc::channel::<Delivery>(SINK_QUEUE);
        sink_queues.push(tx);
        sink_tasks.push(tokio::spawn(sinks::drive(
            sink.open(&sink_build)?,
            rx,
            give_up.clone(),
            sink_metrics.clone(),
            health.clone(),
        )));
    }

    // 1b. Records the LLM answers after their batch left go to the same sinks.
    let late_forwarder = tiers
        .take_late()
        .map(|late| tokio::spawn(forward_late_records(late, sink_queues.clone())));

    // 2. The HTTP server: /metrics, /health, /ready, POST /classify. It serves through the
    //    drain (`/health` says 503 meanwhile) and stops last.
    let server_stop = CancellationToken::new();
    let server = if plan.server.enabled {
        let state = server::State {
            registry: registry.clone(),
            tiers: tiers.clone(),
            health: health.clone(),
            max_body_bytes: plan.server.max_body_bytes,
            max_lines: plan.batch.max_lines,
            classifying: Arc::new(tokio::sync::Semaphore::new(server::CLASSIFY_AT_ONCE)),
        };
        Some(server::start(plan.server.address, state, server_stop.clone()).await?)
    } else {
        None
    };

    // 3. Sources, all feeding one bounded queue.
    let (chunks_tx, chunks_rx) = mpsc::channel::<Chunk>(SOURCE_QUEUE);
    let mut source_tasks = Vec::new();
    let source_build = SourceBuild {
        registry: &registry,
        health: &health,
        data_dir: &plan.data_dir,
        exit_on_eof: options.exit_on_eof,
    };
    for source in &plan.sources {
        let source = source.build(&source_build)?;
        let name = source.name().to_string();
        let ctx = SourceContext {
            out: chunks_tx.clone(),
            shutdown: shutdown.clone(),
            drained: drained.clone(),
        };
        source_tasks.push((name, tokio::spawn(source.run(ctx))));
    }
    drop(chunks_tx);
    health.ready.store(true, Ordering::Release);
    tokio::spawn(watch_signals(
        shutdown.clone(),
        give_up.clone(),
        health.clone(),
    ));
    info!(
        config = %plan.origin,
        sources = source_tasks.len(),
        sinks = sink_queues.len(),
        "logsieve running"
    );

    // 4. Batch → label → every sink, until the sources are done (or, with none, until a signal).
    let batch_sizes = registry.histogram(
        "logsieve_batch_size_lines",
        "Lines per labelled batch.",
        prometheus::exponential_buckets(1.0, 2.0, 14)?,
    );
    let mut batcher = Batcher::new(
        chunks_rx,
        plan.batch.max_lines,
        Duration::from_millis(plan.batch.max_wait_ms),
    );
    while let Some(Batch { events, acks }) = batcher.next().await {
        batch_sizes.observe(events.len() as f64);
        let records = tiers.label_streaming(events, |i| acks.for_line(i)).await;
        send_to_sinks(&sink_queues, Arc::new(records), acks.chunks).await;
    }
    if source_tasks.is_empty() {
        shutdown.cancelled().await;
    }
    health.draining.store(true, Ordering::Release);
    shutdown.cancel();

    // 5. Drain: the LLM answers what it holds, sinks flush, then sources write their final
    //    checkpoints. What could not be delivered is counted: the exit code says so.
    let mut undelivered = tiers.drain(&give_up).await;
    if let Some(forwarder) = late_forwarder {
        forwarder.await?;
    }
    if let Some(summary) = tiers.summary() {
        info!("{summary}");
    }
    drop(sink_queues);
    for task in sink_tasks {
        undelivered += task.await?;
    }
    drained.cancel();
    let mut failed = None;
    for (name, task) in source_tasks {
        if let Err(e) = task.await? {
            warn!(source = %name, "source stopped with an error: {e:#}");
            failed.get_or_insert(e);
        }
    }
    server_stop.cancel();
    if let Some(server) = server {
        server.await??;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if undelivered > 0 {
        anyhow::bail!(
            "stopped with {undelivered} records not delivered (a sink could not write them in time); their lines are read again after a restart"
        );
    }
    info!("logsieve stopped");
    Ok(())
}

/// Hands one batch's records to every sink, each with its own claims on the chunks; then
/// releases the pipeline's claims (the sinks hold theirs).
async fn send_to_sinks(
    sink_queues: &[mpsc::Sender<Delivery>],
    records: Arc<Vec<crate::event::Record>>,
    acks: Vec<Ack>,
) {
    for queue in sink_queues {
        let delivery = Delivery {
            records: records.clone(),
            acks: acks.to_vec(),
        };
        if queue.send(delivery).await.is_err() {
            warn!("a sink stopped early; its records are not acknowledged");
        }
    }
    for ack in acks {
        ack.delivered();
    }
}

/// Records the LLM answered after their batch left, to the sinks, until the tiers drained.
async fn forward_late_records(mut late: LateRecords, sink_queues: Vec<mpsc::Sender<Delivery>>) {
    while let Some((records, acks)) = late.next().await {
        send_to_sinks(&sink_queues, Arc::new(records), acks).await;
    }
}

/// First SIGTERM/SIGINT: drain and stop. Second, or after the grace period: sinks give up.
async fn watch_signals(
    shutdown: CancellationToken,
    give_up: CancellationToken,
    health: Arc<Health>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining"),
        _ = int.recv() => info!("SIGINT: draining"),
        _ = shutdown.cancelled() => {}
    }
    health.draining.store(true, Ordering::Release);
    shutdown.cancel();
    tokio::select! {
        _ = term.recv() => warn!("second signal: giving up on undelivered records"),
        _ = int.recv() => warn!("second signal: giving up on undelivered records"),
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
    }
    give_up.cancel();
}
