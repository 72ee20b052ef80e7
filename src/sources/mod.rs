//! Sources read lines and hand them to the pipeline in chunks, each stamped with an [`Ack`] so
//! the source learns when the chunk was delivered. Every source sits behind the one [`Source`]
//! trait; the pipeline starts them and knows nothing else about them.

pub mod file;
pub mod kafka;
pub mod lines;
pub mod stdin;

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::{IntCounterVec, Registry};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Ack;
use crate::config::{LineFormat, SourceConfig};
use crate::event::{decode_line, Event, Origin};
use crate::metrics;
use lines::Line;

/// Lines read together, delivered (or not) together.
#[derive(Debug)]
pub struct Chunk {
    pub events: Vec<Event>,
    pub ack: Ack,
}

/// What a running source is given.
pub struct SourceContext {
    pub out: mpsc::Sender<Chunk>,
    /// Stop reading, hand back `out`, and wait for `drained`.
    pub shutdown: CancellationToken,
    /// Every sink has finished: the final delivered positions are known; write them down.
    pub drained: CancellationToken,
}

#[async_trait]
pub trait Source: Send {
    fn name(&self) -> &str;
    /// Reads until shutdown (or the end of its input), then returns after `drained`.
    async fn run(self: Box<Self>, ctx: SourceContext) -> anyhow::Result<()>;
}

/// Counters every source keeps, labelled by source name.
#[derive(Clone)]
pub struct SourceMetrics {
    pub lines: IntCounterVec,
    pub bytes: IntCounterVec,
    pub truncated: IntCounterVec,
    pub invalid_utf8: IntCounterVec,
}

impl SourceMetrics {
    pub fn register(registry: &Registry) -> SourceMetrics {
        SourceMetrics {
            lines: metrics::counter_vec(
                registry,
                "logsieve_source_lines_total",
                "Lines read, by source.",
                &["source"],
            ),
            bytes: metrics::counter_vec(
                registry,
                "logsieve_source_bytes_total",
                "Bytes read, by source.",
                &["source"],
            ),
            truncated: metrics::counter_vec(
                registry,
                "logsieve_source_truncated_lines_total",
                "Lines longer than max_line_bytes, cut and flagged.",
                &["source"],
            ),
            invalid_utf8: metrics::counter_vec(
                registry,
                "logsieve_source_invalid_utf8_lines_total",
                "Lines that were not valid UTF-8, decoded lossily and flagged.",
                &["source"],
            ),
        }
    }
}

/// How a byte-stream source turns framed lines into events.
pub struct LineDecoder {
    pub source: Arc<str>,
    json: bool,
    message_field: String,
    source_field: String,
}

impl LineDecoder {
    pub fn new(source: Arc<str>, cfg: &SourceConfig) -> LineDecoder {
        LineDecoder {
            source,
            json: cfg.format == LineFormat::Auto,
            message_field: cfg.message_field.clone(),
            source_field: cfg.source_field.clone(),
        }
    }

    pub fn event(&self, line: Line, timestamp: &Arc<str>, origin: Origin) -> Event {
        self.event_from(line, timestamp, origin, &self.source)
    }

    /// As [`LineDecoder::event`], with the source name the line gets unless it names its own.
    pub fn event_from(
        &self,
        line: Line,
        timestamp: &Arc<str>,
        origin: Origin,
        source: &Arc<str>,
    ) -> Event {
        let decoded = decode_line(
            line.text,
            self.json,
            &self.message_field,
            &self.source_field,
        );
        Event {
            timestamp: timestamp.clone(),
            source: decoded
                .source
                .map(Arc::from)
                .unwrap_or_else(|| source.clone()),
            message: decoded.message,
            origin,
            fields: decoded.fields,
            truncated: line.truncated,
            invalid_utf8: line.invalid_utf8,
        }
    }
}

/// Counts a chunk's lines into the source metrics.
pub fn count(metrics: &SourceMetrics, name: &str, events: &[Event], bytes: u64) {
    metrics
        .lines
        .with_label_values(&[name])
        .inc_by(events.len() as u64);
    metrics.bytes.with_label_values(&[name]).inc_by(bytes);
    let truncated = events.iter().filter(|e| e.truncated).count() as u64;
    if truncated > 0 {
        metrics
            .truncated
            .with_label_values(&[name])
            .inc_by(truncated);
    }
    let invalid = events.iter().filter(|e| e.invalid_utf8).count() as u64;
    if invalid > 0 {
        metrics
            .invalid_utf8
            .with_label_values(&[name])
            .inc_by(invalid);
    }
}

/// Starts the configured sources.
pub fn from_config(
    loaded: &crate::config::Loaded,
    registry: &Registry,
    exit_on_eof: bool,
    health: &Arc<crate::server::Health>,
) -> anyhow::Result<Vec<Box<dyn Source>>> {
    let metrics = SourceMetrics::register(registry);
    let file_metrics = file::FileMetrics::register(registry);
    let mut kafka_metrics = None;
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    for (i, cfg) in loaded.config.sources.iter().enumerate() {
        match cfg.kind.get_ref() {
            crate::config::SourceType::File => sources.push(Box::new(file::FileSource::new(
                cfg.clone(),
                i,
                &loaded.config.data_dir,
                metrics.clone(),
                file_metrics.clone(),
                exit_on_eof,
            ))),
            crate::config::SourceType::Stdin => sources.push(Box::new(stdin::StdinSource::new(
                cfg.clone(),
                metrics.clone(),
            ))),
            crate::config::SourceType::Kafka => {
                let kafka = kafka_metrics
                    .get_or_insert_with(|| kafka::KafkaMetrics::register(registry))
                    .clone();
                sources.push(Box::new(kafka::KafkaSource::new(
                    cfg.clone(),
                    i,
                    metrics.clone(),
                    kafka,
                    health.clone(),
                )))
            }
        }
    }
    Ok(sources)
}
