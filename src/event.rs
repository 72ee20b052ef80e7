//! The plain data that crosses every boundary: an `Event` is one line as a source read it, a
//! `Verdict` is what a tier decided about it, and a `Record` is what a sink writes. None of them
//! carries behaviour; delivery tracking travels beside them (see `ack.rs`), never inside.

use std::sync::Arc;

use serde_json::{Map, Value};

/// Where a line came from, precise enough to find it again (and to resume after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Byte offset of the line's first byte in the file.
    File { path: Arc<str>, offset: u64 },
    /// 1-based line number on standard input.
    Stdin { line: u64 },
    /// 1-based row of a `classify` input or a `POST /classify` body.
    Row { row: u64 },
    /// A Kafka message; `key` is kept for a Kafka sink with `key = "original"` (not written
    /// into the record).
    Kafka {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        key: Option<Arc<[u8]>>,
    },
}

/// One line as read, before any tier has looked at it.
#[derive(Debug, Clone)]
pub struct Event {
    /// RFC 3339 ingest time; shared by the lines of one read.
    pub timestamp: Arc<str>,
    /// The name routing matches on (`source,log_message` in the seed's CSV).
    pub source: Arc<str>,
    pub message: Text,
    pub origin: Origin,
    /// Other fields of a JSON input line, kept and passed through.
    pub fields: Option<Box<Map<String, Value>>>,
    /// Fields its source adds to every record (`fields` in `[[sources]]`); shared, not copied.
    pub extra: Option<Arc<Map<String, Value>>>,
    /// The line was longer than `max_line_bytes` and was cut there.
    pub truncated: bool,
    /// The line was not valid UTF-8; invalid bytes were replaced with U+FFFD.
    pub invalid_utf8: bool,
}

impl Event {
    /// A line with nothing but its text and where it came from: no passed-through fields, not
    /// cut, valid UTF-8. Sources that know more set the rest themselves.
    pub fn plain(
        timestamp: Arc<str>,
        source: &str,
        message: impl Into<Text>,
        origin: Origin,
    ) -> Event {
        Event {
            timestamp,
            source: Arc::from(source),
            message: message.into(),
            origin,
            fields: None,
            extra: None,
            truncated: false,
            invalid_utf8: false,
        }
    }
}

/// A line's text: a range of the buffer its source read it into, shared by the lines of that
/// read (one allocation per read, not one per line, and freed at once), or a string of its own.
/// Reads as a `&str`.
#[derive(Clone)]
pub struct Text {
    buf: Arc<str>,
    start: usize,
    end: usize,
}

impl Text {
    /// `buf[range]`; the range lies on character boundaries.
    pub fn shared(buf: &Arc<str>, range: std::ops::Range<usize>) -> Text {
        debug_assert!(buf.is_char_boundary(range.start) && buf.is_char_boundary(range.end));
        Text {
            buf: buf.clone(),
            start: range.start,
            end: range.end,
        }
    }

    /// The same text in a buffer of its own, so that holding it does not hold the rest of its
    /// read (a line that waits long, e.g. for the LLM).
    pub fn detach(&mut self) {
        if self.end - self.start < self.buf.len() {
            *self = Text::from(&**self);
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.buf[self.start..self.end]
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        let end = s.len();
        Text {
            buf: Arc::from(s),
            start: 0,
            end,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text {
            buf: Arc::from(s),
            start: 0,
            end: s.len(),
        }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&**self, f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        &**self == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        **self == **other
    }
}

/// Which tier decided a line's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierName {
    Route,
    Regex,
    Cache,
    Model,
    Llm,
    Fallback,
    None,
}

impl TierName {
    pub fn as_str(self) -> &'static str {
        match self {
            TierName::Route => "route",
            TierName::Regex => "regex",
            TierName::Cache => "cache",
            TierName::Model => "model",
            TierName::Llm => "llm",
            TierName::Fallback => "fallback",
            TierName::None => "none",
        }
    }
}

/// The label `Unclassified`: what a line gets when no tier can say better.
pub const UNCLASSIFIED: &str = "Unclassified";

