//! Reloading the config while running (SIGHUP, `POST /reload`), as Fluent Bit's hot reload
//! does: the new config is read and checked whole first. A bad one is refused — its problems
//! logged with `file:line`, counted — and the old one stays in force. A good one that changes
//! only the tiers (rules, routes, labels, the model, the LLM) is built here and swapped in for
//! the next batch; one that changes the sources, sinks, batching or server makes the pipeline
//! drain (as a stop does: nothing lost, checkpoints written) and start again with it, in the
//! same process; if one of its parts then cannot be built (a port in use, say), the config that
//! was running starts again, and the reload counts as failed.

use std::path::PathBuf;

use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::{self, Plan};
use crate::metrics::Registry;
use crate::tiers::Tiers;

/// A request to read the config again; the answer says what happened.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// What a reload comes to.
pub enum Prepared {
    /// Only the tiers changed: these are the new ones.
    Tiers(Box<Tiers>),
    /// Sources, sinks, batching or the server changed: run this plan instead.
    Pipeline(Box<Plan>),
}

pub struct Reloader {
    /// The `--config` given, or none (the default file, else built-in defaults).
    path: Option<PathBuf>,
    reloads: IntCounterVec,
    last_successful: IntGauge,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, registry: &Registry) -> Reloader {
        let last_successful = registry.gauge(
            "logsieve_config_last_reload_successful",
            "1 when the last config reload was taken (or none was asked), 0 when it was refused.",
        );
        last_successful.set(1);
        Reloader {
            path,
            reloads: registry.counter_vec(
                "logsieve_config_reloads_total",
                "Config reloads asked for (SIGHUP, POST /reload), by result: success, failure.",
                &["result"],
            ),
            last_successful,
        }
    }

    /// Reads and checks the config, and builds the new tiers if they are all that changed.
    /// Call inside the runtime (the LLM tier starts its dispatcher); loading a model blocks
    /// this thread for a moment.
    /// `pipeline_key`: the running plan's (see [`Plan::pipeline_key`]).
    pub fn prepare(&self, pipeline_key: &str, registry: &Registry) -> Result<Prepared, String> {
        let plan = match config::load(self.path.as_deref()) {
            Ok(plan) => plan,
            Err(errors) => {
                for e in &errors.0 {
                    error!("config reload refused: {e}");
                }
                return Err(self.refused(format!("invalid configuration:\n{errors}")));
            }
        };
        if plan.pipeline_key != pipeline_key {
            // Counted as taken once the new pipeline has started (see `pipeline::run`).
            info!("config reloaded: sources, sinks, batching or server changed; draining and starting the pipeline again");
            return Ok(Prepared::Pipeline(Box::new(plan)));
        }
        match tokio::task::block_in_place(|| Tiers::build(&plan.tiers, registry)) {
            Ok(tiers) => {
                self.taken();
                info!("config reloaded: the new tiers take the next batch");
                Ok(Prepared::Tiers(Box::new(tiers)))
            }
            Err(e) => {
                error!("config reload refused: the new tiers cannot be built: {e:#}");
                Err(self.refused(format!("the new tiers cannot be built: {e:#}")))
            }
        }
    }

    /// The reload's config is in force.
    pub fn taken(&self) {
        self.reloads.with_label_values(&["success"]).inc();
        self.last_successful.set(1);
    }

    /// The reload's pipeline could not be built: the config that was running starts again.
    pub fn could_not_start(&self, e: &anyhow::Error) {
        self.reloads.with_label_values(&["failure"]).inc();
        self.last_successful.set(0);
        error!("the reloaded config cannot start: {e:#}; starting again with the config that was running");
    }

    fn refused(&self, why: String) -> String {
        self.reloads.with_label_values(&["failure"]).inc();
        self.last_successful.set(0);
        warn!("the config in force stays as it was");
        why
    }
}

/// SIGHUP, as a reload request.
pub async fn forward_sighup(requests: mpsc::Sender<ReloadRequest>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; reload with POST /reload");
        return;
    };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reloading the config");
        if requests.send(ReloadRequest { reply: None }).await.is_err() {
            return;
        }
    }
}
