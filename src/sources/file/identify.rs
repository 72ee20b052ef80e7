//! Which identity a file is, and where reading it starts — the decisions that keep lines from
//! being skipped or read twice when files move, are copied, truncated, deleted, or replaced,
//! whether logsieve was watching or not. Plain functions over the checkpoints and what a file
//! looks like now (device + inode, size, first bytes), so they can be tested without files.
//!
//! A file seen anew is, in this order:
//! 1. a file read before, under the same inode: resumed where delivery stopped (from the start
//!    if it is now shorter: truncated), unless its first bytes changed — then the inode was
//!    reused by a new file, read from its start;
//! 2. a copy of a file being read now (logrotate's `copytruncate` makes one): it waits, and
//!    takes over the original's position once the original is truncated;
//! 3. a file read before under another inode (moved across file systems, or a copy whose
//!    original was truncated): resumed, but only if it holds every byte delivered from the
//!    original (up to 4 KiB) — a shared first line or header is not enough;
//! 4. a new file: read from its start (from its end at start-up with `read_from = "end"`).

use std::path::{Path, PathBuf};

use super::checkpoints::{unix_now, Checkpoints, Identity};
use super::fingerprint::{read_head, Agreement, DevIno, Head};
use crate::ack::Watermark;

/// A file as it looks now.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub dev_ino: DevIno,
    pub size: u64,
    /// Its first bytes (up to `HEAD_BYTES`).
    pub head: &'a [u8],
    pub path: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// It is (or may be) a copy of a file being read: look again later.
    Wait,
    /// Read identity `id` from `offset`.
    Start { id: u64, offset: u64 },
}

/// Decides what `file` is (see the module doc). `new_at` is where a new file starts;
/// `waited_long`: it has waited as a possible copy for long enough — take it as a file of its
/// own now. `told`: the source's name for logs, and the count of followed files found gone.
pub fn claim(
    checkpoints: &mut Checkpoints,
    file: Seen<'_>,
    new_at: u64,
    waited_long: bool,
    told: (&str, &mut u64),
) -> Claim {
    let (source, missing) = told;
    // 1. The same inode, read before.
    let same_inode = checkpoints
        .by_id
        .iter()
        .find(|(_, i)| !i.live && i.dev_ino == Some(file.dev_ino))
        .map(|(id, _)| *id);
    if let Some(id) = same_inode {
        let identity = &checkpoints.by_id[&id];
        match identity.head.agree(file.head) {
            Agreement::Different => {
                if identity.following && identity.size > identity.read {
                    *missing += 1;
                    tracing::warn!(source, file = %file.path, delivered = identity.read, size = identity.size, "the file followed as {} was replaced while not watched (truncated and written again, or deleted and its inode reused) before it was read to its end: its lines after the delivered offset could not be read; reading the new content from the start", identity.path);
                } else {
                    tracing::info!(source, file = %file.path, "new content in the inode of {} (it was read to its end); reading it from the start", identity.path);
                }
                let old = checkpoints.get_mut(id).expect("found");
                old.dev_ino = None;
                old.following = false;
            }
            Agreement::Same | Agreement::Prefix => {
                let offset = if file.size < identity.read {
                    tracing::warn!(source, file = %file.path, checkpoint = identity.read, size = file.size, "file is shorter than its checkpoint (truncated while not followed); reading it from the beginning");
                    0
                } else {
                    identity.read
                };
                return resume(checkpoints, id, file, offset);
            }
        }
    }
    // 2. A copy of a file being read?
    if !file.head.is_empty() && !waited_long {
        let copy = checkpoints.by_id.values().any(|i| {
            i.live && i.head.known_bytes() > 0 && i.head.agree(file.head) != Agreement::Different
        });
        if copy {
            return Claim::Wait;
        }
    }
    // 3. The content of a file read before under another inode.
    let taken_over = checkpoints
        .by_id
        .iter()
        .filter(|(_, i)| !i.live && i.dev_ino != Some(file.dev_ino))
        .filter(|(_, i)| {
            i.head.agree(file.head) == Agreement::Same
                && (i.head.proves(i.read) || matches!(i.head, Head::FirstLine(_)))
        })
        .max_by_key(|(_, i)| i.read)
        .map(|(id, i)| (*id, i.read));
    if let Some((id, offset)) = taken_over {
        let offset = if file.size < offset { 0 } else { offset };
        return resume(checkpoints, id, file, offset);
    }
    // A file that agrees with what was delivered from one no longer open, as far as it goes:
    // a copy still being written, most likely.
    if !file.head.is_empty() && !waited_long {
        let maybe = checkpoints.by_id.values().any(|i| {
            !i.live
                && i.read as usize > file.head.len()
                && i.head.agree(file.head) == Agreement::Prefix
                && i.head.known_bytes() > 0
        });
        if maybe {
            return Claim::Wait;
        }
    }
    // 4. New.
    let mut identity = Identity::at(new_at, file.path, file.dev_ino, file.head.to_vec());
    identity.real_path = real_path(file.path);
    Claim::Start {
        id: checkpoints.insert(identity),
        offset: new_at,
    }
}

/// Takes identity `id` for `file`, reading from `offset`.
fn resume(checkpoints: &mut Checkpoints, id: u64, file: Seen<'_>, offset: u64) -> Claim {
    let identity = checkpoints.get_mut(id).expect("claimed identity");
    // Reading on from where it stopped keeps the chunks still in flight (a file closed for
    // room and opened again): the checkpoint must not pass them before they are delivered.
    if identity.read != offset {
        identity.watermark = Watermark::new(offset);
    }
    identity.read = offset;
    identity.live = true;
    identity.following = true;
    identity.dev_ino = Some(file.dev_ino);
    identity.head = Head::Bytes(file.head.to_vec());
    identity.path = file.path.to_string();
    identity.real_path = real_path(file.path);
    identity.seen = unix_now();
    Claim::Start { id, offset }
}

