//! The agent, top to bottom: open sinks, start the HTTP server and the sources, then batch →
//! label → fan out to every sink until the sources are done; on SIGTERM/SIGINT stop reading,
//! drain what is in flight, flush the sinks, write checkpoints, exit 0. Every channel is bounded,
//! so a slow sink slows the sources instead of growing memory. The lines the fast tiers decide
//! leave before the model runs on the rest of their batch, and lines handed to the LLM tier
//! leave later, on their own, with a claim on their chunk: records can leave out of order
//! (`[tiers.llm] ordered = true` keeps each batch together and in order, at the model's and
//! the LLM's pace).
//!
//! A config reload (SIGHUP, `POST /reload`; see `reload`) either swaps the tiers between two
//! batches, or ends this run of the pipeline as a stop would and starts the next with the new
//! config, in the same process: [`run`] loops over such runs ("generations"). A generation
//! builds every part before it starts any, so a new config whose parts cannot be built (a port
//! in use, a model that does not load) stops before it reads a line, and the config that was
//! running starts again.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::ack::Ack;
use crate::batch::{Batch, Batcher};
use crate::config::Plan;
use crate::health::Health;
use crate::metrics::Registry;
use crate::reload::{self, Prepared, ReloadRequest, Reloader};
use crate::server;
use crate::sinks::{self, Delivery, SinkBuild, SinkMetrics};
use crate::sources::{Chunk, Source, SourceBuild, SourceContext};
use crate::systemd;
use crate::tiers::{LateRecords, Tiers};

/// Chunks waiting between the sources and the batcher.
const SOURCE_QUEUE: usize = 16;
/// Batches waiting for each sink.
const SINK_QUEUE: usize = 4;
/// How long a sink that cannot write may hold up a stop (or a reload's drain).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub struct RunOptions {
    /// Stop once every file was read to its end (like Fluent Bit's `exit_on_eof`).
    pub exit_on_eof: bool,
    /// The `--config` given: what a reload reads again.
    pub config: Option<PathBuf>,
}

/// How one generation of the pipeline ended.
enum Ended {
    /// Stopped (a signal, or the inputs ended).
    Stopped,
    /// A reload changed more than the tiers: run again with this plan.
    Reload(Box<Plan>),
    /// A part could not be built: nothing was read or written.
    NotStarted(anyhow::Error),
}

/// Runs the agent until it is stopped, reloading its config when asked.
pub async fn run(plan: Plan, options: RunOptions) -> anyhow::Result<()> {
    let registry = Registry::default();
    let reloader = Reloader::new(options.config.clone(), &registry);
    // Process-wide: the first SIGTERM/SIGINT stops, a second gives up (see `watch_signals`).
    let stop = CancellationToken::new();
    let give_up = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone(), give_up.clone()));
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    tokio::spawn(reload::forward_sighup(reload_tx.clone()));
    systemd::spawn_watchdog();
    let mut plan = plan;
    // The plan that ran before a reload's: it runs again if the reload's cannot start.
    let mut before_reload: Option<Plan> = None;
    loop {
        let generation = Generation {
            registry: &registry,
            reloader: &reloader,
            options: &options,
            stop: &stop,
            give_up: &give_up,
            reload_tx: &reload_tx,
            reloaded: before_reload.is_some(),
        };
        match generation.run(&plan, &mut reload_rx).await? {
            Ended::Reload(next) if !stop.is_cancelled() => {
                before_reload = Some(std::mem::replace(&mut plan, *next));
            }
            Ended::NotStarted(e) => {
                let Some(previous) = before_reload.take() else {
                    return Err(e);
                };
                reloader.could_not_start(&e);
                plan = previous;
            }
            _ => {
                info!("logsieve stopped");
                return Ok(());
            }
        }
    }
}

/// What one run of the pipeline shares with the process.
struct Generation<'a> {
    registry: &'a Registry,
    reloader: &'a Reloader,
    options: &'a RunOptions,
    stop: &'a CancellationToken,
    give_up: &'a CancellationToken,
    reload_tx: &'a mpsc::Sender<ReloadRequest>,
    /// This generation runs a reload's plan (counted as taken once it has started).
    reloaded: bool,
}

/// A generation's parts, built and not yet started.
struct Parts {
    tiers: Tiers,
    sinks: Vec<Box<dyn sinks::Sink>>,
    sources: Vec<Box<dyn Source>>,
    listener: Option<tokio::net::TcpListener>,
}

