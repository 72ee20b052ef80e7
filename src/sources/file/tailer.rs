//! The tailer: follows a set of files across rotation (rename + create) and truncation
//! (copytruncate), reads what they gain, frames it into lines and hands each chunk on with an
//! acknowledgement tracked against its file identity's checkpoint. It knows nothing of channels
//! or metrics: it is given the files a glob pass found and a function to hand chunks to, and it
//! counts what happened in plain numbers ([`Stats`]), so it can be driven and tested alone.
//!
//! Two open files with the same fingerprint are one file: the copy waits, and takes over from
//! the read position if the original is truncated (copytruncate), which recovers lines written
//! between the last read and the truncation.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::checkpoints::{unix_now, Checkpoints, Identity};
use super::fingerprint::{fingerprint_of, ino_key, is_fingerprint, DevIno};
use super::ReadFrom;
use crate::ack::track;
use crate::event::{now_rfc3339, Event, Origin};
use crate::sources::lines::{Framer, Line};
use crate::sources::{Chunk, LineDecoder, SourceCommon};

/// Largest single read.
const READ_BYTES: usize = 256 * 1024;
/// Reads from one file before the others get a turn.
const READS_PER_TURN: usize = 4;

/// What the tailer needs of its source's settings.
#[derive(Debug, Clone)]
pub struct TailSettings {
    /// The source's id, for logs.
    pub source: String,
    pub lines: SourceCommon,
    /// Where a file with no checkpoint that is there at start begins.
    pub read_from: ReadFrom,
    /// How long a renamed-away or deleted file is kept open after it last grew.
    pub rotate_wait: Duration,
}

/// What happened to the followed files, counted; [`Tailer::take_stats`] hands it over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Files seen renamed away or deleted while followed.
    pub rotations: u64,
    /// Files seen truncated or rewritten.
    pub truncations: u64,
}

/// The reader of chunks went away: stop reading.
#[derive(Debug)]
pub struct Closed;

/// Where a chunk goes, with the bytes read to make it.
pub type Emit<'a> = dyn FnMut(Chunk, u64) -> Result<(), Closed> + 'a;

/// One open file being followed.
struct Watched {
    file: std::fs::File,
    path: PathBuf,
    path_str: Arc<str>,
    dev_ino: DevIno,
    /// Key of its identity in `Checkpoints`.
    key: String,
    /// Its identity is settled: by fingerprint, or by inode after lines went out under it.
    identified: bool,
    framer: Framer,
    decoder: LineDecoder,
    /// Its path no longer leads to it (renamed out of the globs, or deleted).
    orphaned: bool,
    last_growth: Instant,
    at_eof: bool,
}

impl Watched {
    fn event(&self, line: Line, timestamp: &Arc<str>) -> Event {
        file_event(&self.decoder, &self.path_str, line, timestamp)
    }
}

/// A line of the file at `path` as an event.
fn file_event(decoder: &LineDecoder, path: &Arc<str>, line: Line, timestamp: &Arc<str>) -> Event {
    let offset = line.start;
    let origin = Origin::File {
        path: path.clone(),
        offset,
    };
    decoder.event(line, timestamp, origin)
}

pub struct Tailer {
    settings: TailSettings,
    checkpoints: Arc<Mutex<Checkpoints>>,
    files: HashMap<DevIno, Watched>,
    /// Files whose fingerprint another open file already reads (a rotated copy).
    waiting: HashSet<DevIno>,
    /// A glob pass has happened: files found from now on are new, read from the beginning.
    started: bool,
    stats: Stats,
    buf: Vec<u8>,
}

impl Tailer {
    pub fn new(settings: TailSettings, checkpoints: Arc<Mutex<Checkpoints>>) -> Tailer {
        Tailer {
            settings,
            checkpoints,
            files: HashMap::new(),
            waiting: HashSet::new(),
            started: false,
            stats: Stats::default(),
            buf: vec![0u8; READ_BYTES],
        }
    }

    /// Files followed now.
    pub fn open_files(&self) -> usize {
        self.files.len()
    }

    /// What happened since the last call.
    pub fn take_stats(&mut self) -> Stats {
        std::mem::take(&mut self.stats)
    }

