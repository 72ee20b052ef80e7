//! Line framing shared by the byte-stream sources (files, stdin): splits bytes at `\n`, holds a
//! partial last line until its newline arrives, cuts lines longer than `max_line_bytes` (at a
//! character boundary) and skips the rest of them, decodes UTF-8 lossily, and keeps the byte
//! offsets that checkpoints are made of. The whole lines of one read share one buffer (see
//! [`Text`]) when they are valid UTF-8: one allocation and one copy per read, not per line.

use std::sync::Arc;

use crate::event::Text;

/// One complete line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// Offset of the line's first byte.
    pub start: u64,
    pub text: Text,
    pub truncated: bool,
    pub invalid_utf8: bool,
}

#[derive(Debug)]
pub struct Framer {
    max_line_bytes: usize,
    /// Bytes of the current, unfinished line (at most `max_line_bytes`).
    partial: Vec<u8>,
    partial_start: u64,
    /// The unfinished line was longer than the limit; its tail is being skipped.
    partial_truncated: bool,
    /// Offset of the next byte to be pushed.
    position: u64,
    /// Offset just past the last complete line.
    complete: u64,
}

impl Framer {
    pub fn new(max_line_bytes: usize, start: u64) -> Framer {
        Framer {
            max_line_bytes,
            partial: Vec::new(),
            partial_start: start,
            partial_truncated: false,
            position: start,
            complete: start,
        }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Offset just past the last complete line: where a restart resumes.
    pub fn complete(&self) -> u64 {
        self.complete
    }

    /// Feeds the next bytes; every line completed by them goes to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut impl FnMut(Line)) {
        let mut rest = data;
        // The lines that start and end in `data`: from the first newline on if a partial line
        // is waiting for it, to the last newline. Valid UTF-8 (the common case), they are
        // copied once into a buffer they share.
        let whole_from = if self.partial.is_empty() && !self.partial_truncated {
            Some(0)
        } else {
            memchr::memchr(b'\n', data).map(|nl| nl + 1)
        };
        let shared = match (whole_from, memchr::memrchr(b'\n', data)) {
            (Some(from), Some(last)) if from <= last => std::str::from_utf8(&data[from..=last])
                .ok()
                .map(|s| (from, Arc::<str>::from(s))),
            _ => None,
        };
        let mut offset = 0; // of `rest` in `data`
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..nl];
            let end = self.position + nl as u64 + 1;
            if self.partial.is_empty() && !self.partial_truncated {
                let start = self.position;
                let line = match &shared {
                    Some((from, buf)) if piece.len() <= self.max_line_bytes => {
                        let at = offset - from;
                        let len = piece.strip_suffix(b"\r").unwrap_or(piece).len();
                        Line {
                            start,
                            text: Text::shared(buf, at..at + len),
                            truncated: false,
                            invalid_utf8: false,
                        }
                    }
                    _ => self.finish(piece, start, false),
                };
                out(line);
            } else {
                self.append(piece);
                let line = std::mem::take(&mut self.partial);
                let (start, truncated) = (self.partial_start, self.partial_truncated);
                self.partial_truncated = false;
                out(self.finish(&line, start, truncated));
                self.partial = line;
                self.partial.clear();
            }
            self.position = end;
            self.complete = end;
            self.partial_start = end;
            rest = &rest[nl + 1..];
            offset += nl + 1;
        }
        if !rest.is_empty() {
            self.append(rest);
            self.position += rest.len() as u64;
        }
    }

    /// Emits the unfinished line as if its newline had arrived (the file is gone or done).
    pub fn flush(&mut self, out: &mut impl FnMut(Line)) {
        if self.partial.is_empty() && !self.partial_truncated {
            return;
        }
        let line = std::mem::take(&mut self.partial);
        let truncated = self.partial_truncated;
        out(self.finish(&line, self.partial_start, truncated));
        self.partial_truncated = false;
        self.complete = self.position;
        self.partial_start = self.position;
    }

    fn append(&mut self, piece: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.partial.len());
        if piece.len() > room {
            self.partial.extend_from_slice(&piece[..room]);
            self.partial_truncated = true;
        } else {
            self.partial.extend_from_slice(piece);
        }
    }

    fn finish(&self, bytes: &[u8], start: u64, truncated: bool) -> Line {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        decode(bytes, start, self.max_line_bytes, truncated)
    }
}

