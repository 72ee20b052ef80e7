//! File source: follows the files its globs match across rotation (rename + create) and
//! truncation (copytruncate), and remembers how far each file was *delivered* (not read), so a
//! restart neither skips a line nor re-reads more than was in flight.
//!
//! Split by concern, as Vector's `file-source` library is: [`fingerprint`] (what makes a file
//! the same file), [`checkpoints`] (delivered positions on disk), [`tailer`] (following files
//! and framing their lines, driven by the loop below), [`watch`] (globs and folder
//! notifications). This module owns the `[[sources]]` table of `type = "file"` and the loop that
//! ties the parts to the pipeline: the tailer runs on a thread of its own (a tailer is a tight
//! read loop; tokio's file I/O would add a thread hop per read), `notify` wakes it when a
//! watched folder changes, and a short poll covers what notify misses. Checkpoints are written
//! at most every `checkpoint_interval_ms` and once more after the pipeline drained.

pub mod checkpoints;
pub mod fingerprint;
pub mod identify;
pub mod tailer;
pub mod watch;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGaugeVec};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::checkpoints::Checkpoints;
use self::tailer::{Closed, TailSettings, Tailer};
use self::watch::{glob_base, Globs};
use super::{
    Chunk, Source, SourceBuild, SourceCommon, SourceConfig, SourceContext, SourceMetrics,
    SourcePlan,
};
use crate::config::{ConfigErrors, Section};
use crate::metrics::Registry;

/// How long the reader sleeps when nothing moved and notify said nothing.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// `type = "file"`: follows files matched by globs, across rotation, from checkpoints.
#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct FileSourceConfig {
    /// Globs of the files to follow, e.g. `["/var/log/app/*.log"]`; new matching files are
    /// picked up while running.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of files to leave alone among those `include` matches.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where a file with no checkpoint that is there at start is read from; files that appear
    /// later are always read from their beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// How often the globs are expanded again (ms), besides folder notifications.
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// How long a file renamed out of the globs or deleted is kept open after it last grew (ms).
    #[serde(default = "default_rotate_wait_ms")]
    pub rotate_wait_ms: u64,
    /// Checkpoints are written at most this often (ms), and at shutdown.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Most files held open at once; when more match, idle ones are closed and opened again
    /// when they grow. Default: half the process's open-file limit (`LimitNOFILE`,
    /// `ulimit -n`).
    pub max_open_files: Option<usize>,
}

fn default_glob_interval_ms() -> u64 {
    1000
}

fn default_rotate_wait_ms() -> u64 {
    5000
}

fn default_checkpoint_interval_ms() -> u64 {
    1000
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// The whole file.
    #[default]
    Beginning,
    /// Only what is written after the agent started.
    End,
}

impl SourceConfig for FileSourceConfig {
    const TYPE: &'static str = "file";

    fn plan(
        self,
        common: SourceCommon,
        index: usize,
        at: &Section,
        errs: &mut ConfigErrors,
    ) -> Option<Box<dyn SourcePlan>> {
        if self.include.is_empty() {
            errs.add(
                at.key("include"),
                "a file source needs at least one glob",
                "add include = [\"/var/log/app/*.log\"]",
            );
        }
        let mut include = Vec::new();
        for (i, text) in self.include.iter().enumerate() {
            let Some(pattern) = compile_glob(text, at, "include", i, errs) else {
                continue;
            };
            if let Some(dir) = glob_base(text).filter(|d| !d.is_dir()) {
                errs.add(
                    at.item("include", i),
                    format!("folder {} does not exist", dir.display()),
                    "create it or correct the path",
                );
            }
            include.push(pattern);
        }
        let exclude: Vec<glob::Pattern> = (self.exclude.iter().enumerate())
            .filter_map(|(i, text)| compile_glob(text, at, "exclude", i, errs))
            .collect();
        if include.len() < self.include.len() || exclude.len() < self.exclude.len() {
            return None;
        }
        // Names the checkpoint file and the metrics.
        let id = match &common.name {
            Some(name) => name
                .chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                    _ => '_',
                })
                .collect(),
            None => format!("file{index}"),
        };
        if self.max_open_files == Some(0) {
            errs.add(
                at.key("max_open_files"),
                "must be at least 1",
                "remove it to use half the open-file limit",
            );
        }
        Some(Box::new(FileSourcePlan {
            tail: TailSettings {
                source: id,
                lines: common,
                read_from: self.read_from,
                rotate_wait: Duration::from_millis(self.rotate_wait_ms),
                max_open: self.max_open_files.unwrap_or_else(half_the_open_file_limit),
            },
            globs: Globs { include, exclude },
            glob_interval: Duration::from_millis(self.glob_interval_ms.max(10)),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms.max(10)),
        }))
    }
}