/// What a tier decided about one line.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub label: Arc<str>,
    pub tier: TierName,
    /// Probability of the label (model tier).
    pub confidence: Option<f32>,
    /// Name of the rule that matched (regex tier).
    pub rule: Option<Arc<str>>,
    /// Why a line got a fallback label (`llm_disabled`, `low_confidence`, ...).
    pub reason: Option<&'static str>,
}

impl Verdict {
    pub fn fallback(tier: TierName, reason: Option<&'static str>) -> Verdict {
        Verdict {
            label: Arc::from(UNCLASSIFIED),
            tier,
            confidence: None,
            rule: None,
            reason,
        }
    }
}

/// A labelled line, as every sink writes it: one JSON object.
#[derive(Debug, Clone)]
pub struct Record {
    pub event: Event,
    pub verdict: Verdict,
}

impl Record {
    /// Appends the record as one JSON object (no newline). This is the one encoder of the
    /// output format: sinks, `classify` and `POST /classify` all use it. Written by hand
    /// because it is the agent's hottest path (serde_json's byte-at-a-time escaping was its
    /// largest cost).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let e = &self.event;
        let v = &self.verdict;
        out.push(b'{');
        // The line's own fields, then its source's (which win), then ours (which win over both).
        let from_source = |key: &str| e.extra.as_ref().is_some_and(|x| x.contains_key(key));
        if let Some(fields) = &e.fields {
            passed_through(out, fields, from_source);
        }
        if let Some(extra) = &e.extra {
            passed_through(out, extra, |_| false);
        }
        field(out, b"\"timestamp\":", &e.timestamp);
        field(out, b"\"source\":", &e.source);
        field(out, b"\"message\":", &e.message);
        field(out, b"\"label\":", &v.label);
        field(out, b"\"tier\":", v.tier.as_str());
        if let Some(confidence) = v.confidence {
            out.extend_from_slice(b"\"confidence\":");
            serde_json::to_writer(&mut *out, &confidence).expect("floats serialise");
            out.push(b',');
        }
        if let Some(rule) = &v.rule {
            field(out, b"\"rule\":", rule);
        }
        if let Some(reason) = v.reason {
            field(out, b"\"reason\":", reason);
        }
        out.extend_from_slice(b"\"origin\":{");
        match &e.origin {
            Origin::File { path, offset } => {
                field(out, b"\"file\":", path);
                number(out, b"\"offset\":", *offset);
            }
            Origin::Stdin { line } => {
                out.extend_from_slice(b"\"stdin\":true,");
                number(out, b"\"line\":", *line);
            }
            Origin::Row { row } => number(out, b"\"row\":", *row),
            Origin::Kafka {
                topic,
                partition,
                offset,
                ..
            } => {
                field(out, b"\"topic\":", topic);
                number(
                    out,
                    b"\"partition\":",
                    u64::try_from(*partition).unwrap_or(0),
                );
                out.push(b',');
                number(out, b"\"offset\":", u64::try_from(*offset).unwrap_or(0));
            }
        }
        out.push(b'}');
        if e.truncated {
            out.extend_from_slice(b",\"truncated\":true");
        }
        if e.invalid_utf8 {
            out.extend_from_slice(b",\"invalid_utf8\":true");
        }
        out.push(b'}');
    }
}

/// `"key":value,` for each field not among ours or `skip`.
fn passed_through(out: &mut Vec<u8>, fields: &Map<String, Value>, skip: impl Fn(&str) -> bool) {
    for (key, value) in fields.iter() {
        if !OWN_KEYS.contains(&key.as_str()) && !skip(key) {
            json_str(out, key);
            out.push(b':');
            serde_json::to_writer(&mut *out, value).expect("JSON values serialise");
            out.push(b',');
        }
    }
}

/// `"key":"value",` — `key` is given already quoted, with its colon.
fn field(out: &mut Vec<u8>, key: &[u8], value: &str) {
    out.extend_from_slice(key);
    json_str(out, value);
    out.push(b',');
}

