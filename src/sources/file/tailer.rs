//! The tailer: follows a set of files across rotation (rename + create, copytruncate, a
//! symlink repointed), truncation and deletion, reads what they gain, frames it into lines and
//! hands each chunk on with an acknowledgement tracked against its file's identity (see
//! `identify`). It knows nothing of channels or metrics: it is given the files a glob pass
//! found and a function to hand chunks to, and it counts what happened in plain numbers
//! ([`Stats`]), so it can be driven and tested alone.
//!
//! What it promises: a file it followed is read to its end wherever it went — renamed out of
//! the globs, deleted while still written to (kept open until `rotate_wait` passes without
//! growth), renamed or repointed while logsieve was stopped (found again beside its old path
//! at the next start) — and when it cannot be found, that is said, loudly, once. Compressed
//! files a glob matches are skipped, and said so. It holds at most `max_open` files open: when
//! more match, idle files are closed and opened again when they grow.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::checkpoints::{unix_now, Checkpoints};
use super::fingerprint::{compression_of, read_head, Agreement, DevIno, Head, HEAD_BYTES};
use super::identify::{self, Claim, Seen};
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
    /// How long a renamed-away or deleted file is kept open after it last grew, and how long a
    /// possible copy waits before it is taken for a file of its own.
    pub rotate_wait: Duration,
    /// Most files held open at once.
    pub max_open: usize,
}

/// What happened to the followed files, counted; [`Tailer::take_stats`] hands it over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Files seen renamed away or deleted while followed.
    pub rotations: u64,
    /// Files seen truncated or rewritten.
    pub truncations: u64,
    /// Followed files found again under another name (moved while logsieve was stopped or
    /// not holding them open) and read to their end.
    pub recovered: u64,
    /// Followed files not found again: what was written to them after the checkpoint is lost.
    pub missing: u64,
    /// Compressed files the globs matched, skipped.
    pub compressed: u64,
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
    /// Its identity in `Checkpoints`.
    id: u64,
    /// It had bytes when claimed; an empty file is claimed again when it gets some.
    identified: bool,
    framer: Framer,
    decoder: LineDecoder,
    /// Its path no longer leads to it (renamed out of the globs, or deleted).
    orphaned: bool,
    last_growth: Instant,
    at_eof: bool,
    /// Bytes per line of its last turn (at least 16): a turn's events get room for the lines
    /// its unread bytes hold at that rate (and an eighth more) at once, rather than a vector
    /// grown, and copied, as they come.
    line_bytes: usize,
}

impl Watched {
    fn event(&self, line: Line, timestamp: &Arc<str>) -> Event {
        file_event(&self.decoder, &self.path_str, line, timestamp)
    }
}

