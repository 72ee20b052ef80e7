//! Checkpoints: how far each file was *delivered* (every sink wrote it), not read, so a restart
//! neither skips a line nor re-reads more than was in flight. One JSON file per source
//! (`data_dir/<source>.checkpoints.json`), written atomically (temp file, fsync, rename).
//!
//! Each entry is one file identity (see `fingerprint`): its device and inode, the hash of the
//! bytes delivered from its start (up to 4 KiB), where it was (the path the glob matched and,
//! for a symlink, the file it led to), the delivered offset, and whether it was still being
//! followed — a file that was, and is not where it was at the next start, is looked for beside
//! its old place (it was rotated while logsieve was stopped).
//!
//! Version 1 files (a hash of the first line per entry) are read and written back as version 2.
//! A file that cannot be used — not JSON, or from a newer logsieve — is moved aside and
//! reported; reading then starts over as `read_from` says (a re-read, never a skip).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::{error, info};

use super::fingerprint::{DevIno, Head};
use crate::ack::Watermark;

/// Checkpoint entries of files not seen for this long are forgotten.
const FORGET_AFTER_SECS: u64 = 7 * 24 * 3600;
/// The version written.
const VERSION: u32 = 2;

/// Everything known about one file identity.
#[derive(Debug)]
pub struct Identity {
    pub dev_ino: Option<DevIno>,
    pub head: Head,
    /// The path the glob matched.
    pub path: String,
    /// The file it led to, when that differs (a symlink's target).
    pub real_path: Option<PathBuf>,
    pub watermark: Watermark<u64>,
    /// Offset just past the last complete line read (equal to the delivered one when loaded).
    pub read: u64,
    /// An open file reads this identity now.
    pub live: bool,
    /// Not read to its end and let go: wherever it is now, it must be found and finished.
    pub following: bool,
    /// The file's modification time when last read or checked (Unix nanoseconds).
    pub mtime: i128,
    /// The file's size when last read or checked.
    pub size: u64,
    /// Unix seconds when this identity was last read or loaded.
    pub seen: u64,
}

impl Identity {
    /// A file starting to be read at `offset`.
    pub fn at(offset: u64, path: &str, dev_ino: DevIno, head: Vec<u8>) -> Identity {
        Identity {
            dev_ino: Some(dev_ino),
            head: Head::Bytes(head),
            path: path.to_string(),
            real_path: None,
            watermark: Watermark::new(offset),
            read: offset,
            live: true,
            following: true,
            mtime: 0,
            size: offset,
            seen: unix_now(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    real_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inode: Option<u64>,
    /// Version 2: the bytes delivered from the file's start (up to 4 KiB), and their hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head_hash: Option<String>,
    /// Version 1: `xxh3:<hash of the first line>` or `ino:<dev>:<inode>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    offset: u64,
    /// Version 2: still being followed when written.
    #[serde(default)]
    following: bool,
    #[serde(default)]
    mtime: i128,
    #[serde(default)]
    size: u64,
    seen: u64,
}

impl Entry {
    fn into_identity(self, version: u32) -> Option<Identity> {
        let dev_ino = self.dev.zip(self.inode);
        let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("xxh3:"), 16).ok();
        let head = match (&self.head_hash, &self.fingerprint) {
            (Some(hash), _) => Head::Hash {
                len: self.head_len.unwrap_or(0),
                hash: hex(hash)?,
            },
            (None, Some(f)) if f.starts_with("xxh3:") => Head::FirstLine(hex(f)?),
            // A version-1 file known only by its inode had no complete line: nothing of it
            // was delivered, so there is nothing to resume.
            _ => return None,
        };
        Some(Identity {
            dev_ino,
            head,
            path: self.path,
            real_path: self.real_path.map(PathBuf::from),
            watermark: Watermark::new(self.offset),
            read: self.offset,
            live: false,
            // Version 1 did not say; a file it knew may have been mid-read.
            following: self.following || version == 1,
            mtime: self.mtime,
            size: self.size.max(self.offset),
            seen: self.seen,
        })
    }
}

/// Delivered positions per identity, shared by the reader thread and the final write.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    pub by_id: HashMap<u64, Identity>,
    next_id: u64,
}

impl Checkpoints {
    /// Reads the checkpoint file of `source`. The second value says a problem was logged (the
    /// file was unreadable, not valid, or from a newer version, and was moved aside).
    pub fn load(path: &Path, source: &str) -> (Checkpoints, bool) {
        let mut checkpoints = Checkpoints {
            path: path.to_path_buf(),
            by_id: HashMap::new(),
            next_id: 0,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (checkpoints, false),
            Err(e) => {
                error!(
                    source,
                    "cannot read checkpoint file {}: {e}; starting without it (read_from applies: files are read again)",
                    path.display()
                );
                return (checkpoints, true);
            }
        };
        let problem = match serde_json::from_slice::<CheckpointFile>(&bytes) {
            Ok(file) if file.version <= VERSION => {
                let total = file.files.len();
                for entry in file.files {
                    if let Some(identity) = entry.into_identity(file.version) {
                        checkpoints.insert(identity);
                    }
                }
                info!(source, file = %path.display(), files = total, version = file.version, "checkpoints loaded");
                return (checkpoints, false);
            }
            Ok(file) => format!(
                "was written by a newer logsieve (version {}; this one reads up to {VERSION})",
                file.version
            ),
            Err(e) => format!("is not valid ({e})"),
        };
        let aside = path.with_extension(format!("json.corrupt-{}", unix_now()));
        let moved = std::fs::rename(path, &aside);
        error!(
            source,
            "checkpoint file {} {problem}; {} and started without checkpoints: files are read again as read_from says (to keep the old positions instead, stop logsieve and put a valid file back)",
            path.display(),
            match moved {
                Ok(()) => format!("moved it to {}", aside.display()),
                Err(e) => format!("could not move it aside ({e})"),
            }
        );
        (checkpoints, true)
    }