/// `"key":n` (the last entry of an object: no comma).
fn number(out: &mut Vec<u8>, key: &[u8], n: u64) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string literal. Runs of bytes that need no escaping (almost all of a log line) are
/// found sixteen bytes at a time and copied whole.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        i = skip_clean(bytes, i);
        let stop = (i + 16).min(bytes.len());
        while i < stop {
            let b = bytes[i];
            if b < 0x20 || b == b'"' || b == b'\\' {
                out.extend_from_slice(&bytes[start..i]);
                escape(out, b);
                start = i + 1;
            }
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn escape(out: &mut Vec<u8>, b: u8) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        }
    }
}

/// Index of the first 16-byte block at or after `i` that may hold a byte needing an escape
/// (or of a tail shorter than a block), or the end if none does. SSE2, which every x86_64 has,
/// checks 16 bytes a step.
#[cfg(target_arch = "x86_64")]
fn skip_clean(bytes: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; loads are unaligned and within `bytes`.
    unsafe {
        let below = _mm_set1_epi8(0x1f);
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let dirty = |x: __m128i| {
            let control = _mm_cmpeq_epi8(_mm_max_epu8(x, below), below); // x <= 0x1f, unsigned
            let special = _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash));
            _mm_movemask_epi8(_mm_or_si128(control, special)) != 0
        };
        while i + 16 <= bytes.len() {
            if dirty(_mm_loadu_si128(bytes.as_ptr().add(i) as *const __m128i)) {
                return i;
            }
            i += 16;
        }
        // The tail of a string of a block or more: its last 16 bytes, in one step too.
        if i < bytes.len() && bytes.len() >= 16 {
            let last = bytes.len() - 16;
            if !dirty(_mm_loadu_si128(bytes.as_ptr().add(last) as *const __m128i)) {
                return bytes.len();
            }
        }
    }
    i
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_clean(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        if needs_escape(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
            break;
        }
        i += 8;
    }
    i
}

/// Whether any of eight bytes is a control character, `"` or `\`.
#[cfg(not(target_arch = "x86_64"))]
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space || has_zero(word ^ (ONES * b'"' as u64)) || has_zero(word ^ (ONES * b'\\' as u64))
}

/// Records as a JSON array.
pub fn json_array(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 256 + 2);
    out.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.write_json(&mut out);
    }
    out.push(b']');
    out
}

/// Keys a record writes itself; an input field of the same name gives way.
pub const OWN_KEYS: &[&str] = &[
    "timestamp",
    "source",
    "message",
    "label",
    "tier",
    "confidence",
    "rule",
    "reason",
    "origin",
    "truncated",
    "invalid_utf8",
];

/// Current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> Arc<str> {
    Arc::from(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string())
}

/// An input line split into its parts.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    pub message: Text,
    /// The line named its own source.
    pub source: Option<String>,
    /// The other fields of a JSON line.
    pub fields: Option<Box<Map<String, Value>>>,
}

