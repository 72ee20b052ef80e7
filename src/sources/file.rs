//! File source: follows the files its globs match across rotation (rename + create) and
//! truncation (copytruncate), and remembers how far each file was *delivered* (not read), so a
//! restart neither skips a line nor re-reads more than was in flight.
//!
//! Identity is a fingerprint of the file's first line (xxh3 of up to 1 KiB), not its path:
//! rotation renames paths, and a rotated copy has the same first line as the file it copies.
//! A file too short to have a first line yet is known by device + inode until it has one.
//! Two open files with the same fingerprint are one file: the copy waits, and takes over from
//! the read position if the original is truncated (copytruncate), which recovers lines written
//! between our last read and the truncation.
//!
//! Reading is plain `std::fs` on a thread of its own (a tailer is a tight read loop; tokio's file
//! I/O would add a thread hop per read); `notify` wakes it when a watched folder changes, and a
//! short poll covers what notify misses. Checkpoints are written atomically (temp file, fsync,
//! rename) at most every `checkpoint_interval_ms` and once more after the pipeline drained.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGaugeVec, Registry};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::lines::Framer;
use super::{count, Chunk, LineDecoder, Source, SourceContext, SourceMetrics};
use crate::ack::{track, Watermark};
use crate::config::{ReadFrom, SourceConfig};
use crate::event::{now_rfc3339, Origin};
use crate::metrics;

/// Bytes of the first line that make a fingerprint.
const FINGERPRINT_BYTES: usize = 1024;
/// Largest single read.
const READ_BYTES: usize = 256 * 1024;
/// Reads from one file before the others get a turn.
const READS_PER_TURN: usize = 4;
/// How long the reader sleeps when nothing moved and notify said nothing.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Checkpoint entries of files not seen for this long are forgotten.
const FORGET_AFTER_SECS: u64 = 7 * 24 * 3600;

#[derive(Clone)]
pub struct FileMetrics {
    open_files: IntGaugeVec,
    rotations: IntCounterVec,
    truncations: IntCounterVec,
    checkpoint_writes: IntCounterVec,
    checkpoint_errors: IntCounterVec,
}

impl FileMetrics {
    pub fn register(registry: &Registry) -> FileMetrics {
        FileMetrics {
            open_files: metrics::gauge_vec(
                registry,
                "logsieve_file_open_files",
                "Files the file source holds open.",
                &["source"],
            ),
            rotations: metrics::counter_vec(
                registry,
                "logsieve_file_rotations_total",
                "Files seen renamed away or deleted while followed.",
                &["source"],
            ),
            truncations: metrics::counter_vec(
                registry,
                "logsieve_file_truncations_total",
                "Files seen truncated or rewritten (copytruncate).",
                &["source"],
            ),
            checkpoint_writes: metrics::counter_vec(
                registry,
                "logsieve_checkpoint_writes_total",
                "Checkpoint files written.",
                &["source"],
            ),
            checkpoint_errors: metrics::counter_vec(
                registry,
                "logsieve_checkpoint_errors_total",
                "Checkpoint files that could not be read or written.",
                &["source"],
            ),
        }
    }
}

pub struct FileSource {
    cfg: SourceConfig,
    /// Names the checkpoint file and the metrics.
    id: String,
    checkpoint_path: PathBuf,
    metrics: SourceMetrics,
    file_metrics: FileMetrics,
    exit_on_eof: bool,
}

impl FileSource {
    pub fn new(
        cfg: SourceConfig,
        index: usize,
        data_dir: &Path,
        metrics: SourceMetrics,
        file_metrics: FileMetrics,
        exit_on_eof: bool,
    ) -> FileSource {
        let id = match &cfg.name {
            Some(name) => name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            None => format!("file{index}"),
        };
        let checkpoint_path = data_dir.join(format!("{id}.checkpoints.json"));
        FileSource {
            cfg,
            id,
            checkpoint_path,
            metrics,
            file_metrics,
            exit_on_eof,
        }
    }
}