/// Half the soft limit on open files (at least 16): the rest is for sockets, the model and
/// the sinks.
fn half_the_open_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let soft = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur,
        _ => 1024,
    };
    (usize::try_from(soft).unwrap_or(usize::MAX) / 2).clamp(16, 1 << 20)
}

fn compile_glob(
    text: &str,
    at: &Section,
    key: &str,
    index: usize,
    errs: &mut ConfigErrors,
) -> Option<glob::Pattern> {
    glob::Pattern::new(text)
        .map_err(|e| {
            errs.add(
                at.item(key, index),
                format!("`{text}` is not a glob: {e}"),
                "fix the pattern",
            )
        })
        .ok()
}

/// A file source's checked settings.
#[derive(Debug, Clone)]
pub struct FileSourcePlan {
    tail: TailSettings,
    globs: Globs,
    glob_interval: Duration,
    checkpoint_interval: Duration,
}

impl FileSourcePlan {
    fn checkpoint_file(&self) -> String {
        format!("{}.checkpoints.json", self.tail.source)
    }
}

impl SourcePlan for FileSourcePlan {
    fn describe(&self) -> String {
        let include: Vec<&str> = self.globs.include.iter().map(|p| p.as_str()).collect();
        let read_from = match self.tail.read_from {
            ReadFrom::Beginning => "beginning",
            ReadFrom::End => "end",
        };
        format!(
            "file {} (read_from {read_from}, {} files match now)",
            include.join(" "),
            self.globs.expand().len()
        )
    }

    fn exclusive(&self) -> Option<String> {
        Some(format!("the checkpoint file {}", self.checkpoint_file()))
    }

    fn build(&self, cx: &SourceBuild) -> anyhow::Result<Box<dyn Source>> {
        Ok(Box::new(FileSource {
            checkpoint_path: cx.data_dir.join(self.checkpoint_file()),
            plan: self.clone(),
            metrics: SourceMetrics::register(cx.registry),
            file_metrics: FileMetrics::register(cx.registry),
            exit_on_eof: cx.exit_on_eof,
        }))
    }
}

#[derive(Clone)]
pub struct FileMetrics {
    open_files: IntGaugeVec,
    rotations: IntCounterVec,
    truncations: IntCounterVec,
    recovered: IntCounterVec,
    missing: IntCounterVec,
    skipped: IntCounterVec,
    checkpoint_writes: IntCounterVec,
    checkpoint_errors: IntCounterVec,
}

impl FileMetrics {
    pub fn register(registry: &Registry) -> FileMetrics {
        FileMetrics {
            open_files: registry.gauge_vec(
                "logsieve_file_open_files",
                "Files the file source holds open.",
                &["source"],
            ),
            rotations: registry.counter_vec(
                "logsieve_file_rotations_total",
                "Files seen renamed away or deleted while followed.",
                &["source"],
            ),
            truncations: registry.counter_vec(
                "logsieve_file_truncations_total",
                "Files seen truncated or rewritten (copytruncate).",
                &["source"],
            ),
            recovered: registry.counter_vec(
                "logsieve_file_recovered_total",
                "Followed files found under another name (rotated while logsieve was stopped) and read to their end.",
                &["source"],
            ),
            missing: registry.counter_vec(
                "logsieve_file_missing_total",
                "Followed files not found again (deleted or compressed while logsieve was stopped): lines written to them after the checkpoint were not read.",
                &["source"],
            ),
            skipped: registry.counter_vec(
                "logsieve_file_skipped_total",
                "Files the globs match that are not read, by reason (compressed).",
                &["source", "reason"],
            ),
            checkpoint_writes: registry.counter_vec(
                "logsieve_checkpoint_writes_total",
                "Checkpoint files written.",
                &["source"],
            ),
            checkpoint_errors: registry.counter_vec(
                "logsieve_checkpoint_errors_total",
                "Checkpoint files that could not be read or written.",
                &["source"],
            ),
        }
    }
}

pub struct FileSource {
    plan: FileSourcePlan,
    checkpoint_path: std::path::PathBuf,
    metrics: SourceMetrics,
    file_metrics: FileMetrics,
    exit_on_eof: bool,
}

impl FileSource {
    fn id(&self) -> &str {
        &self.plan.tail.source
    }