impl Generation<'_> {
    async fn run(
        &self,
        plan: &Plan,
        reloads: &mut mpsc::Receiver<ReloadRequest>,
    ) -> anyhow::Result<Ended> {
        let registry = self.registry;
        // Stops this run's sources: at a stop, at the inputs' end, or when a reload needs a new
        // pipeline. `/health` says 503 ("draining") from then on, even while a sink holds up the
        // drain.
        let shutdown = self.stop.child_token();
        let health = Arc::new(Health::new(shutdown.clone()));
        let give_up = self.give_up.child_token();
        let drained = CancellationToken::new();
        for line in plan.describe() {
            info!("{line}");
        }
        if let Some(warning) = plan.tiers.labels_nothing() {
            warn!("{warning}");
        }

        // 0. Every part, built before any starts.
        let parts = match self.build(plan, &health, &shutdown).await {
            Ok(parts) => parts,
            Err(e) => {
                shutdown.cancel(); // stops what the built parts started (Kafka healthchecks)
                return Ok(Ended::NotStarted(e));
            }
        };
        if self.reloaded {
            self.reloader.taken();
        }
        let tiers = Arc::new(ArcSwap::from_pointee(parts.tiers));

        // 1. Sinks, each behind its own bounded queue.
        let sink_metrics = SinkMetrics::register(registry);
        let mut sink_queues = Vec::new();
        let mut sink_tasks = Vec::new();
        for sink in parts.sinks {
            let (tx, rx) = mpsc::channel::<Delivery>(SINK_QUEUE);
            sink_queues.push(tx);
            sink_tasks.push(tokio::spawn(sinks::drive(
                sink,
                rx,
                give_up.clone(),
                sink_metrics.clone(),
                health.clone(),
            )));
        }

        // 1b. Records the LLM answers after their batch left go to the same sinks; the tiers a
        //     reload replaced are drained here too.
        let mut late = JoinSet::new();
        forward_late(&tiers.load(), &sink_queues, &mut late);

        // 2. The HTTP server: /metrics, /health, /ready, POST /classify, POST /reload. It
        //    serves through the drain (`/health` says 503 meanwhile) and stops last.
        let server_stop = CancellationToken::new();
        let server = if let Some(listener) = parts.listener {
            let state = server::State {
                registry: registry.clone(),
                tiers: tiers.clone(),
                health: health.clone(),
                max_body_bytes: plan.server.max_body_bytes,
                max_lines: plan.batch.max_lines,
                classifying: Arc::new(tokio::sync::Semaphore::new(server::CLASSIFY_AT_ONCE)),
                reload: self.reload_tx.clone(),
            };
            Some(server::serve_on(listener, state, server_stop.clone()))
        } else {
            None
        };

        // 3. Sources, all feeding one bounded queue.
        let (chunks_tx, chunks_rx) = mpsc::channel::<Chunk>(SOURCE_QUEUE);
        let mut source_tasks = Vec::new();
        for source in parts.sources {
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
        // However this run ends (a stop, the inputs' end, a reload), a sink that cannot write
        // holds up its drain for the grace period at most.
        tokio::spawn({
            let (shutdown, give_up) = (shutdown.clone(), give_up.clone());
            async move {
                shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
                give_up.cancel();
            }
        });
        systemd::ready();
        info!(
            config = %plan.origin,
            sources = source_tasks.len(),
            sinks = sink_queues.len(),
            "logsieve running"
        );

        // 4. Batch → label → every sink, until the sources are done (or, with none, until a
        //    signal); between batches, reloads.
        let batch_sizes = registry.histogram(
            "logsieve_batch_size_lines",
            "Lines per labelled batch.",
            prometheus::exponential_buckets(1.0, 2.0, 14)?,
        );
        let mut batcher = Batcher::new(
            chunks_rx,
            plan.batch.max_lines,
            plan.batch.max_bytes,
            Duration::from_millis(plan.batch.max_wait_ms),
        );
        let mut next_plan = None;
        let mut model_run: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            tokio::select! {
                batch = batcher.next(), if !source_tasks.is_empty() => {
                    let Some(Batch { events, acks }) = batch else { break };
                    batch_sizes.observe(events.len() as f64);
                    let current = tiers.load_full();
                    let (early, rest) = current.label_fast(events).await;
                    if !early.is_empty() {
                        // Decided by the fast tiers: they do not wait for the model.
                        send_to_sinks(&sink_queues, Arc::new(early), acks.chunks.clone()).await;
                    }
                    // One batch at the model at a time, on a task of its own, while the next
                    // batches' fast tiers run; a batch with nothing for the model waits for it
                    // only when batches must leave in order.
                    if rest.is_slow() || current.is_ordered() {
                        if let Some(run) = model_run.take() {
                            run.await?;
                        }
                    }
                    let slow = rest.is_slow();
                    let queues = sink_queues.clone();
                    let labelled = async move {
                        let records = current.label_rest(rest, |i| acks.for_line(i)).await;
                        send_to_sinks(&queues, Arc::new(records), acks.chunks).await;
                    };
                    if slow {
                        model_run = Some(tokio::spawn(labelled));
                    } else {
                        labelled.await;
                    }
                }
                Some(request) = reloads.recv(), if next_plan.is_none() => {
                    systemd::reloading();
                    if let Some(run) = model_run.take() {
                        run.await?;
                    }
                    let answer = match self.reloader.prepare(&plan.pipeline_key, registry) {
                        Ok(Prepared::Tiers(new_tiers)) => {
                            let old = tiers.swap(Arc::new(*new_tiers));
                            forward_late(&tiers.load(), &sink_queues, &mut late);
                            let give_up = give_up.clone();
                            late.spawn(async move { Some(old.drain(&give_up).await) });
                            systemd::ready();
                            Ok("reloaded: the new tiers label from the next batch".to_string())
                        }
                        Ok(Prepared::Pipeline(new_plan)) => {
                            next_plan = Some(new_plan);
                            shutdown.cancel();
                            Ok("reloaded: the pipeline drains and starts again with the new config (if it cannot start, with the config that was running; see logsieve_config_last_reload_successful)".to_string())
                        }
                        Err(why) => {
                            systemd::ready();
                            Err(why)
                        }
                    };
                    if let Some(reply) = request.reply {
                        let _ = reply.send(answer);
                    }
                }
                _ = shutdown.cancelled(), if source_tasks.is_empty() => break,
            }
        }
        if let Some(run) = model_run.take() {
            run.await?;
        }
        if next_plan.is_none() || self.stop.is_cancelled() {
            systemd::stopping();
        }
        shutdown.cancel();

        // 5. Drain: the LLM answers what it holds, sinks flush, then sources write their final
        //    checkpoints. What could not be delivered is counted: the exit code says so.
        let mut undelivered = tiers.load().drain(&give_up).await;
        while let Some(done) = late.join_next().await {
            if let Ok(Some(n)) = done {
                undelivered += n;
            }
        }
        if let Some(summary) = tiers.load().summary() {
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
        Ok(match next_plan {
            Some(plan) => Ended::Reload(plan),
            None => Ended::Stopped,
        })
    }

    /// The tiers, the sinks opened, the sources built and the server's port bound; nothing
    /// started yet.
    async fn build(
        &self,
        plan: &Plan,
        health: &Arc<Health>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Parts> {
        let registry = self.registry;
        let tiers = Tiers::build(&plan.tiers, registry)?;
        let sink_build = SinkBuild {
            registry,
            health,
            stop: shutdown,
        };
        let sinks = plan
            .sinks
            .iter()
            .map(|sink| sink.open(&sink_build))
            .collect::<anyhow::Result<_>>()?;
        let source_build = SourceBuild {
            registry,
            health,
            data_dir: &plan.data_dir,
            exit_on_eof: self.options.exit_on_eof,
        };
        let sources = plan
            .sources
            .iter()
            .map(|source| source.build(&source_build))
            .collect::<anyhow::Result<_>>()?;
        let listener = match plan.server.enabled {
            true => Some(server::bind(plan.server.address).await?),
            false => None,
        };
        Ok(Parts {
            tiers,
            sinks,
            sources,
            listener,
        })
    }
}

/// Forwards the records `tiers`' LLM answers after their batch left, until it is drained.
fn forward_late(
    tiers: &Tiers,
    sink_queues: &[mpsc::Sender<Delivery>],
    tasks: &mut JoinSet<Option<usize>>,
) {
    if let Some(late) = tiers.take_late() {
        let queues = sink_queues.to_vec();
        tasks.spawn(async move {
            forward_late_records(late, queues).await;
            None
        });
    }
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

/// First SIGTERM/SIGINT: drain and stop (the drain gives up by itself after the grace period).
/// Second: sinks give up at once.
async fn watch_signals(stop: CancellationToken, give_up: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining"),
        _ = int.recv() => info!("SIGINT: draining"),
    }
    stop.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal: giving up on undelivered records");
    give_up.cancel();
}
