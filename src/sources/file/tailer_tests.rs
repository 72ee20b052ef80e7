//! The tailer alone, on real files in a temporary folder: each turn is a glob pass and a read
//! turn, and every chunk is delivered at once.

use std::io::Write;
use std::path::Path;

use super::*;
use crate::sources::file::watch::Globs;
use crate::sources::LineFormat;

struct Harness {
    dir: tempfile::TempDir,
    tailer: Tailer,
    checkpoints: Arc<Mutex<Checkpoints>>,
    globs: Globs,
    settings: TailSettings,
}

impl Harness {
    /// A tailer over `dir/*.log`.
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(tune: impl FnOnce(&mut TailSettings)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (checkpoints, _) = Checkpoints::load(&dir.path().join("cp.json"), "test");
        let checkpoints = Arc::new(Mutex::new(checkpoints));
        let mut settings = TailSettings {
            source: "test".into(),
            lines: SourceCommon {
                name: Some("test".into()),
                max_line_bytes: 1024,
                format: LineFormat::Text,
                message_field: "message".into(),
                source_field: "source".into(),
                fields: Default::default(),
            },
            read_from: ReadFrom::Beginning,
            rotate_wait: Duration::from_millis(0),
            max_open: 100,
        };
        tune(&mut settings);
        let globs = Globs {
            include: vec![glob::Pattern::new(&dir.path().join("*.log").to_string_lossy()).unwrap()],
            exclude: vec![],
        };
        Harness {
            tailer: Tailer::new(settings.clone(), checkpoints.clone()),
            dir,
            checkpoints,
            globs,
            settings,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A glob pass and one read turn; the messages read, in order.
    fn turn(&mut self) -> Vec<String> {
        let mut in_flight = Vec::new();
        let messages = self.turn_in_flight(&mut in_flight);
        in_flight.into_iter().for_each(crate::ack::Ack::delivered);
        messages
    }

    /// As [`Harness::turn`], but the chunks stay in flight: their acks are kept in `in_flight`.
    fn turn_in_flight(&mut self, in_flight: &mut Vec<crate::ack::Ack>) -> Vec<String> {
        self.tailer.update(self.globs.expand());
        let mut messages = Vec::new();
        let mut emit = |chunk: Chunk, _bytes: u64| {
            messages.extend(chunk.events.iter().map(|e| e.message.to_string()));
            in_flight.push(chunk.ack);
            Ok(())
        };
        self.tailer.read_all(&mut emit, &|| false).unwrap();
        messages
    }

    /// The offset the checkpoint file would hold for `name` now.
    fn checkpointed(&self, name: &str) -> u64 {
        let mut checkpoints = self.checkpoints.lock().unwrap();
        checkpoints.write().unwrap();
        let path = self.path(name).to_string_lossy().into_owned();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(checkpoints.path()).unwrap()).unwrap();
        written["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str())
            .and_then(|f| f["offset"].as_u64())
            .unwrap_or_else(|| panic!("{name} not in {written}"))
    }

    /// Turns until nothing more is read.
    fn drain(&mut self) -> Vec<String> {
        let mut all = Vec::new();
        loop {
            let read = self.turn();
            if read.is_empty() {
                return all;
            }
            all.extend(read);
        }
    }

    /// Stops (writing the checkpoints) and starts a new tailer on the same checkpoint file.
    fn restart(&mut self) {
        let path = self.checkpoints.lock().unwrap().path().to_path_buf();
        self.checkpoints.lock().unwrap().write().unwrap();
        let (checkpoints, problem) = Checkpoints::load(&path, "test");
        assert!(!problem);
        self.checkpoints = Arc::new(Mutex::new(checkpoints));
        self.tailer = Tailer::new(self.settings.clone(), self.checkpoints.clone());
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

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_renamed_file_is_read_to_its_end_and_the_new_one_from_its_start() {
    let mut h = Harness::new();
    append(&h.path("app.log"), &["one", "two"]);
    assert_eq!(h.turn(), ["one", "two"]);
    append(&h.path("app.log"), &["three"]);
    std::fs::rename(h.path("app.log"), h.path("app.old")).unwrap();
    append(&h.path("app.log"), &["new one"]);
    assert_eq!(sorted(h.drain()), ["new one", "three"]);
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
fn a_second_file_with_the_same_first_line_is_read_as_a_file_of_its_own() {
    let mut h = Harness::new();
    append(&h.path("a.log"), &["same header", "a body"]);
    assert_eq!(h.turn(), ["same header", "a body"]);
    append(&h.path("b.log"), &["same header", "b body"]);
    assert_eq!(h.drain(), ["same header", "b body"]);
}

#[test]
fn an_identical_copy_of_a_followed_file_waits_as_a_copy() {
    let mut h = Harness::new();
    append(&h.path("a.log"), &["same header", "same body"]);
    assert_eq!(h.turn(), ["same header", "same body"]);
    std::fs::copy(h.path("a.log"), h.path("b.log")).unwrap();
    assert!(h.drain().is_empty(), "b.log is a copy of a.log");
    assert!(!h.tailer.all_at_eof(), "the copy waits");
}

#[test]
fn a_deleted_file_still_written_to_is_read_until_it_stops_growing() {
    let mut h = Harness::with(|s| s.rotate_wait = Duration::from_secs(3600));
    let path = h.path("app.log");
    append(&path, &["one"]);
    assert_eq!(h.turn(), ["one"]);
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(h.turn().is_empty());
    writeln!(writer, "written after the deletion").unwrap();
    assert_eq!(h.turn(), ["written after the deletion"]);
    assert_eq!(h.tailer.open_files(), 1, "kept open while it may grow");
}

#[test]
fn compressed_files_the_glob_matches_are_skipped_and_counted() {
    let mut h = Harness::new();
    std::fs::write(h.path("app.1.log"), [0x1f, 0x8b, 8, 0, 1, 2, 3, b'\n']).unwrap();
    append(&h.path("app.log"), &["text"]);
    assert_eq!(h.drain(), ["text"]);
    assert_eq!(h.tailer.take_stats().compressed, 1);
}

#[test]
fn a_file_renamed_while_stopped_is_found_beside_its_old_path_and_finished() {
    let mut h = Harness::new();
    append(&h.path("app.log"), &["one", "two"]);
    assert_eq!(h.turn(), ["one", "two"]);
    h.restart();
    append(&h.path("app.log"), &["three, written before the rotation"]);
    std::fs::rename(h.path("app.log"), h.path("app.log.1")).unwrap();
    append(&h.path("app.log"), &["new file"]);
    assert_eq!(
        sorted(h.drain()),
        ["new file", "three, written before the rotation"]
    );
    assert_eq!(h.tailer.take_stats().recovered, 1);
}

#[test]
fn a_followed_file_deleted_while_stopped_is_reported_missing() {
    let mut h = Harness::new();
    append(&h.path("app.log"), &["one"]);
    assert_eq!(h.turn(), ["one"]);
    h.restart();
    std::fs::remove_file(h.path("app.log")).unwrap();
    assert!(h.drain().is_empty());
    assert_eq!(h.tailer.take_stats().missing, 1);
}

#[test]
fn no_more_than_max_open_files_are_held_and_every_line_is_read() {
    let mut h = Harness::with(|s| s.max_open = 3);
    for i in 0..10 {
        append(
            &h.path(&format!("f{i}.log")),
            &[&format!("line of file {i}")],
        );
    }
    let read = h.drain();
    assert_eq!(read.len(), 10, "{read:?}");
    assert!(h.tailer.open_files() <= 3);
    append(&h.path("f0.log"), &["f0 grew"]);
    assert_eq!(
        h.drain(),
        ["f0 grew"],
        "an idle file closed for room is read when it grows"
    );
}

#[test]
fn the_checkpoint_holds_what_was_delivered() {
    let mut h = Harness::new();
    append(&h.path("app.log"), &["one", "two"]);
    h.turn();
    let checkpoints = h.checkpoints.lock().unwrap();
    let identity = checkpoints.by_id.values().next().unwrap();
    assert_eq!(identity.read, 8);
    assert_eq!(identity.path, h.path("app.log").to_string_lossy());
}

#[test]
fn a_file_closed_for_room_and_reopened_keeps_its_undelivered_chunks_undelivered() {
    let mut h = Harness::with(|s| s.max_open = 1);
    append(&h.path("a.log"), &["a one", "a two"]);
    let mut in_flight = Vec::new();
    assert_eq!(h.turn_in_flight(&mut in_flight), ["a one", "a two"]);
    append(&h.path("b.log"), &["b one"]);
    assert_eq!(h.turn(), ["b one"], "a.log, idle, was closed to make room");
    append(&h.path("a.log"), &["a three"]);
    assert_eq!(h.drain(), ["a three"], "a.log, grown, is opened again");
    assert_eq!(
        h.checkpointed("a.log"),
        0,
        "a.log's first chunk is still in flight: nothing of it is delivered"
    );
    in_flight.into_iter().for_each(crate::ack::Ack::delivered);
    assert_eq!(h.checkpointed("a.log"), 20);
}

#[test]
fn without_a_source_name_lines_name_the_path_they_are_read_at() {
    let mut h = Harness::with(|s| s.lines.name = None);
    append(&h.path("app.log"), &["before"]);
    h.turn();
    std::fs::rename(h.path("app.log"), h.path("app.1.log")).unwrap();
    append(&h.path("app.1.log"), &["after"]);
    h.tailer.update(h.globs.expand());
    let mut sources = Vec::new();
    let mut emit = |chunk: Chunk, _bytes: u64| {
        sources.extend(chunk.events.iter().map(|e| e.source.to_string()));
        chunk.ack.delivered();
        Ok(())
    };
    h.tailer.read_all(&mut emit, &|| false).unwrap();
    assert_eq!(sources, [h.path("app.1.log").to_string_lossy()]);
}