    /// Adds an identity; returns its id.
    pub fn insert(&mut self, identity: Identity) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, identity);
        id
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Identity> {
        self.by_id.get_mut(&id)
    }

    /// Writes every identity's delivered position (temp file, fsync, rename), forgetting those
    /// not seen for a week.
    pub fn write(&mut self) -> std::io::Result<()> {
        let now = unix_now();
        self.by_id.retain(|_, i| {
            i.live || i.watermark.in_flight() > 0 || now.saturating_sub(i.seen) < FORGET_AFTER_SECS
        });
        let mut files: Vec<Entry> = self
            .by_id
            .values_mut()
            .filter_map(|i| {
                let offset = i.watermark.advance();
                let (head_len, head_hash, fingerprint) = match (&i.head, i.head.at(offset)) {
                    (_, Some((len, hash))) => (Some(len), Some(format!("xxh3:{hash:016x}")), None),
                    (Head::FirstLine(hash), None) => {
                        (None, None, Some(format!("xxh3:{hash:016x}")))
                    }
                    // Nothing provable to write (cannot happen for a file read past `offset`).
                    (_, None) => return None,
                };
                Some(Entry {
                    path: i.path.clone(),
                    real_path: i.real_path.as_ref().map(|p| p.display().to_string()),
                    dev: i.dev_ino.map(|d| d.0),
                    inode: i.dev_ino.map(|d| d.1),
                    head_len,
                    head_hash,
                    fingerprint,
                    offset,
                    following: i.following,
                    mtime: i.mtime,
                    size: i.size,
                    seen: i.seen,
                })
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.inode.cmp(&b.inode)));
        let body = serde_json::to_vec_pretty(&CheckpointFile {
            version: VERSION,
            files,
        })
        .expect("serialisable");
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
        self.by_id.values().map(|i| i.watermark.in_flight()).sum()
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
        assert!(checkpoints.by_id.is_empty());
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
    fn a_checkpoint_file_from_a_newer_version_is_moved_aside_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        std::fs::write(&path, br#"{"version":3,"files":[]}"#).unwrap();
        let (checkpoints, problem) = Checkpoints::load(&path, "x");
        assert!(problem && checkpoints.by_id.is_empty() && !path.exists());
    }

    #[test]
    fn a_version_1_file_is_read_by_its_first_line_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        std::fs::write(
            &path,
            br#"{"version":1,"files":[
                {"fingerprint":"xxh3:00000000000000ff","path":"/var/log/a.log","offset":120,"seen":1},
                {"fingerprint":"ino:1:2","path":"/var/log/b.log","offset":0,"seen":1}]}"#,
        )
        .unwrap();
        let (checkpoints, problem) = Checkpoints::load(&path, "x");
        assert!(!problem);
        assert_eq!(
            checkpoints.by_id.len(),
            1,
            "the inode-only entry had nothing delivered"
        );
        let identity = checkpoints.by_id.values().next().unwrap();
        assert_eq!(identity.head, Head::FirstLine(0xff));
        assert_eq!(identity.read, 120);
        assert!(identity.following);
    }

    #[test]
    fn only_delivered_positions_are_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.checkpoints.json");
        let (mut checkpoints, _) = Checkpoints::load(&path, "x");
        let head = b"0123456789".repeat(30);
        let mut identity = Identity::at(0, "/var/log/a.log", (1, 2), head.clone());
        let (delivered, r1) = track();
        let (_in_flight, r2) = track();
        identity.watermark.push(100, r1);
        identity.watermark.push(200, r2);
        checkpoints.insert(identity);
        delivered.delivered();
        checkpoints.write().unwrap();
        let (again, problem) = Checkpoints::load(&path, "x");
        assert!(!problem);
        let identity = again.by_id.values().next().unwrap();
        assert_eq!(
            identity.read, 100,
            "the chunk still in flight is not written"
        );
        assert_eq!(identity.path, "/var/log/a.log");
        assert_eq!(identity.dev_ino, Some((1, 2)));
        assert!(!identity.live && identity.following);
        assert_eq!(
            identity.head.agree(&head),
            super::super::fingerprint::Agreement::Same,
            "the delivered 100 bytes are what it holds"
        );
    }
}