    /// Writes the checkpoint file, counting the outcome.
    fn write_checkpoints(&self, checkpoints: &Mutex<Checkpoints>) {
        let mut checkpoints = checkpoints.lock().expect("checkpoint lock");
        match checkpoints.write() {
            Ok(()) => self
                .file_metrics
                .checkpoint_writes
                .with_label_values(&[self.id()])
                .inc(),
            Err(e) => {
                self.file_metrics
                    .checkpoint_errors
                    .with_label_values(&[self.id()])
                    .inc();
                error!(
                    source = %self.id(),
                    "cannot write checkpoint file {}: {e}",
                    checkpoints.path().display()
                );
            }
        }
    }

    /// Glob passes and read turns until shutdown (or, with `--exit-on-eof`, the files' end).
    fn follow(
        &self,
        tailer: &mut Tailer,
        checkpoints: &Mutex<Checkpoints>,
        out: &mpsc::Sender<Chunk>,
        shutdown: &CancellationToken,
    ) {
        let id = self.id();
        let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
        let _watcher = self.plan.globs.watch(id, wake_tx);
        let mut emit = |chunk: Chunk, bytes: u64| {
            self.metrics.count(id, &chunk.events, bytes);
            out.blocking_send(chunk).map_err(|_| Closed)
        };
        let mut last_scan: Option<Instant> = None;
        let mut last_checkpoint = Instant::now();
        let mut folder_changed = true;
        while !shutdown.is_cancelled() {
            if folder_changed || last_scan.is_none_or(|t| t.elapsed() >= self.plan.glob_interval) {
                tailer.update(self.plan.globs.expand());
                last_scan = Some(Instant::now());
                folder_changed = false;
            }
            let Ok(moved) = tailer.read_all(&mut emit, &|| shutdown.is_cancelled()) else {
                return;
            };
            self.count(tailer);
            if last_checkpoint.elapsed() >= self.plan.checkpoint_interval {
                self.write_checkpoints(checkpoints);
                last_checkpoint = Instant::now();
            }
            if self.exit_on_eof && !moved && tailer.all_at_eof() {
                // A last glob pass: files that appeared meanwhile are read too.
                tailer.update(self.plan.globs.expand());
                if tailer.all_at_eof() {
                    tailer.flush_partials(&mut emit);
                    info!(source = %id, "all files read to the end; stopping (--exit-on-eof)");
                    return;
                }
                continue;
            }
            if !moved {
                match wake_rx.recv_timeout(IDLE_POLL) {
                    Ok(()) => {
                        folder_changed = true;
                        while wake_rx.try_recv().is_ok() {}
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(IDLE_POLL)
                    }
                }
            }
        }
    }

    /// Moves the tailer's counts into the metrics.
    fn count(&self, tailer: &mut Tailer) {
        let id = [self.id()];
        let stats = tailer.take_stats();
        let m = &self.file_metrics;
        m.rotations.with_label_values(&id).inc_by(stats.rotations);
        m.truncations
            .with_label_values(&id)
            .inc_by(stats.truncations);
        m.recovered.with_label_values(&id).inc_by(stats.recovered);
        m.missing.with_label_values(&id).inc_by(stats.missing);
        m.skipped
            .with_label_values(&[self.id(), "compressed"])
            .inc_by(stats.compressed);
        m.open_files
            .with_label_values(&id)
            .set(tailer.open_files() as i64);
    }
}

#[async_trait]
impl Source for FileSource {
    fn name(&self) -> &str {
        self.id()
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let this = Arc::new(*self);
        if let Some(dir) = this.checkpoint_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create data_dir {}: {e} (set data_dir to a writable folder)",
                    dir.display()
                )
            })?;
        }
        let (loaded, problem) = Checkpoints::load(&this.checkpoint_path, this.id());
        if problem {
            this.file_metrics
                .checkpoint_errors
                .with_label_values(&[this.id()])
                .inc();
        }
        let checkpoints = Arc::new(Mutex::new(loaded));
        let (reader, reader_checkpoints) = (this.clone(), checkpoints.clone());
        let (out, shutdown) = (ctx.out, ctx.shutdown.clone());
        tokio::task::spawn_blocking(move || {
            let mut tailer = Tailer::new(reader.plan.tail.clone(), reader_checkpoints.clone());
            reader.follow(&mut tailer, &reader_checkpoints, &out, &shutdown);
        })
        .await?;
        ctx.drained.cancelled().await;
        this.write_checkpoints(&checkpoints);
        let in_flight = checkpoints.lock().expect("checkpoint lock").in_flight();
        if in_flight > 0 {
            warn!(source = %this.id(), chunks = in_flight, "stopped with undelivered lines; they will be read again after a restart");
        }
        Ok(())
    }
}