    /// Every followed file was read to its end and no copy waits.
    pub fn all_at_eof(&self) -> bool {
        self.waiting.is_empty() && self.files.values().all(|w| w.at_eof)
    }

    fn source(&self) -> &str {
        &self.settings.source
    }

    /// Takes the files a glob pass found: picks up new ones, notices renamed and vanished ones.
    pub fn update(&mut self, found: HashMap<DevIno, PathBuf>) {
        for (dev_ino, watched) in self.files.iter_mut() {
            match found.get(dev_ino) {
                Some(path) if *path != watched.path => {
                    info!(source = %self.settings.source, from = %watched.path.display(), to = %path.display(), "file renamed");
                    self.stats.rotations += 1;
                    watched.path = path.clone();
                    watched.path_str = Arc::from(path.to_string_lossy().as_ref());
                    watched.orphaned = false;
                }
                Some(_) => watched.orphaned = false,
                None if !watched.orphaned => {
                    info!(source = %self.settings.source, file = %watched.path.display(), "file renamed away or deleted; reading it to the end");
                    self.stats.rotations += 1;
                    watched.orphaned = true;
                    watched.last_growth = Instant::now();
                }
                None => {}
            }
        }
        self.waiting.retain(|k| found.contains_key(k));
        let mut new: Vec<(DevIno, PathBuf)> = found
            .into_iter()
            .filter(|(k, _)| !self.files.contains_key(k))
            .collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        for (dev_ino, path) in new {
            self.open(dev_ino, path);
        }
        self.started = true;
    }

    /// The decoder of a file's lines: the source's name, else the file's path.
    fn decoder(&self, path: &Arc<str>) -> LineDecoder {
        let name = self
            .settings
            .lines
            .name
            .as_deref()
            .map(Arc::from)
            .unwrap_or_else(|| path.clone());
        LineDecoder::new(name, &self.settings.lines)
    }

    /// Starts following a file not followed yet, unless another open file already reads its
    /// content (then it waits, and is looked at again on the next pass).
    fn open(&mut self, dev_ino: DevIno, path: PathBuf) {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                warn!(source = %self.source(), file = %path.display(), "cannot open file: {e}");
                return;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let fingerprint = fingerprint_of(&file);
        let path_str: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let Claim::Start {
            key,
            offset,
            identified,
        } = self.claim(fingerprint, dev_ino, size, &path_str)
        else {
            if self.waiting.insert(dev_ino) {
                info!(source = %self.source(), file = %path_str, "same content as a file already followed (a rotated copy); waiting");
            }
            return;
        };
        self.waiting.remove(&dev_ino);
        info!(source = %self.source(), file = %path_str, offset, "following file");
        let decoder = self.decoder(&path_str);
        self.files.insert(
            dev_ino,
            Watched {
                file,
                path_str,
                path,
                dev_ino,
                key,
                identified,
                framer: Framer::new(self.settings.lines.max_line_bytes, offset),
                decoder,
                orphaned: false,
                last_growth: Instant::now(),
                at_eof: false,
            },
        );
    }