/// The decoder of a file's lines: the source's name, else the file's (current) path.
fn line_decoder(settings: &TailSettings, path: &Arc<str>) -> LineDecoder {
    let name = settings
        .lines
        .name
        .as_deref()
        .map(Arc::from)
        .unwrap_or_else(|| path.clone());
    LineDecoder::new(name, &settings.lines)
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
    /// Files that are (or may be) copies of a followed file, since when.
    waiting: HashMap<DevIno, Instant>,
    /// Files not to read (compressed), told once.
    skipped: HashSet<DevIno>,
    /// Files waiting for a free descriptor, told once per wave.
    told_fd_wait: bool,
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
            waiting: HashMap::new(),
            skipped: HashSet::new(),
            told_fd_wait: false,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Checkpoints> {
        self.checkpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the files a glob pass found: notices renamed and vanished ones, opens new ones
    /// (and known ones that grew), and looks for followed files that left their place.
    pub fn update(&mut self, found: HashMap<DevIno, PathBuf>) {
        for (dev_ino, watched) in self.files.iter_mut() {
            match found.get(dev_ino) {
                Some(path) if *path != watched.path => {
                    info!(source = %self.settings.source, from = %watched.path.display(), to = %path.display(), "file renamed");
                    self.stats.rotations += 1;
                    watched.path = path.clone();
                    watched.path_str = Arc::from(path.to_string_lossy().as_ref());
                    if self.settings.lines.name.is_none() {
                        // Lines name the path they are read at now.
                        watched.decoder = line_decoder(&self.settings, &watched.path_str);
                    }
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
        self.waiting.retain(|k, _| found.contains_key(k));
        let mut new: Vec<(DevIno, PathBuf)> = found
            .iter()
            .filter(|(k, _)| !self.files.contains_key(k) && !self.skipped.contains(k))
            .filter(|(k, path)| self.has_news(**k, path))
            .map(|(k, p)| (*k, p.clone()))
            .collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        let mut waiting_for_fd = 0;
        for (dev_ino, path) in new {
            if !self.make_room() {
                waiting_for_fd += 1;
                continue;
            }
            self.open(dev_ino, path);
        }
        if waiting_for_fd > 0 && !self.told_fd_wait {
            warn!(source = %self.source(), files = waiting_for_fd, max_open = self.settings.max_open, "more files match than may be open at once; they are read as others go idle (raise LimitNOFILE / ulimit -n to hold more)");
        }
        self.told_fd_wait = waiting_for_fd > 0;
        self.find_moved(&found);
        self.started = true;
    }

    /// Whether a file not open now needs opening: unknown to us, or known and changed since.
    fn has_news(&self, dev_ino: DevIno, path: &std::path::Path) -> bool {
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        let checkpoints = self.lock();
        let known = checkpoints
            .by_id
            .values()
            .find(|i| !i.live && i.dev_ino == Some(dev_ino));
        match known {
            None => true,
            Some(i) => meta.len() != i.size || meta.len() != i.read || mtime_of(&meta) != i.mtime,
        }
    }

    /// Below `max_open`, or made so by closing the idle file that last grew longest ago (it
    /// is opened again when it grows). Whether a file may be opened.
    fn make_room(&mut self) -> bool {
        if self.files.len() < self.settings.max_open {
            return true;
        }
        let idle = self
            .files
            .values()
            .filter(|w| {
                w.at_eof
                    && !w.orphaned
                    && w.identified
                    && w.framer.complete() == w.framer.position()
            })
            .min_by_key(|w| w.last_growth)
            .map(|w| w.dev_ino);
        let Some(dev_ino) = idle else { return false };
        let watched = self.files.remove(&dev_ino).expect("idle file");
        let mtime = watched.file.metadata().map(|m| mtime_of(&m)).unwrap_or(0);
        if let Some(identity) = self.lock().get_mut(watched.id) {
            identity.live = false;
            identity.mtime = mtime;
            identity.size = identity.read;
        }
        true
    }

    /// Followed files whose inode no glob pass finds any more, and that are not open: renamed
    /// or repointed while logsieve was stopped (or not holding them open). Each is looked for
    /// beside its old place and read to its end if found; if not, that is said.
    fn find_moved(&mut self, found: &HashMap<DevIno, PathBuf>) {
        let lost: Vec<u64> = {
            let checkpoints = self.lock();
            let open: HashSet<DevIno> = self.files.keys().copied().collect();
            checkpoints
                .by_id
                .iter()
                .filter(|(_, i)| i.following && !i.live)
                .filter(|(_, i)| {
                    i.dev_ino
                        .is_none_or(|d| !found.contains_key(&d) && !open.contains(&d))
                })
                .map(|(id, _)| *id)
                .collect()
        };
        for id in lost {
            let located = {
                let checkpoints = self.lock();
                let Some(identity) = checkpoints.by_id.get(&id) else {
                    continue;
                };
                identify::find_moved(identity)
                    .map(|(path, file)| (path, file, identity.path.clone(), identity.read))
            };
            match located {
                Some((path, file, old, offset)) => self.finish_moved(id, path, file, &old, offset),
                None => {
                    let shared = self.checkpoints.clone();
                    let mut checkpoints = shared.lock().unwrap_or_else(|p| p.into_inner());
                    let Some(identity) = checkpoints.get_mut(id) else {
                        continue;
                    };
                    identity.following = false;
                    if identity.dev_ino.is_some() {
                        self.stats.missing += 1;
                        warn!(source = %self.settings.source, file = %identity.path, delivered = identity.read, "a followed file is gone from its place and was not found beside it (deleted, or compressed, while logsieve was stopped?): what was written to it after the delivered offset could not be read");
                    }
                }
            }
        }
    }

    /// Opens a followed file found under another name and reads it on from `offset`, to its
    /// end: it is followed like a rotated file (closed after `rotate_wait` without growth).
    fn finish_moved(
        &mut self,
        id: u64,
        path: PathBuf,
        file: std::fs::File,
        old: &str,
        offset: u64,
    ) {
        let Ok(meta) = file.metadata() else { return };
        let dev_ino = (meta.dev(), meta.ino());
        if self.files.contains_key(&dev_ino) {
            return;
        }
        if meta.len() <= offset {
            if let Some(identity) = self.lock().get_mut(id) {
                identity.following = false; // nothing unread
            }
            return;
        }
        let head = read_head(&file, meta.len()).unwrap_or_default();
        let path_str: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        {
            let mut checkpoints = self.lock();
            let Some(identity) = checkpoints.get_mut(id) else {
                return;
            };
            identity.live = true;
            identity.dev_ino = Some(dev_ino);
            identity.head = Head::Bytes(head);
            identity.path = path_str.to_string();
            identity.mtime = mtime_of(&meta);
            identity.size = meta.len();
            identity.seen = unix_now();
        }
        info!(source = %self.source(), file = %path_str, was = %old, offset, unread = meta.len() - offset, "a followed file moved while not watched (rotated while logsieve was stopped?): reading it to its end");
        self.stats.recovered += 1;
        let mut watched = self.watched(file, path, path_str, dev_ino, id, offset);
        watched.orphaned = true;
        self.files.insert(dev_ino, watched);
    }

    /// A file about to be followed from `offset`, as identity `id`.
    fn watched(
        &self,
        file: std::fs::File,
        path: PathBuf,
        path_str: Arc<str>,
        dev_ino: DevIno,
        id: u64,
        offset: u64,
    ) -> Watched {
        Watched {
            file,
            decoder: line_decoder(&self.settings, &path_str),
            path_str,
            path,
            dev_ino,
            id,
            identified: true,
            framer: Framer::new(self.settings.lines.max_line_bytes, offset),
            orphaned: false,
            last_growth: Instant::now(),
            at_eof: false,
            line_bytes: 64,
        }
    }

    /// Starts following a file not followed yet, unless it is compressed, or may be a copy of a
    /// file already followed (then it waits, and is looked at again on the next pass).
    fn open(&mut self, dev_ino: DevIno, path: PathBuf) {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                warn!(source = %self.source(), file = %path.display(), "cannot open file: {e}");
                return;
            }
        };
        let meta = file.metadata().ok();
        let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
        let head = read_head(&file, size).unwrap_or_default();
        let path_str: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        if let Some(kind) = compression_of(&head) {
            self.skipped.insert(dev_ino);
            self.stats.compressed += 1;
            warn!(source = %self.source(), file = %path_str, "skipping a {kind}-compressed file the globs match: logsieve reads plain text (exclude it, e.g. exclude = [\"*.gz\"])");
            return;
        }
        let waited_long = self
            .waiting
            .get(&dev_ino)
            .is_some_and(|since| since.elapsed() >= self.settings.rotate_wait);
        let new_at = if !self.started && self.settings.read_from == ReadFrom::End {
            size
        } else {
            0
        };
        let seen = Seen {
            dev_ino,
            size,
            head: &head,
            path: &path_str,
        };
        let checkpoints = self.checkpoints.clone();
        let claim = identify::claim(
            &mut checkpoints.lock().unwrap_or_else(|p| p.into_inner()),
            seen,
            new_at,
            waited_long,
            (&self.settings.source, &mut self.stats.missing),
        );
        let Claim::Start { id, offset } = claim else {
            if !self.waiting.contains_key(&dev_ino) {
                info!(source = %self.source(), file = %path_str, "same beginning as a file already followed (a rotated copy?); waiting");
                self.waiting.insert(dev_ino, Instant::now());
            }
            return;
        };
        if self.waiting.remove(&dev_ino).is_some() && waited_long {
            info!(source = %self.source(), file = %path_str, "waited {:?} as a possible copy; reading it as a file of its own", self.settings.rotate_wait);
        }
        if let Some(identity) = self.lock().get_mut(id) {
            identity.mtime = meta.as_ref().map(mtime_of).unwrap_or(0);
            identity.size = size;
        }
        info!(source = %self.source(), file = %path_str, offset, "following file");
        let mut watched = self.watched(file, path, path_str, dev_ino, id, offset);
        watched.identified = !head.is_empty();
        self.files.insert(dev_ino, watched);
    }

    /// A file opened empty now has bytes. If none of its lines went out yet, it is claimed
    /// again like a new file: it may be a copy being written (logrotate's copytruncate creates
    /// the copy empty, then fills it). Whether it may go on being read here.
    fn identify_late(&mut self, watched: &mut Watched, size: u64) -> Late {
        let head = read_head(&watched.file, size).unwrap_or_default();
        let shared = self.checkpoints.clone();
        let mut checkpoints = shared.lock().unwrap_or_else(|p| p.into_inner());
        let untouched = checkpoints
            .by_id
            .get(&watched.id)
            .is_some_and(|i| i.read == 0 && i.watermark.in_flight() == 0);
        if !untouched {
            if let Some(identity) = checkpoints.get_mut(watched.id) {
                identity.head = Head::Bytes(head);
            }
            watched.identified = true;
            return Late::Keep;
        }
        checkpoints.by_id.remove(&watched.id);
        let seen = Seen {
            dev_ino: watched.dev_ino,
            size,
            head: &head,
            path: &watched.path_str,
        };
        let told = (self.settings.source.as_str(), &mut self.stats.missing);
        match identify::claim(&mut checkpoints, seen, 0, false, told) {
            Claim::Wait => Late::Wait,
            Claim::Start { id, offset } => {
                watched.id = id;
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
        let unread = size.saturating_sub(watched.framer.position());
        let lines =
            unread.min((READS_PER_TURN * self.buf.len()) as u64) as usize / watched.line_bytes;
        let mut events = Vec::with_capacity(lines + lines / 8);
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
                match self.identify_late(&mut watched, size) {
                    Late::Keep => {}
                    Late::Moved => continue,
                    Late::Wait => {
                        info!(source = %self.source(), file = %watched.path.display(), "same beginning as a file already followed (a rotated copy?); waiting");
                        self.waiting.insert(dev_ino, Instant::now());
                        return self.send(&watched, events, bytes, emit).map(|()| moved);
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
            watched.line_bytes = (bytes as usize / events.len().max(1)).max(16);
            if events.len() < events.capacity() / 2 {
                events.shrink_to_fit(); // lines much longer than the last turn's
            }
            watched.last_growth = Instant::now();
            self.learn_head(&watched, size, meta.as_ref());
        }
        // A file renamed away or deleted is kept while it may still be written to.
        let gone = watched.orphaned
            && watched.at_eof
            && watched.last_growth.elapsed() >= self.settings.rotate_wait;
        if gone {
            let mut partial = Vec::new();
            watched.framer.flush(&mut |line| partial.push(line));
            events.extend(partial.into_iter().map(|l| watched.event(l, &timestamp)));
        }
        let sent = self.send(&watched, events, bytes, emit);
        if gone {
            info!(source = %self.source(), file = %watched.path.display(), "file read to the end and closed");
            if let Some(identity) = self.lock().get_mut(watched.id) {
                identity.live = false;
                identity.following = false;
            }
        } else {
            self.files.insert(dev_ino, watched);
        }
        sent.map(|()| moved)
    }

    /// Keeps the identity's first bytes (up to `HEAD_BYTES`) and modification time current.
    fn learn_head(&self, watched: &Watched, size: u64, meta: Option<&std::fs::Metadata>) {
        let mut checkpoints = self.lock();
        let Some(identity) = checkpoints.get_mut(watched.id) else {
            return;
        };
        if let Some(meta) = meta {
            identity.mtime = mtime_of(meta);
            identity.size = meta.len();
        }
        let known = identity.head.known_bytes();
        if known < HEAD_BYTES && size > known as u64 {
            if let Ok(head) = read_head(&watched.file, size) {
                identity.head = Head::Bytes(head);
            }
        }
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
        if let Some(identity) = self.lock().get_mut(watched.id) {
            identity.watermark.push(watched.framer.complete(), receipt);
            identity.read = watched.framer.complete();
            identity.seen = unix_now();
        }
        emit(Chunk { events, ack }, bytes)
    }

    /// The first bytes changed under us: the file was truncated and written again.
    fn rewritten(&self, watched: &Watched, size: u64) -> bool {
        if !watched.identified || size == watched.framer.position() {
            return false;
        }
        let checkpoints = self.lock();
        let Some(identity) = checkpoints.by_id.get(&watched.id) else {
            return false;
        };
        let known = identity.head.known_bytes() as u64;
        if known == 0 {
            return false;
        }
        match read_head(&watched.file, size.min(known)) {
            Ok(now) => identity.head.agree(&now) == Agreement::Different,
            Err(_) => false,
        }
    }

    /// Copytruncate: the old content's identity stays (a copy may take it over); the file starts
    /// again from offset 0 under a new identity.
    fn truncated(&mut self, watched: &mut Watched) {
        warn!(source = %self.source(), file = %watched.path.display(), at = watched.framer.position(), "file truncated; reading it again from the beginning");
        self.stats.truncations += 1;
        let mut checkpoints = self.lock();
        if let Some(identity) = checkpoints.get_mut(watched.id) {
            identity.live = false;
            identity.following = false;
            identity.dev_ino = None; // its content is no longer in this inode
        }
        // The same inode with new content: a new file, whose first bytes are learnt as read.
        let identity =
            super::checkpoints::Identity::at(0, &watched.path_str, watched.dev_ino, Vec::new());
        watched.id = checkpoints.insert(identity);
        watched.identified = true;
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

/// What late identification did to a file.
enum Late {
    /// Go on reading where it was.
    Keep,
    /// Its read position moved (it took over a truncated original's position).
    Moved,
    /// It may be a copy of a file being read; stop following it for now.
    Wait,
}

#[cfg(test)]
#[path = "tailer_tests.rs"]
mod tests;

fn mtime_of(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}
