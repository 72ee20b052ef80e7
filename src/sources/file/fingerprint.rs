//! File identity. A file is known by a fingerprint of its content's head — xxh3 of its first
//! line, up to 1 KiB — not by its path: rotation renames paths, and a rotated copy has the same
//! first line as the file it copies. A file too short to have a first line yet is known by
//! device + inode until it has one.

use std::os::unix::fs::FileExt;

/// Bytes of the first line that make a fingerprint.
const FINGERPRINT_BYTES: usize = 1024;

/// A file's device and inode: which file an open handle or a path is, right now.
pub type DevIno = (u64, u64);

/// The key of a file known only by device + inode.
pub fn ino_key((dev, ino): DevIno) -> String {
    format!("ino:{dev}:{ino}")
}

/// Whether a key is a content fingerprint (not a device + inode stand-in).
pub fn is_fingerprint(key: &str) -> bool {
    key.starts_with("xxh3:")
}

/// xxh3 of the first line (up to 1 KiB); `None` while the file has no complete first line.
pub fn fingerprint_of(file: &std::fs::File) -> Option<String> {
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
        assert!(is_fingerprint(&a));
    }
}
