//! Checkpoints: how far each file identity was *delivered* (every sink wrote it), not read, so
//! a restart neither skips a line nor re-reads more than was in flight. One JSON file per
//! source (`data_dir/<source>.checkpoints.json`), written atomically (temp file, fsync, rename).
//! A checkpoint file that cannot be read as one is moved aside, never silently overwritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::{error, info};

use crate::ack::Watermark;

/// Checkpoint entries of files not seen for this long are forgotten.
const FORGET_AFTER_SECS: u64 = 7 * 24 * 3600;

/// Everything known about one file identity (one fingerprint).
#[derive(Debug)]
pub struct Identity {
    pub watermark: Watermark<u64>,
    /// Offset just past the last complete line read (equal to `delivered` when loaded).
    pub read: u64,
    pub path: String,
    /// An open file currently reads this identity.
    pub live: bool,
    /// Unix seconds when this identity was last read or loaded.
    pub seen: u64,
}

impl Identity {
    /// A file starting to be read at `offset`.
    pub fn at(offset: u64, path: &str) -> Identity {
        Identity {
            watermark: Watermark::new(offset),
            read: offset,
            path: path.to_string(),
            live: true,
            seen: unix_now(),
        }
    }
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
pub struct Checkpoints {
    path: PathBuf,
    pub by_key: HashMap<String, Identity>,
}

impl Checkpoints {
    /// Reads the checkpoint file of `source`. The second value says a problem was logged (the
    /// file was unreadable or not valid, and was moved aside).
    pub fn load(path: &Path, source: &str) -> (Checkpoints, bool) {
        let mut by_key = HashMap::new();
        let mut problem = false;
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<CheckpointFile>(&bytes) {
                Ok(file) => {
                    for e in file.files {
                        let mut identity = Identity::at(e.offset, &e.path);
                        identity.live = false;
                        identity.seen = e.seen;
                        by_key.insert(e.fingerprint, identity);
                    }
                    info!(source, file = %path.display(), files = by_key.len(), "checkpoints loaded");
                }
                Err(e) => {
                    problem = true;
                    let aside = path.with_extension(format!("json.corrupt-{}", unix_now()));
                    let moved = std::fs::rename(path, &aside);
                    error!(
                        source,
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
                problem = true;
                error!(
                    source,
                    "cannot read checkpoint file {}: {e}; starting without it",
                    path.display()
                );
            }
        }
        let checkpoints = Checkpoints {
            path: path.to_path_buf(),
            by_key,
        };
        (checkpoints, problem)
    }

    /// Writes every identity's delivered position (temp file, fsync, rename), forgetting those
    /// not seen for a week.
    pub fn write(&mut self) -> std::io::Result<()> {
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
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(&file);
        std::io::Write::write_all(&mut w, &body)?;
        std::io::Write::flush(&mut w)?;
        drop(w);
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Chunks read but not yet known to be delivered, over every identity.
    pub fn in_flight(&self) -> usize {
        self.by_key.values().map(|i| i.watermark.in_flight()).sum()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::track;

    #[test]
    fn corrupt_checkpoint_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let (checkpoints, problem) = Checkpoints::load(&path, "x");
        assert!(problem);
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
    }

    #[test]
    fn only_delivered_positions_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        let (mut checkpoints, _) = Checkpoints::load(&path, "x");
        let mut identity = Identity::at(0, "/var/log/a.log");
        let (delivered, r1) = track();
        let (_in_flight, r2) = track();
        identity.watermark.push(100, r1);
        identity.watermark.push(200, r2);
        checkpoints.by_key.insert("xxh3:1".into(), identity);
        delivered.delivered();
        checkpoints.write().unwrap();
        let (again, problem) = Checkpoints::load(&path, "x");
        assert!(!problem);
        let identity = &again.by_key["xxh3:1"];
        assert_eq!(
            identity.read, 100,
            "the chunk still in flight is not written"
        );
        assert_eq!(identity.path, "/var/log/a.log");
        assert!(!identity.live);
    }
}