/// One line's bytes (without its newline) as a [`Line`]: cut at `max_line_bytes` (at a
/// character boundary) and decoded lossily. `truncated`: it was cut already. Also how a Kafka
/// message's payload becomes a line.
pub fn decode(bytes: &[u8], start: u64, max_line_bytes: usize, mut truncated: bool) -> Line {
    let mut bytes = bytes;
    if bytes.len() > max_line_bytes {
        bytes = &bytes[..max_line_bytes];
        truncated = true;
    }
    if truncated {
        bytes = cut_at_char_boundary(bytes);
    }
    let (text, invalid_utf8) = match std::str::from_utf8(bytes) {
        Ok(s) => (Text::from(s), false),
        Err(_) => (
            Text::from(String::from_utf8_lossy(bytes).into_owned()),
            true,
        ),
    };
    Line {
        start,
        text,
        truncated,
        invalid_utf8,
    }
}

/// Drops a UTF-8 sequence left incomplete by a cut, so the cut itself is not "invalid UTF-8".
fn cut_at_char_boundary(bytes: &[u8]) -> &[u8] {
    let mut end = bytes.len();
    let floor = end.saturating_sub(3);
    while end > floor && end > 0 && (bytes[end - 1] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
    }
    if end > 0 && bytes[end - 1] >= 0b1100_0000 {
        // a lead byte whose continuation was cut off
        let need = match bytes[end - 1] {
            b if b >= 0b1111_0000 => 4,
            b if b >= 0b1110_0000 => 3,
            _ => 2,
        };
        if bytes.len() - (end - 1) < need {
            return &bytes[..end - 1];
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(max: usize, pieces: &[&[u8]]) -> (Vec<Line>, Framer) {
        let mut framer = Framer::new(max, 0);
        let mut lines = Vec::new();
        for piece in pieces {
            framer.push(piece, &mut |l| lines.push(l));
        }
        (lines, framer)
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let (lines, framer) = frame(100, &[b"one\ntw", b"o\nthr"]);
        let texts: Vec<&str> = lines.iter().map(|l| &*l.text).collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(lines[1].start, 4);
        assert_eq!(framer.complete(), 8);
        assert_eq!(framer.position(), 11);
    }

    #[test]
    fn long_line_is_cut_flagged_and_the_next_line_is_intact() {
        let long = [b'x'; 50];
        let (lines, framer) = frame(10, &[&long[..30], &long[30..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "x".repeat(10));
        assert!(lines[0].truncated);
        assert_eq!(lines[1].text, "next");
        assert_eq!(lines[1].start, 51);
        assert!(!lines[1].truncated);
        assert_eq!(framer.complete(), 56);
    }

    #[test]
    fn cut_never_splits_a_character() {
        let line = "ééééé\n".as_bytes(); // 2 bytes each
        let (lines, _) = frame(5, &[line]);
        assert_eq!(lines[0].text, "éé");
        assert!(lines[0].truncated && !lines[0].invalid_utf8);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let (lines, _) = frame(100, &[b"ok \xff\xfe bytes\r\n"]);
        assert_eq!(lines[0].text, "ok \u{fffd}\u{fffd} bytes");
        assert!(lines[0].invalid_utf8);
    }

    /// Whatever the reads' sizes, every line comes out whole and at its offset, whether it was
    /// shared from its read's buffer (valid UTF-8), decoded on its own (a read with an invalid
    /// byte), cut (too long) or completed across reads.
    #[test]
    fn lines_are_the_same_whatever_the_reads() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        for i in 0..300 {
            let start = input.len() as u64;
            let text = match i % 7 {
                0 => format!("line {i} with a crlf"),
                1 => "x".repeat(40 + i),
                2 => String::new(),
                3 => format!("ünïcödé {i} — 日本語"),
                _ => format!("plain line number {i}"),
            };
            input.extend_from_slice(text.as_bytes());
            if i % 7 == 0 {
                input.push(b'\r');
            }
            if i == 150 {
                input.extend_from_slice(b" bad \xff");
            }
            input.push(b'\n');
            let (text, truncated, invalid) = match i {
                150 => (format!("{text} bad \u{fffd}"), false, true),
                _ if text.len() > 64 => (text[..64].to_string(), true, false),
                _ => (text, false, false),
            };
            want.push((start, text, truncated, invalid));
        }
        for read in [1, 3, 7, 64, 100, 1000, input.len()] {
            let pieces: Vec<&[u8]> = input.chunks(read).collect();
            let (lines, framer) = frame(64, &pieces);
            let got: Vec<_> = lines
                .iter()
                .map(|l| (l.start, l.text.to_string(), l.truncated, l.invalid_utf8))
                .collect();
            assert_eq!(got, want, "reads of {read} bytes");
            assert_eq!(framer.complete(), input.len() as u64);
        }
    }

    #[test]
    fn flush_emits_the_unfinished_line() {
        let (mut lines, mut framer) = frame(100, &[b"a\nlast"]);
        framer.flush(&mut |l| lines.push(l));
        assert_eq!(lines[1].text, "last");
        assert_eq!(framer.complete(), 6);
    }
}