/// Splits an input line into message, source override and kept fields.
///
/// A line that parses as a JSON object is read as one: `message_field` is the message and
/// `source_field` (when present and a string) overrides the source; the other fields are kept.
/// Anything else is plain text and is the message as it is.
pub fn decode_line(line: Text, json: bool, message_field: &str, source_field: &str) -> Decoded {
    if json && line.as_bytes().first() == Some(&b'{') {
        if let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&line) {
            if let Some(Value::String(message)) = fields.remove(message_field) {
                let source = match fields.remove(source_field) {
                    Some(Value::String(s)) => Some(s),
                    Some(other) => {
                        fields.insert(source_field.to_string(), other);
                        None
                    }
                    None => None,
                };
                let fields = (!fields.is_empty()).then(|| Box::new(fields));
                return Decoded {
                    message: Text::from(message),
                    source,
                    fields,
                };
            }
        }
    }
    Decoded {
        message: line,
        source: None,
        fields: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> Event {
        let origin = Origin::File {
            path: Arc::from("/var/log/app.log"),
            offset: 42,
        };
        Event::plain(
            Arc::from("2026-01-01T00:00:00.000Z"),
            "app",
            message.to_string(),
            origin,
        )
    }

    fn to_value(record: &Record) -> Value {
        let mut out = Vec::new();
        record.write_json(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    /// Every ASCII byte, alone and at every place of a 16-byte block (the SIMD scan's unit)
    /// and of the tail after it, comes out as serde_json writes it.
    #[test]
    fn every_ascii_byte_anywhere_in_a_block_is_escaped_like_serde_json() {
        for byte in 0u8..=0x7f {
            let c = char::from(byte);
            for len in [1, 15, 16, 17, 31, 32, 40] {
                for at in 0..len {
                    let mut text: Vec<char> = vec!['a'; len];
                    text[at] = c;
                    let text: String = text.into_iter().collect();
                    let mut mine = Vec::new();
                    json_str(&mut mine, &text);
                    assert_eq!(
                        String::from_utf8(mine).unwrap(),
                        serde_json::to_string(&text).unwrap(),
                        "byte {byte:#04x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_shared_text_reads_as_its_range_and_detaches_into_a_buffer_of_its_own() {
        let read: Arc<str> = Arc::from("one\ntwo\nthree");
        let mut two = Text::shared(&read, 4..7);
        assert_eq!(two, "two");
        assert_eq!(Arc::strong_count(&read), 2);
        two.detach();
        assert_eq!(two, "two");
        assert_eq!(&*two.buf, "two");
        assert_eq!(
            Arc::strong_count(&read),
            1,
            "the read's buffer is no longer held"
        );
        let whole = Text::from("alone");
        let before = Arc::as_ptr(&whole.buf);
        let mut again = whole.clone();
        again.detach();
        assert_eq!(
            Arc::as_ptr(&again.buf),
            before,
            "a text of its own is not copied"
        );
    }

    #[test]
    fn strings_are_escaped_exactly_like_serde_json() {
        let cases = [
            "plain ascii line of some length",
            "quote \" and backslash \\ inside",
            "tab\tnewline\ncr\r bell\u{7} nul\u{0} unit\u{1f}",
            "ünïcödé — 日本語 \u{fffd}",
            "\"\"\"\"\"\"\"\"\"",
            "",
            "1234567\"",
            "12345678\\",
            "exactly sixteen!\"and then some more bytes past the second block\n",
            "ééééééééééééééééééééééééé\u{1}",
        ];
        for s in cases {
            let mut mine = Vec::new();
            json_str(&mut mine, s);
            let theirs: String = serde_json::from_slice(&mine).unwrap();
            assert_eq!(theirs, s, "round trip");
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn record_serialises_the_documented_fields() {
        let record = Record {
            event: event("Backup completed successfully."),
            verdict: Verdict {
                label: Arc::from("System Notification"),
                tier: TierName::Regex,
                confidence: None,
                rule: Some(Arc::from("backup_completed")),
                reason: None,
            },
        };
        let json = to_value(&record);
        assert_eq!(json["label"], "System Notification");
        assert_eq!(json["tier"], "regex");
        assert_eq!(json["rule"], "backup_completed");
        assert_eq!(json["origin"]["file"], "/var/log/app.log");
        assert_eq!(json["origin"]["offset"], 42);
        assert!(json.get("truncated").is_none());
        assert!(json.get("confidence").is_none());
    }

    #[test]
    fn json_lines_keep_their_fields_and_may_name_the_source() {
        let decoded = decode_line(
            r#"{"log_message":"disk full","source":"LegacyCRM","pod":"a-1"}"#.into(),
            true,
            "log_message",
            "source",
        );
        assert_eq!(decoded.message, "disk full");
        assert_eq!(decoded.source.as_deref(), Some("LegacyCRM"));
        assert_eq!(decoded.fields.unwrap()["pod"], "a-1");

        let mut e = event("x");
        e.fields = Some(Box::new(
            serde_json::from_str(r#"{"pod":"a-1","label":"spoof"}"#).unwrap(),
        ));
        let record = Record {
            event: e,
            verdict: Verdict::fallback(TierName::None, None),
        };
        let json = to_value(&record);
        assert_eq!(json["pod"], "a-1");
        assert_eq!(
            json["label"], UNCLASSIFIED,
            "our label wins over an input field"
        );
    }

    #[test]
    fn text_and_broken_json_stay_plain_text() {
        for line in [
            "plain words",
            "{not json",
            r#"{"other":"no message field"}"#,
        ] {
            let decoded = decode_line(line.into(), true, "message", "source");
            assert_eq!(decoded.message, line);
            assert!(decoded.source.is_none() && decoded.fields.is_none());
        }
    }
}