#[async_trait]
impl Source for FileSource {
    fn name(&self) -> &str {
        &self.id
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()> {
        let this = *self;
        if let Some(dir) = this.checkpoint_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create data_dir {}: {e} (set data_dir to a writable folder)",
                    dir.display()
                )
            })?;
        }
        let checkpoints = Arc::new(Mutex::new(Checkpoints::load(
            &this.checkpoint_path,
            &this.id,
            &this.file_metrics,
        )));
        let reader_checkpoints = checkpoints.clone();
        let shutdown = ctx.shutdown.clone();
        let out = ctx.out;
        let cfg = this.cfg.clone();
        let (id, metrics, file_metrics, exit_on_eof) = (
            this.id.clone(),
            this.metrics.clone(),
            this.file_metrics.clone(),
            this.exit_on_eof,
        );
        let reader = tokio::task::spawn_blocking(move || {
            let mut tailer = Tailer::new(cfg, id, reader_checkpoints, metrics, file_metrics);
            tailer.run(&out, &shutdown, exit_on_eof)
        });
        let result = reader.await?;
        ctx.drained.cancelled().await;
        let mut checkpoints = checkpoints.lock().expect("checkpoint lock");
        checkpoints.write(&this.file_metrics, &this.id);
        let in_flight: usize = checkpoints
            .by_key
            .values()
            .map(|i| i.watermark.in_flight())
            .sum();
        if in_flight > 0 {
            warn!(source = %this.id, chunks = in_flight, "stopped with undelivered lines; they will be read again after a restart");
        }
        result
    }
}

/// Everything known about one file identity (one fingerprint).
#[derive(Debug)]
struct Identity {
    watermark: Watermark<u64>,
    /// Offset just past the last complete line read (equal to `delivered` when loaded).
    read: u64,
    path: String,
    /// An open file currently reads this identity.
    live: bool,
    /// Unix seconds when this identity was last read or loaded.
    seen: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<CheckpointEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointEntry {
    fingerprint: String,
    path: String,
    offset: u64,
    seen: u64,
}

/// Delivered positions per identity, shared by the reader thread and the final write.
#[derive(Debug)]
struct Checkpoints {
    path: PathBuf,
    by_key: HashMap<String, Identity>,
}

impl Checkpoints {
    fn load(path: &Path, id: &str, metrics: &FileMetrics) -> Checkpoints {
        let mut by_key = HashMap::new();
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<CheckpointFile>(&bytes) {
                Ok(file) => {
                    for e in file.files {
                        by_key.insert(
                            e.fingerprint,
                            Identity {
                                watermark: Watermark::new(e.offset),
                                read: e.offset,
                                path: e.path,
                                live: false,
                                seen: e.seen,
                            },
                        );
                    }
                    info!(source = id, file = %path.display(), files = by_key.len(), "checkpoints loaded");
                }
                Err(e) => {
                    metrics.checkpoint_errors.with_label_values(&[id]).inc();
                    let aside = path.with_extension(format!("json.corrupt-{}", unix_now()));
                    let moved = std::fs::rename(path, &aside);
                    error!(
                        source = id,
                        "checkpoint file {} is not valid ({e}); {} and started without checkpoints (read_from applies)",
                        path.display(),
                        match moved {
                            Ok(()) => format!("moved it to {}", aside.display()),
                            Err(e) => format!("could not move it aside ({e})"),
                        }
                    );
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                metrics.checkpoint_errors.with_label_values(&[id]).inc();
                error!(
                    source = id,
                    "cannot read checkpoint file {}: {e}; starting without it",
                    path.display()
                );
            }
        }
        Checkpoints {
            path: path.to_path_buf(),
            by_key,
        }
    }