    /// Decides which identity a file's content is and where reading it starts: its checkpoint
    /// (or the position a truncated original reached), else `read_from` for files there at
    /// start, else the beginning. `Wait` when an open file already reads this content.
    fn claim(&self, fingerprint: Option<String>, dev_ino: DevIno, size: u64, path: &str) -> Claim {
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
                warn!(source = %self.source(), file = %path, checkpoint = identity.read, size, "file is shorter than its checkpoint (truncated while stopped); reading it from the beginning");
                0
            }
            None if !self.started && self.settings.read_from == ReadFrom::End => size,
            None => 0,
        };
        let identity = checkpoints
            .by_key
            .entry(key.clone())
            .or_insert_with(|| Identity::at(offset, path));
        if identity.read != offset {
            identity.watermark = crate::ack::Watermark::new(offset);
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
                    watched.framer = Framer::new(self.settings.lines.max_line_bytes, offset);
                    Late::Moved
                }
            }
        }
    }

    /// One turn over every followed file, handing each file's new lines to `emit`. Returns
    /// whether any byte was read; stops early when `stop` says so.
    pub fn read_all(
        &mut self,
        emit: &mut Emit<'_>,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, Closed> {
        let mut moved = false;
        let keys: Vec<DevIno> = self.files.keys().copied().collect();
        for dev_ino in keys {
            if stop() {
                return Ok(moved);
            }
            moved |= self.read_file(dev_ino, emit)?;
        }
        Ok(moved)
    }

    fn read_file(&mut self, dev_ino: DevIno, emit: &mut Emit<'_>) -> Result<bool, Closed> {
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
        watched.at_eof = false;
        for _ in 0..READS_PER_TURN {
            let n = match watched
                .file
                .read_at(&mut self.buf, watched.framer.position())
            {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(source = %self.source(), file = %watched.path.display(), "read failed: {e}");
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
                            info!(source = %self.source(), file = %watched.path.display(), "same content as a file already followed (a rotated copy); waiting");
                            self.waiting.insert(dev_ino);
                            self.send(&watched, events, bytes, emit)?;
                            return Ok(moved);
                        }
                    }
                }
            }
            moved = true;
            bytes += n as u64;
            let Watched {
                framer,
                path_str,
                decoder,
                ..
            } = &mut watched;
            framer.push(&self.buf[..n], &mut |line| {
                events.push(file_event(decoder, path_str, line, &timestamp));
            });
        }
        if moved {
            watched.last_growth = Instant::now();
        }
        let gone = watched.orphaned
            && watched.at_eof
            && (meta.as_ref().is_some_and(|m| m.nlink() == 0)
                || watched.last_growth.elapsed() >= self.settings.rotate_wait);
        if gone {
            let mut partial = Vec::new();
            watched.framer.flush(&mut |line| partial.push(line));
            events.extend(partial.into_iter().map(|l| watched.event(l, &timestamp)));
        }
        let sent = self.send(&watched, events, bytes, emit);
        if gone {
            info!(source = %self.source(), file = %watched.path.display(), "file read to the end and closed");
            if let Some(identity) = self
                .checkpoints
                .lock()
                .expect("checkpoint lock")
                .by_key
                .get_mut(&watched.key)
            {
                identity.live = false;
            }
        } else {
            self.files.insert(dev_ino, watched);
        }
        sent.map(|()| moved)
    }

    /// Hands a chunk on and records it against the file's identity.
    fn send(
        &self,
        watched: &Watched,
        events: Vec<Event>,
        bytes: u64,
        emit: &mut Emit<'_>,
    ) -> Result<(), Closed> {
        if events.is_empty() {
            return Ok(());
        }
        let (ack, receipt) = track();
        {
            let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
            if let Some(identity) = checkpoints.by_key.get_mut(&watched.key) {
                identity.watermark.push(watched.framer.complete(), receipt);
                identity.read = watched.framer.complete();
                identity.seen = unix_now();
            }
        }
        emit(Chunk { events, ack }, bytes)
    }

    /// The first line changed under us: the file was truncated and written again.
    fn rewritten(&self, watched: &Watched, size: u64) -> bool {
        if !watched.identified || !is_fingerprint(&watched.key) || size == watched.framer.position()
        {
            return false;
        }
        fingerprint_of(&watched.file).is_some_and(|f| f != watched.key)
    }

    /// Copytruncate: the old content's identity stays (a copy may take it over); the file starts
    /// again from offset 0 under a new identity.
    fn truncated(&mut self, watched: &mut Watched) {
        warn!(source = %self.source(), file = %watched.path.display(), at = watched.framer.position(), "file truncated; reading it again from the beginning");
        self.stats.truncations += 1;
        let mut checkpoints = self.checkpoints.lock().expect("checkpoint lock");
        if let Some(identity) = checkpoints.by_key.get_mut(&watched.key) {
            identity.live = false;
        }
        let key = ino_key(watched.dev_ino);
        checkpoints
            .by_key
            .insert(key.clone(), Identity::at(0, &watched.path_str));
        watched.key = key;
        watched.identified = false;
        watched.framer = Framer::new(self.settings.lines.max_line_bytes, 0);
    }

    /// `--exit-on-eof`: the files are complete, so their unfinished last lines are lines.
    pub fn flush_partials(&mut self, emit: &mut Emit<'_>) {
        let timestamp = now_rfc3339();
        let keys: Vec<DevIno> = self.files.keys().copied().collect();
        for dev_ino in keys {
            let Some(mut watched) = self.files.remove(&dev_ino) else {
                continue;
            };
            let mut partial = Vec::new();
            watched.framer.flush(&mut |line| partial.push(line));
            let events: Vec<Event> = partial
                .into_iter()
                .map(|l| watched.event(l, &timestamp))
                .collect();
            let _ = self.send(&watched, events, 0, emit);
            self.files.insert(dev_ino, watched);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::sources::file::watch::Globs;
    use crate::sources::LineFormat;

    /// A tailer over `dir/*.log` whose chunks are delivered as soon as they are read.
    struct Harness {
        dir: tempfile::TempDir,
        tailer: Tailer,
        checkpoints: Arc<Mutex<Checkpoints>>,
        globs: Globs,
    }

    impl Harness {
        fn new() -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let (checkpoints, _) = Checkpoints::load(&dir.path().join("cp.json"), "test");
            let checkpoints = Arc::new(Mutex::new(checkpoints));
            let settings = TailSettings {
                source: "test".into(),
                lines: SourceCommon {
                    name: Some("test".into()),
                    max_line_bytes: 1024,
                    format: LineFormat::Text,
                    message_field: "message".into(),
                    source_field: "source".into(),
                },
                read_from: ReadFrom::Beginning,
                rotate_wait: Duration::from_millis(0),
            };
            let globs = Globs {
                include: vec![
                    glob::Pattern::new(&dir.path().join("*.log").to_string_lossy()).unwrap(),
                ],
                exclude: vec![],
            };
            Harness {
                tailer: Tailer::new(settings, checkpoints.clone()),
                dir,
                checkpoints,
                globs,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// A glob pass and one read turn; the messages read, in order.
        fn turn(&mut self) -> Vec<String> {
            self.tailer.update(self.globs.expand());
            let mut messages = Vec::new();
            let mut emit = |chunk: Chunk, _bytes: u64| {
                messages.extend(chunk.events.iter().map(|e| e.message.clone()));
                chunk.ack.delivered();
                Ok(())
            };
            self.tailer.read_all(&mut emit, &|| false).unwrap();
            messages
        }
    }

    fn append(path: &Path, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for line in lines {
            writeln!(f, "{line}").unwrap();
        }
    }

    #[test]
    fn a_renamed_file_is_read_to_its_end_and_the_new_one_from_its_start() {
        let mut h = Harness::new();
        append(&h.path("app.log"), &["one", "two"]);
        assert_eq!(h.turn(), ["one", "two"]);
        append(&h.path("app.log"), &["three"]);
        std::fs::rename(h.path("app.log"), h.path("app.old")).unwrap();
        append(&h.path("app.log"), &["new one"]);
        let mut read = h.turn();
        read.sort();
        assert_eq!(read, ["new one", "three"]);
        assert_eq!(h.tailer.take_stats().rotations, 1);
        assert!(h.turn().is_empty(), "nothing is read twice");
        assert_eq!(h.tailer.open_files(), 1, "the renamed file was closed");
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let mut h = Harness::new();
        append(&h.path("app.log"), &["first line", "second line"]);
        assert_eq!(h.turn(), ["first line", "second line"]);
        std::fs::write(h.path("app.log"), b"").unwrap();
        append(&h.path("app.log"), &["after"]);
        assert_eq!(h.turn(), ["after"]);
        assert_eq!(h.tailer.take_stats().truncations, 1);
    }

    #[test]
    fn a_second_file_with_the_same_first_line_waits_as_a_copy() {
        let mut h = Harness::new();
        append(&h.path("a.log"), &["same header", "a body"]);
        assert_eq!(h.turn(), ["same header", "a body"]);
        append(&h.path("b.log"), &["same header", "b body"]);
        assert!(h.turn().is_empty(), "b.log looks like a copy of a.log");
        assert!(!h.tailer.all_at_eof(), "the copy waits");
    }

    #[test]
    fn the_checkpoint_holds_what_was_delivered() {
        let mut h = Harness::new();
        append(&h.path("app.log"), &["one", "two"]);
        h.turn();
        let checkpoints = h.checkpoints.lock().unwrap();
        let identity = checkpoints.by_key.values().next().unwrap();
        assert_eq!(identity.read, 8);
        assert_eq!(identity.path, h.path("app.log").to_string_lossy());
    }
}