/// The file a path leads to, when that is not the path itself (a symlink).
fn real_path(path: &str) -> Option<PathBuf> {
    std::fs::canonicalize(path)
        .ok()
        .filter(|real| real.as_path() != Path::new(path))
}

/// Where a followed file that is no longer at its place went: a file beside its old path (or
/// beside the file its symlink led to) with its inode and content, or — renamed across file
/// systems, or copied — with its content. The path and the open file, if found.
pub fn find_moved(identity: &Identity) -> Option<(PathBuf, std::fs::File)> {
    let mut folders: Vec<PathBuf> = Vec::new();
    for place in [
        identity.real_path.clone(),
        Some(PathBuf::from(&identity.path)),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(dir) = place.parent().filter(|d| !folders.iter().any(|f| f == d)) {
            folders.push(dir.to_path_buf());
        }
    }
    let mut by_content = None;
    for dir in folders {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || meta.len() < identity.read {
                continue;
            }
            use std::os::unix::fs::MetadataExt;
            let same_inode = identity.dev_ino == Some((meta.dev(), meta.ino()));
            if !same_inode && by_content.is_some() {
                continue;
            }
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(head) = read_head(&file, meta.len()) else {
                continue;
            };
            let agrees = identity.head.agree(&head) != Agreement::Different;
            if same_inode && agrees {
                return Some((path, file));
            }
            if !same_inode
                && identity.head.agree(&head) == Agreement::Same
                && identity.head.proves(identity.read)
            {
                by_content = Some((path, file));
            }
        }
    }
    by_content
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoints() -> Checkpoints {
        let dir = tempfile::tempdir().unwrap();
        Checkpoints::load(&dir.path().join("cp.json"), "test").0
    }

    /// An identity read up to `read`, no longer open.
    fn known(cps: &mut Checkpoints, dev_ino: DevIno, head: &[u8], read: u64) -> u64 {
        let mut identity = Identity::at(read, "/logs/app.log", dev_ino, head.to_vec());
        identity.live = false;
        cps.insert(identity)
    }

    fn seen<'a>(dev_ino: DevIno, head: &'a [u8]) -> Seen<'a> {
        Seen {
            dev_ino,
            size: head.len() as u64,
            head,
            path: "/logs/app.log",
        }
    }

    const OLD: &[u8] = b"2026-11-30 first line\n2026-11-30 second line\n";

    #[test]
    fn the_same_inode_and_content_resumes_where_delivery_stopped() {
        let mut cps = checkpoints();
        let id = known(&mut cps, (1, 10), OLD, 22);
        let file = [OLD, b"more\n"].concat();
        assert_eq!(
            claim(&mut cps, seen((1, 10), &file), 0, false, ("t", &mut 0)),
            Claim::Start { id, offset: 22 }
        );
    }

    #[test]
    fn a_reused_inode_with_other_content_is_a_new_file() {
        let mut cps = checkpoints();
        let old = known(&mut cps, (1, 10), OLD, 22);
        let claimed = claim(
            &mut cps,
            seen((1, 10), b"another file\n"),
            0,
            false,
            ("t", &mut 0),
        );
        let Claim::Start { id, offset: 0 } = claimed else {
            panic!("{claimed:?}")
        };
        assert_ne!(id, old);
        assert!(!cps.by_id[&old].following);
    }

    #[test]
    fn a_new_file_with_the_same_first_line_starts_at_its_beginning() {
        let mut cps = checkpoints();
        let old = known(&mut cps, (1, 10), OLD, OLD.len() as u64);
        let new = b"2026-11-30 first line\n2026-11-30 a different second line\n";
        let claimed = claim(&mut cps, seen((1, 11), new), 0, false, ("t", &mut 0));
        assert!(
            matches!(claimed, Claim::Start { id, offset: 0 } if id != old),
            "{claimed:?}"
        );
    }

    #[test]
    fn a_copy_of_an_open_file_waits_and_one_of_a_truncated_file_takes_over() {
        let mut cps = checkpoints();
        let original = cps.insert(Identity::at(22, "/logs/app.log", (1, 10), OLD.to_vec()));
        assert_eq!(
            claim(&mut cps, seen((1, 11), OLD), 0, false, ("t", &mut 0)),
            Claim::Wait,
            "the original is open: its copy waits"
        );
        cps.get_mut(original).unwrap().live = false; // truncated: its content lives on in the copy
        assert_eq!(
            claim(&mut cps, seen((1, 11), OLD), 0, false, ("t", &mut 0)),
            Claim::Start {
                id: original,
                offset: 22
            }
        );
    }

    #[test]
    fn a_copy_still_being_written_waits_until_it_holds_what_was_delivered() {
        let mut cps = checkpoints();
        known(&mut cps, (1, 10), OLD, OLD.len() as u64);
        assert_eq!(
            claim(&mut cps, seen((1, 11), &OLD[..10]), 0, false, ("t", &mut 0)),
            Claim::Wait
        );
        let claimed = claim(&mut cps, seen((1, 11), &OLD[..10]), 0, true, ("t", &mut 0));
        assert!(
            matches!(claimed, Claim::Start { offset: 0, .. }),
            "after waiting long enough it is a file of its own: {claimed:?}"
        );
    }
}