    /// Writes every identity's delivered position (temp file, fsync, rename).
    fn write(&mut self, metrics: &FileMetrics, id: &str) {
        let now = unix_now();
        self.by_key.retain(|_, i| {
            i.live || i.watermark.in_flight() > 0 || now.saturating_sub(i.seen) < FORGET_AFTER_SECS
        });
        let mut files: Vec<CheckpointEntry> = self
            .by_key
            .iter_mut()
            .map(|(key, i)| CheckpointEntry {
                fingerprint: key.clone(),
                path: i.path.clone(),
                offset: i.watermark.advance(),
                seen: i.seen,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.fingerprint.cmp(&b.fingerprint)));
        let body =
            serde_json::to_vec_pretty(&CheckpointFile { version: 1, files }).expect("serialisable");
        let tmp = self.path.with_extension("json.tmp");
        let result = (|| -> std::io::Result<()> {
            let file = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::new(&file);
            std::io::Write::write_all(&mut w, &body)?;
            std::io::Write::flush(&mut w)?;
            drop(w);
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        match result {
            Ok(()) => metrics.checkpoint_writes.with_label_values(&[id]).inc(),
            Err(e) => {
                metrics.checkpoint_errors.with_label_values(&[id]).inc();
                error!(
                    source = id,
                    "cannot write checkpoint file {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// One open file being followed.
struct Watched {
    file: std::fs::File,
    path: PathBuf,
    path_str: Arc<str>,
    dev_ino: (u64, u64),
    /// Key of its identity in `Checkpoints`.
    key: String,
    /// Its identity is settled: by fingerprint, or by inode after lines went out under it.
    identified: bool,
    framer: Framer,
    /// Its path no longer leads to it (renamed out of the globs, or deleted).
    orphaned: bool,
    last_growth: Instant,
    at_eof: bool,
}

struct Tailer {
    cfg: SourceConfig,
    id: String,
    name: Option<Arc<str>>,
    checkpoints: Arc<Mutex<Checkpoints>>,
    metrics: SourceMetrics,
    file_metrics: FileMetrics,
    files: HashMap<(u64, u64), Watched>,
    /// Files whose fingerprint another open file already reads (a rotated copy).
    waiting: HashSet<(u64, u64)>,
    exclude: Vec<glob::Pattern>,
    started: bool,
    buf: Vec<u8>,
}

impl Tailer {
    fn new(
        cfg: SourceConfig,
        id: String,
        checkpoints: Arc<Mutex<Checkpoints>>,
        metrics: SourceMetrics,
        file_metrics: FileMetrics,
    ) -> Tailer {
        let exclude = cfg
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        Tailer {
            name: cfg.name.as_deref().map(Arc::from),
            cfg,
            id,
            checkpoints,
            metrics,
            file_metrics,
            files: HashMap::new(),
            waiting: HashSet::new(),
            exclude,
            started: false,
            buf: vec![0u8; READ_BYTES],
        }
    }

    fn run(
        &mut self,
        out: &mpsc::Sender<Chunk>,
        shutdown: &CancellationToken,
        exit_on_eof: bool,
    ) -> anyhow::Result<()> {
        let (wake_tx, wake_rx) = std::sync::mpsc::channel::<()>();
        let _watcher = self.watch_folders(wake_tx);
        let glob_interval = Duration::from_millis(self.cfg.glob_interval_ms.max(10));
        let checkpoint_interval = Duration::from_millis(self.cfg.checkpoint_interval_ms.max(10));
        let mut last_scan: Option<Instant> = None;
        let mut last_checkpoint = Instant::now();
        let mut folder_changed = true;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if folder_changed || last_scan.is_none_or(|t| t.elapsed() >= glob_interval) {
                self.scan();
                last_scan = Some(Instant::now());
                folder_changed = false;
            }
            let moved = match self.read_all(out, shutdown) {
                Ok(moved) => moved,
                Err(Closed) => return Ok(()),
            };
            if last_checkpoint.elapsed() >= checkpoint_interval {
                self.checkpoints
                    .lock()
                    .expect("checkpoint lock")
                    .write(&self.file_metrics, &self.id);
                last_checkpoint = Instant::now();
            }
            if exit_on_eof
                && !moved
                && self.waiting.is_empty()
                && self.files.values().all(|w| w.at_eof)
            {
                self.flush_partials(out);
                info!(source = %self.id, "all files read to the end; stopping (--exit-on-eof)");
                return Ok(());
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

    /// Watches the folders the globs start in, so new and renamed files are seen at once.
    fn watch_folders(
        &self,
        wake: std::sync::mpsc::Sender<()>,
    ) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher;
        let mut watcher =
            match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if !matches!(event.kind, notify::EventKind::Access(_)) {
                        let _ = wake.send(());
                    }
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    warn!(source = %self.id, "file notifications unavailable ({e}); polling only");
                    return None;
                }
            };
        for pattern in &self.cfg.include {
            let pattern = pattern.get_ref();
            if let Some(dir) = crate::config::glob_base(pattern) {
                let mode = if pattern.contains("**") {
                    notify::RecursiveMode::Recursive
                } else {
                    notify::RecursiveMode::NonRecursive
                };
                if let Err(e) = watcher.watch(&dir, mode) {
                    warn!(source = %self.id, folder = %dir.display(), "cannot watch folder ({e}); polling it");
                }
            }
        }
        Some(watcher)
    }

    /// Expands the globs: picks up new files, notices renamed and vanished ones.
    fn scan(&mut self) {
        let mut found: HashMap<(u64, u64), PathBuf> = HashMap::new();
        for pattern in &self.cfg.include {
            let Ok(paths) = glob::glob(pattern.get_ref()) else {
                continue;
            };
            for path in paths.flatten() {
                if self.exclude.iter().any(|p| p.matches_path(&path)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_file() {
                    found.entry((meta.dev(), meta.ino())).or_insert(path);
                }
            }
        }
        for (dev_ino, watched) in self.files.iter_mut() {
            match found.get(dev_ino) {
                Some(path) if *path != watched.path => {
                    info!(source = %self.id, from = %watched.path.display(), to = %path.display(), "file renamed");
                    self.file_metrics
                        .rotations
                        .with_label_values(&[&self.id])
                        .inc();
                    watched.path = path.clone();
                    watched.path_str = Arc::from(path.to_string_lossy().as_ref());
                    watched.orphaned = false;
                }
                Some(_) => watched.orphaned = false,
                None if !watched.orphaned => {
                    info!(source = %self.id, file = %watched.path.display(), "file renamed away or deleted; reading it to the end");
                    self.file_metrics
                        .rotations
                        .with_label_values(&[&self.id])
                        .inc();
                    watched.orphaned = true;
                    watched.last_growth = Instant::now();
                }
                None => {}
            }
        }
        self.waiting.retain(|k| found.contains_key(k));
        let mut new: Vec<((u64, u64), PathBuf)> = found
            .into_iter()
            .filter(|(k, _)| !self.files.contains_key(k))
            .collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        for (dev_ino, path) in new {
            self.open(dev_ino, path);
        }
        self.started = true;
        self.file_metrics
            .open_files
            .with_label_values(&[&self.id])
            .set(self.files.len() as i64);
    }

    /// Starts following a file not followed yet, unless another open file already reads its
    /// content (then it waits, and is looked at again on the next scan).
    fn open(&mut self, dev_ino: (u64, u64), path: PathBuf) {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                warn!(source = %self.id, file = %path.display(), "cannot open file: {e}");
                return;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let fingerprint = fingerprint_of(&file);
        let path_str = path.to_string_lossy().to_string();
        let claim = self.claim(fingerprint, dev_ino, size, &path_str);
        let Claim::Start {
            key,
            offset,
            identified,
        } = claim
        else {
            if self.waiting.insert(dev_ino) {
                info!(source = %self.id, file = %path_str, "same content as a file already followed (a rotated copy); waiting");
            }
            return;
        };
        self.waiting.remove(&dev_ino);
        info!(source = %self.id, file = %path_str, offset, "following file");
        self.files.insert(
            dev_ino,
            Watched {
                file,
                path_str: Arc::from(path_str.as_str()),
                path,
                dev_ino,
                key,
                identified,
                framer: Framer::new(self.cfg.max_line_bytes, offset),
                orphaned: false,
                last_growth: Instant::now(),
                at_eof: false,
            },
        );
    }

    /// Decides which identity a file's content is and where reading it starts: its checkpoint
    /// (or the position a truncated original reached), else `read_from` for files there at
    /// start, else the beginning. `Wait` when an open file already reads this content.
    fn claim(
        &self,
        fingerprint: Option<String>,
        dev_ino: (u64, u64),
        size: u64,
        path: &str,
    ) -> Claim {
        let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
        let ino_key = ino_key(dev_ino);
        let identified = fingerprint.is_some();
        let key = fingerprint.unwrap_or_else(|| ino_key.clone());
        if checkpoints.by_key.get(&key).is_some_and(|i| i.live) {
            return Claim::Wait;
        }
        // A checkpoint may have been taken while the file was too short to fingerprint.
        if identified && !checkpoints.by_key.contains_key(&key) {
            if let Some(identity) = checkpoints.by_key.remove(&ino_key) {
                checkpoints.by_key.insert(key.clone(), identity);
            }
        }
        let offset = match checkpoints.by_key.get(&key) {
            Some(identity) if identity.read <= size => identity.read,
            Some(identity) => {
                warn!(source = %self.id, file = %path, checkpoint = identity.read, size, "file is shorter than its checkpoint (truncated while stopped); reading it from the beginning");
                0
            }
            None if !self.started && self.cfg.read_from == ReadFrom::End => size,
            None => 0,
        };
        let identity = checkpoints
            .by_key
            .entry(key.clone())
            .or_insert_with(|| Identity {
                watermark: Watermark::new(offset),
                read: offset,
                path: path.to_string(),
                live: true,
                seen: unix_now(),
            });
        if identity.read != offset {
            identity.watermark = Watermark::new(offset);
        }
        identity.read = offset;
        identity.live = true;
        identity.path = path.to_string();
        identity.seen = unix_now();
        Claim::Start {
            key,
            offset,
            identified,
        }
    }

    /// A file followed by device + inode now has a first line. If none of its lines went out
    /// yet, it is identified like a new file: it may turn out to be a copy being written
    /// (logrotate's copytruncate creates the copy empty, then fills it).
    fn identify_late(&self, watched: &mut Watched, fingerprint: String, size: u64) -> Late {
        {
            let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
            let emitted = checkpoints
                .by_key
                .get(&watched.key)
                .is_some_and(|i| i.read > 0 || i.watermark.in_flight() > 0);
            if emitted {
                if !checkpoints.by_key.contains_key(&fingerprint) {
                    if let Some(identity) = checkpoints.by_key.remove(&watched.key) {
                        checkpoints.by_key.insert(fingerprint.clone(), identity);
                        watched.key = fingerprint;
                    }
                }
                watched.identified = true;
                return Late::Keep;
            }
            checkpoints.by_key.remove(&watched.key);
        }
        match self.claim(Some(fingerprint), watched.dev_ino, size, &watched.path_str) {
            Claim::Wait => Late::Wait,
            Claim::Start { key, offset, .. } => {
                watched.key = key;
                watched.identified = true;
                if offset == 0 {
                    Late::Keep
                } else {
                    watched.framer = Framer::new(self.cfg.max_line_bytes, offset);
                    Late::Moved
                }
            }
        }
    }

    /// One turn over every followed file. Returns whether any byte was read.
    fn read_all(
        &mut self,
        out: &mpsc::Sender<Chunk>,
        shutdown: &CancellationToken,
    ) -> Result<bool, Closed> {
        let mut moved = false;
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for dev_ino in keys {
            if shutdown.is_cancelled() {
                return Ok(moved);
            }
            moved |= self.read_file(dev_ino, out)?;
        }
        Ok(moved)
    }

    fn read_file(
        &mut self,
        dev_ino: (u64, u64),
        out: &mpsc::Sender<Chunk>,
    ) -> Result<bool, Closed> {
        let Some(mut watched) = self.files.remove(&dev_ino) else {
            return Ok(false);
        };
        let meta = watched.file.metadata().ok();
        let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
        if size < watched.framer.position() || self.rewritten(&watched, size) {
            self.truncated(&mut watched);
        }
        let mut moved = false;
        let mut events = Vec::new();
        let mut bytes = 0u64;
        let timestamp = now_rfc3339();
        let decoder = LineDecoder::new(
            self.name
                .clone()
                .unwrap_or_else(|| watched.path_str.clone()),
            &self.cfg,
        );
        watched.at_eof = false;
        for _ in 0..READS_PER_TURN {
            let n = match watched
                .file
                .read_at(&mut self.buf, watched.framer.position())
            {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(source = %self.id, file = %watched.path.display(), "read failed: {e}");
                    break;
                }
            };
            if n == 0 {
                watched.at_eof = true;
                break;
            }
            if !watched.identified {
                if let Some(fingerprint) = fingerprint_of(&watched.file) {
                    match self.identify_late(&mut watched, fingerprint, size) {
                        Late::Keep => {}
                        Late::Moved => continue,
                        Late::Wait => {
                            info!(source = %self.id, file = %watched.path.display(), "same content as a file already followed (a rotated copy); waiting");
                            self.waiting.insert(dev_ino);
                            self.send(&watched, events, bytes, out)?;
                            return Ok(moved);
                        }
                    }
                }
            }
            moved = true;
            bytes += n as u64;
            let path = &watched.path_str;
            watched.framer.push(&self.buf[..n], &mut |line| {
                let offset = line.start;
                events.push(decoder.event(
                    line,
                    &timestamp,
                    Origin::File {
                        path: path.clone(),
                        offset,
                    },
                ));
            });
        }
        if moved {
            watched.last_growth = Instant::now();
        }
        let gone = watched.orphaned
            && watched.at_eof
            && (meta.as_ref().is_some_and(|m| m.nlink() == 0)
                || watched.last_growth.elapsed() >= Duration::from_millis(self.cfg.rotate_wait_ms));
        if gone {
            let path = watched.path_str.clone();
            watched.framer.flush(&mut |line| {
                let offset = line.start;
                events.push(decoder.event(
                    line,
                    &timestamp,
                    Origin::File {
                        path: path.clone(),
                        offset,
                    },
                ));
            });
        }
        let sent = self.send(&watched, events, bytes, out);
        if gone {
            info!(source = %self.id, file = %watched.path.display(), "file read to the end and closed");
            if let Some(identity) = self
                .checkpoints
                .lock()
                .expect("checkpoint lock")
                .by_key
                .get_mut(&watched.key)
            {
                identity.live = false;
            }
            self.file_metrics
                .open_files
                .with_label_values(&[&self.id])
                .set(self.files.len() as i64);
        } else {
            self.files.insert(dev_ino, watched);
        }
        sent.map(|()| moved)
    }

    /// Hands a chunk to the pipeline and records it against the file's identity.
    fn send(
        &self,
        watched: &Watched,
        events: Vec<crate::event::Event>,
        bytes: u64,
        out: &mpsc::Sender<Chunk>,
    ) -> Result<(), Closed> {
        if events.is_empty() {
            return Ok(());
        }
        count(&self.metrics, &self.id, &events, bytes);
        let (ack, receipt) = track();
        {
            let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
            if let Some(identity) = checkpoints.by_key.get_mut(&watched.key) {
                identity.watermark.push(watched.framer.complete(), receipt);
                identity.read = watched.framer.complete();
                identity.seen = unix_now();
            }
        }
        out.blocking_send(Chunk { events, ack }).map_err(|_| Closed)
    }

    /// The first line changed under us: the file was truncated and written again.
    fn rewritten(&self, watched: &Watched, size: u64) -> bool {
        if !watched.identified
            || !watched.key.starts_with("xxh3:")
            || size == watched.framer.position()
        {
            return false;
        }
        fingerprint_of(&watched.file).is_some_and(|f| f != watched.key)
    }

    /// Copytruncate: the old content's identity stays (a copy may take it over); the file starts
    /// again from offset 0 under a new identity.
    fn truncated(&mut self, watched: &mut Watched) {
        warn!(source = %self.id, file = %watched.path.display(), at = watched.framer.position(), "file truncated; reading it again from the beginning");
        self.file_metrics
            .truncations
            .with_label_values(&[&self.id])
            .inc();
        let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
        if let Some(identity) = checkpoints.by_key.get_mut(&watched.key) {
            identity.live = false;
        }
        let key = ino_key(watched.dev_ino);
        checkpoints.by_key.insert(
            key.clone(),
            Identity {
                watermark: Watermark::new(0),
                read: 0,
                path: watched.path_str.to_string(),
                live: true,
                seen: unix_now(),
            },
        );
        watched.key = key;
        watched.identified = false;
        watched.framer = Framer::new(self.cfg.max_line_bytes, 0);
    }

    /// `--exit-on-eof`: the files are complete, so their unfinished last lines are lines.
    fn flush_partials(&mut self, out: &mpsc::Sender<Chunk>) {
        let timestamp = now_rfc3339();
        let keys: Vec<(u64, u64)> = self.files.keys().copied().collect();
        for dev_ino in keys {
            let Some(mut watched) = self.files.remove(&dev_ino) else {
                continue;
            };
            let decoder = LineDecoder::new(
                self.name
                    .clone()
                    .unwrap_or_else(|| watched.path_str.clone()),
                &self.cfg,
            );
            let mut events = Vec::new();
            let path = watched.path_str.clone();
            watched.framer.flush(&mut |line| {
                let offset = line.start;
                events.push(decoder.event(
                    line,
                    &timestamp,
                    Origin::File {
                        path: path.clone(),
                        offset,
                    },
                ));
            });
            let _ = self.send(&watched, events, 0, out);
            self.files.insert(dev_ino, watched);
        }
    }
}

/// The pipeline is gone; stop reading.
struct Closed;

enum Claim {
    Wait,
    Start {
        key: String,
        offset: u64,
        identified: bool,
    },
}

/// What late identification did to a file.
enum Late {
    /// Go on reading where it was.
    Keep,
    /// Its read position moved (it took over a truncated original's position).
    Moved,
    /// Another open file reads the same content; stop following this one for now.
    Wait,
}

fn ino_key((dev, ino): (u64, u64)) -> String {
    format!("ino:{dev}:{ino}")
}

/// xxh3 of the first line (up to 1 KiB); `None` while the file has no complete first line.
fn fingerprint_of(file: &std::fs::File) -> Option<String> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    let head = &head[..filled];
    let first = match memchr::memchr(b'\n', head) {
        Some(nl) => &head[..=nl],
        None if filled == FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(first)))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_needs_a_whole_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"partial").unwrap();
        assert!(fingerprint_of(&std::fs::File::open(&path).unwrap()).is_none());
        std::fs::write(&path, b"first line\nsecond").unwrap();
        let a = fingerprint_of(&std::fs::File::open(&path).unwrap()).unwrap();
        std::fs::write(&path, b"first line\nother second line\n").unwrap();
        let b = fingerprint_of(&std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(a, b, "only the first line counts");
    }

    #[test]
    fn corrupt_checkpoint_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let metrics = FileMetrics::register(&Registry::new());
        let checkpoints = Checkpoints::load(&path, "x", &metrics);
        assert!(checkpoints.by_key.is_empty());
        assert!(!path.exists());
        let moved: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(
            moved
                .iter()
                .any(|n| n.starts_with("x.checkpoints.json.corrupt-")),
            "{moved:?}"
        );
        assert_eq!(metrics.checkpoint_errors.with_label_values(&["x"]).get(), 1);
    }
}
