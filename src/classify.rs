//! Batch classification, the seed's mode: a CSV with `source,log_message` in, the same rows
//! with `target_label` and `tier` columns out; or plain / JSON lines in and records out.
//! Shared by `logsieve classify` and `POST /classify`, over the same tier chain as the agent.

use std::sync::Arc;

use crate::event::{decode_line, now_rfc3339, Event, Origin, Record, Text};
use crate::tiers::Tiers;

/// A parsed CSV upload: its header and rows as given, and where the two columns are.
pub struct CsvTable {
    headers: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
    source: usize,
    message: usize,
    /// An existing `target_label` column: overwritten, as the seed did, and kept as the truth.
    label: Option<usize>,
}

/// Reads a CSV with `source` and `log_message` columns. The error says what is wrong with it.
pub fn read_csv(bytes: &[u8]) -> Result<CsvTable, String> {
    if std::str::from_utf8(bytes).is_err() {
        return Err("the upload is not UTF-8 text, so not a CSV file".into());
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the CSV header: {e}"))?
        .clone();
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    let column = |name: &str| {
        names.iter().position(|h| h == name).ok_or_else(|| {
            format!(
                "the CSV has no `{name}` column (found: {}); the first line must name the columns `source,log_message`",
                names.join(", ")
            )
        })
    };
    let source = column("source")?;
    let message = column("log_message")?;
    let label = column("target_label").ok();
    let mut rows = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let mut row = row.map_err(|e| format!("row {}: {e}", i + 2))?;
        if row.len() < headers.len() {
            return Err(format!(
                "row {} has {} fields but the header has {}",
                i + 2,
                row.len(),
                headers.len()
            ));
        }
        if row.len() > headers.len() {
            // `src, "a, b"`: a space before the quote makes the quote literal, so a comma in
            // the message splits it; when the message is the last column, join it back.
            if message + 1 != headers.len() {
                return Err(format!(
                    "row {} has {} fields but the header has {}",
                    i + 2,
                    row.len(),
                    headers.len()
                ));
            }
            let joined = row.iter().skip(message).collect::<Vec<_>>().join(",");
            let mut fixed: csv::StringRecord = row.iter().take(message).collect();
            fixed.push_field(&joined);
            row = fixed;
        }
        rows.push(row);
    }
    Ok(CsvTable {
        headers,
        rows,
        source,
        message,
        label,
    })
}

/// A CSV value as the seed's `test.csv` writes it (` "text"`): trimmed, outer quotes removed.
pub fn clean_value(value: &str) -> &str {
    let v = value.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => v,
    }
}

impl CsvTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn events(&self) -> Vec<Event> {
        let timestamp = now_rfc3339();
        self.rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let source = clean_value(row.get(self.source).unwrap_or_default());
                let message = clean_value(row.get(self.message).unwrap_or_default());
                row_event(&timestamp, source, message.to_string(), i)
            })
            .collect()
    }

    /// The input's own `target_label` per row, when it has one (a labelled set).
    pub fn given_labels(&self) -> Option<Vec<&str>> {
        let column = self.label?;
        Some(
            self.rows
                .iter()
                .map(|r| clean_value(r.get(column).unwrap_or_default()))
                .collect(),
        )
    }

    /// The rows as given, with `target_label` (replacing the input's, if any) and `tier`.
    pub fn write(&self, records: &[Record]) -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header = self.headers.clone();
        if self.label.is_none() {
            header.push_field("target_label");
        }
        header.push_field("tier");
        writer.write_record(&header).expect("writing to memory");
        for (row, record) in self.rows.iter().zip(records) {
            let mut out = csv::StringRecord::new();
            for (i, field) in row.iter().enumerate() {
                out.push_field(if Some(i) == self.label {
                    &record.verdict.label
                } else {
                    field
                });
            }
            if self.label.is_none() {
                out.push_field(&record.verdict.label);
            }
            out.push_field(record.verdict.tier.as_str());
            writer.write_record(&out).expect("writing to memory");
        }
        writer.into_inner().expect("writing to memory")
    }
}

fn row_event(timestamp: &Arc<str>, source: &str, message: impl Into<Text>, index: usize) -> Event {
    let row = index as u64 + 1;
    Event::plain(timestamp.clone(), source, message, Origin::Row { row })
}

/// `{source, log_message}` pairs, as `POST /classify` takes them in JSON.
#[derive(serde::Deserialize)]
pub struct JsonRow {
    #[serde(default)]
    pub source: String,
    pub log_message: String,
}

pub fn json_events(rows: Vec<JsonRow>) -> Vec<Event> {
    let timestamp = now_rfc3339();
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| row_event(&timestamp, &r.source, r.log_message, i))
        .collect()
}

/// Plain or JSON lines (`message` or `log_message`, optional `source`) as events.
pub fn line_events(text: &str, default_source: &str) -> Vec<Event> {
    let timestamp = now_rfc3339();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let mut decoded = decode_line(Text::from(line), true, "message", "source");
            if decoded.fields.is_none() && decoded.source.is_none() && line.starts_with('{') {
                decoded = decode_line(Text::from(line), true, "log_message", "source");
            }
            let mut event = row_event(
                &timestamp,
                decoded.source.as_deref().unwrap_or(default_source),
                decoded.message,
                i,
            );
            event.fields = decoded.fields;
            event
        })
        .collect()
}

/// Labels events in batches of `max_lines`, keeping their order.
pub async fn label_all(tiers: &Tiers, mut events: Vec<Event>, max_lines: usize) -> Vec<Record> {
    let mut records = Vec::with_capacity(events.len());
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(max_lines.max(1)));
        records.extend(tiers.label(events).await);
        events = rest;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_test_csv_values_are_cleaned() {
        let table = read_csv(
            b"source,log_message\nModernCRM, \"IP 1.2.3.4 blocked, due to attack\"\nBillingSystem, \"User 12345 logged in.\"\n",
        )
        .unwrap();
        let events = table.events();
        assert_eq!(&*events[0].source, "ModernCRM");
        assert_eq!(events[0].message, "IP 1.2.3.4 blocked, due to attack");
        assert_eq!(events[1].message, "User 12345 logged in.");
    }

    #[test]
    fn missing_column_is_named() {
        let err = read_csv(b"source,message\na,b\n").err().unwrap();
        assert!(err.contains("no `log_message` column"), "{err}");
        assert!(err.contains("found: source, message"), "{err}");
    }

    #[test]
    fn binary_upload_is_not_a_csv() {
        let err = read_csv(b"\x89PNG\r\n\x1a\n\x00\xff").err().unwrap();
        assert!(err.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn lines_may_be_text_or_json_with_either_message_field() {
        let events = line_events(
            "plain text\n{\"log_message\":\"seed style\",\"source\":\"LegacyCRM\"}\n\n{\"message\":\"m\",\"pod\":\"p\"}\n",
            "stdin",
        );
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].message, "plain text");
        assert_eq!(&*events[1].source, "LegacyCRM");
        assert_eq!(events[1].message, "seed style");
        assert_eq!(events[2].fields.as_ref().unwrap()["pod"], "p");
    }
}
