//! File identity. A file is its device + inode *and* its first bytes: the inode says which
//! file a path leads to now (rotation renames paths, a symlink is repointed), the bytes say
//! whether it still holds the content we read (an inode is reused by a new file; copytruncate
//! empties a file and writes it again; a rotated copy holds the original's content under
//! another inode).
//!
//! Content is compared on up to [`HEAD_BYTES`] of a file's start. A file seen again is only
//! taken for one we read before when it holds the very bytes we delivered from it (all of them
//! up to 4 KiB): two files that merely share a first line, a header or a banner are two files.

use std::os::unix::fs::FileExt;

/// How much of a file's start identifies its content.
pub const HEAD_BYTES: usize = 4096;

/// A file's device and inode: which file an open handle or a path is, right now.
pub type DevIno = (u64, u64);

/// What is known of a file's first bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// The first bytes as read (up to [`HEAD_BYTES`]): any prefix of them can be compared.
    Bytes(Vec<u8>),
    /// From a checkpoint: the hash of the first `len` bytes (those delivered, up to
    /// [`HEAD_BYTES`]).
    Hash { len: u64, hash: u64 },
    /// From a version-1 checkpoint: the hash of the first line (up to 1 KiB).
    FirstLine(u64),
}

/// How a file's first bytes compare with a known head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// They agree, over at least what the head knows.
    Same,
    /// They agree as far as the file goes, but it is shorter than what the head knows (or one
    /// of them is empty): it may be the same content, still being written.
    Prefix,
    /// They differ: another content.
    Different,
}

impl Head {
    /// Compares a file's first bytes (`file_head`: up to [`HEAD_BYTES`] of it) with this head.
    pub fn agree(&self, file_head: &[u8]) -> Agreement {
        match self {
            Head::Bytes(known) => {
                let n = known.len().min(file_head.len());
                if known[..n] != file_head[..n] {
                    Agreement::Different
                } else if n == 0 || file_head.len() < known.len() {
                    Agreement::Prefix
                } else {
                    Agreement::Same
                }
            }
            Head::Hash { len, hash } => {
                let len = *len as usize;
                if len == 0 || file_head.len() < len {
                    Agreement::Prefix
                } else if hash_of(&file_head[..len]) == *hash {
                    Agreement::Same
                } else {
                    Agreement::Different
                }
            }
            Head::FirstLine(hash) => match first_line(file_head) {
                None => Agreement::Prefix,
                Some(line) if hash_of(line) == *hash => Agreement::Same,
                Some(_) => Agreement::Different,
            },
        }
    }

    /// Whether a [`Agreement::Same`] with this head proves a file holds every byte up to
    /// `offset` (as far as [`HEAD_BYTES`]) that was read from the file this head is of, so
    /// reading it on from `offset` skips nothing new. A version-1 head never proves it.
    pub fn proves(&self, offset: u64) -> bool {
        let needed = offset.min(HEAD_BYTES as u64);
        match self {
            Head::Bytes(known) => known.len() as u64 >= needed,
            Head::Hash { len, .. } => *len >= needed,
            Head::FirstLine(_) => false,
        }
    }

    /// The checkpoint form: the hash of the first `min(offset, HEAD_BYTES)` bytes, when known.
    pub fn at(&self, offset: u64) -> Option<(u64, u64)> {
        let len = offset.min(HEAD_BYTES as u64);
        match self {
            Head::Bytes(known) if known.len() as u64 >= len => {
                Some((len, hash_of(&known[..len as usize])))
            }
            Head::Hash { len: l, hash } if *l == len => Some((*l, *hash)),
            _ => None,
        }
    }

    /// How many bytes of the file's start this head holds (0 when only a hash is known).
    pub fn known_bytes(&self) -> usize {
        match self {
            Head::Bytes(known) => known.len(),
            _ => 0,
        }
    }
}

/// The first `min(size, HEAD_BYTES)` bytes of a file.
pub fn read_head(file: &std::fs::File, size: u64) -> std::io::Result<Vec<u8>> {
    let want = (size as usize).min(HEAD_BYTES);
    let mut head = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

pub fn hash_of(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The first line with its newline (up to 1 KiB without one), as version 1 fingerprinted it.
fn first_line(head: &[u8]) -> Option<&[u8]> {
    let head = &head[..head.len().min(1024)];
    match memchr::memchr(b'\n', head) {
        Some(nl) => Some(&head[..=nl]),
        None if head.len() == 1024 => Some(head),
        None => None,
    }
}

/// The compression a file's first bytes announce, if any: such files are not text to read.
pub fn compression_of(head: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "gzip"),
        (b"BZh", "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (b"PK\x03\x04", "zip"),
    ];
    MAGIC
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_first_line_is_not_the_same_content() {
        let old = Head::Bytes(b"# header\nline 1 of the old file\nline 2\n".to_vec());
        assert_eq!(
            old.agree(b"# header\nline 1 of the new file\n"),
            Agreement::Different
        );
        assert_eq!(
            old.agree(b"# header\nline 1 of the old file\nline 2\nline 3\n"),
            Agreement::Same
        );
        assert_eq!(old.agree(b"# header\nli"), Agreement::Prefix);
        assert_eq!(old.agree(b""), Agreement::Prefix);
    }

    #[test]
    fn a_checkpointed_head_is_the_delivered_prefix() {
        let bytes = b"one\ntwo\nthree\n".to_vec();
        let head = Head::Bytes(bytes.clone());
        let (len, hash) = head.at(8).unwrap();
        assert_eq!(len, 8);
        let restored = Head::Hash { len, hash };
        assert_eq!(restored.agree(&bytes), Agreement::Same);
        assert_eq!(
            restored.agree(b"one\ntwo\nfour\n"),
            Agreement::Same,
            "past the delivered bytes"
        );
        assert_eq!(restored.agree(b"one\ntwX\n"), Agreement::Different);
        assert_eq!(restored.agree(b"one\n"), Agreement::Prefix);
        assert!(restored.proves(8) && !restored.proves(9));
        assert!(!Head::FirstLine(1).proves(1));
    }

    #[test]
    fn a_version_1_head_compares_the_first_line() {
        let head = Head::FirstLine(hash_of(b"first\n"));
        assert_eq!(head.agree(b"first\nsecond\n"), Agreement::Same);
        assert_eq!(head.agree(b"other\n"), Agreement::Different);
        assert_eq!(head.agree(b"firs"), Agreement::Prefix);
    }

    #[test]
    fn compressed_files_are_known_by_their_magic() {
        assert_eq!(compression_of(&[0x1f, 0x8b, 8, 0]), Some("gzip"));
        assert_eq!(compression_of(b"BZh91AY"), Some("bzip2"));
        assert_eq!(compression_of(b"2026-11-30 text"), None);
    }
}
