//! Sources read lines and hand them to the pipeline in chunks, each stamped with an [`Ack`] so
//! the source learns when the chunk was delivered. Every source sits behind the one [`Source`]
//! trait; the pipeline starts them and knows nothing else about them.
//!
//! Each source type owns its `[[sources]]` table: a config struct, its checks, and the
//! [`SourcePlan`] they give, which `validate` describes and `run` builds. [`TYPES`] lists the
//! types; adding one is its own module plus one line there.

pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lines;
pub mod stdin;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use prometheus::IntCounterVec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Ack;
use crate::config::{keys_of, plan_list, schema_of, ComponentType, ConfigErrors, Section};
use crate::event::{decode_line, Event, Origin};
use crate::health::Health;
use crate::metrics::Registry;
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

/// What building a source may need from the agent.
pub struct SourceBuild<'a> {
    pub registry: &'a Registry,
    pub health: &'a Arc<Health>,
    pub data_dir: &'a Path,
    /// `--exit-on-eof`: stop once every file was read to its end.
    pub exit_on_eof: bool,
}

/// A source's checked settings: what `validate` prints and what `run` starts.
pub trait SourcePlan: Send + Sync {
    /// One line for `validate` and the start-up log, after `source: `.
    fn describe(&self) -> String;
    /// What only one source may hold (standard input, a checkpoint file), if anything.
    fn exclusive(&self) -> Option<String> {
        None
    }
    fn build(&self, cx: &SourceBuild) -> anyhow::Result<Box<dyn Source>>;
}

/// A `[[sources]]` table of one `type`: its keys (besides [`SourceCommon`]'s), read with serde
/// from the file, and the checks that turn them into a plan.
pub trait SourceConfig: DeserializeOwned + schemars::JsonSchema {
    /// Its `type = "…"`.
    const TYPE: &'static str;
    /// Checks the settings; problems go to `errs` at their keys' lines. `index` is the table's
    /// place among `[[sources]]`.
    fn plan(
        self,
        common: SourceCommon,
        index: usize,
        at: &Section,
        errs: &mut ConfigErrors,
    ) -> Option<Box<dyn SourcePlan>>;
}

const fn source_type<C: SourceConfig>() -> ComponentType<dyn SourcePlan> {
    ComponentType {
        name: C::TYPE,
        plan: plan_as::<C>,
        schema: schema_of::<C>,
        keys: keys_of::<C>,
    }
}

fn plan_as<C: SourceConfig>(
    index: usize,
    at: &Section,
    errs: &mut ConfigErrors,
) -> Option<Box<dyn SourcePlan>> {
    let common = at.parse::<SourceCommon>(errs);
    let config = at.parse::<C>(errs);
    let common = common?;
    common.check(at, errs);
    config?.plan(common, index, at, errs)
}

/// Every source type this build knows.
pub const TYPES: &[ComponentType<dyn SourcePlan>] = &[
    source_type::<file::FileSourceConfig>(),
    source_type::<stdin::StdinSourceConfig>(),
    #[cfg(feature = "kafka")]
    source_type::<kafka::KafkaSourceConfig>(),
];

/// Plans every `[[sources]]` table.
pub fn plan_all(tables: &[Section], errs: &mut ConfigErrors) -> Vec<Box<dyn SourcePlan>> {
    plan_list(tables, "source", TYPES, |p| p.exclusive(), errs)
}

/// How a line becomes an event: every source type takes these keys.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct SourceCommon {
    /// The record's `source` (what `[[tiers.route]]` matches); a JSON line's `source_field`
    /// overrides it. Default: the file's path for a file source, `stdin` for standard input,
    /// the topic (see `source_from`) for a Kafka source, which also names its metrics with it.
    pub name: Option<String>,
    /// Longer lines are cut here and flagged `truncated: true`.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How a line is read.
    #[serde(default)]
    pub format: LineFormat,
    /// JSON lines: the field holding the message.
    #[serde(default = "default_message_field")]
    pub message_field: String,
    /// JSON lines: a string field that overrides `name` as the record's `source`.
    #[serde(default = "default_source_field")]
    pub source_field: String,
    /// Fields added to every record of this source, e.g. `{ pod = "${POD_NAME}" }` (the
    /// Kubernetes downward API, a host's name). They win over a JSON line's own fields of the
    /// same name.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, serde_json::Value>,
}

fn default_max_line_bytes() -> usize {
    100 * 1024
}

fn default_message_field() -> String {
    "message".into()
}

fn default_source_field() -> String {
    "source".into()
}

impl SourceCommon {
    fn check(&self, at: &Section, errs: &mut ConfigErrors) {
        if let Some(own) = self
            .fields
            .keys()
            .find(|k| crate::event::OWN_KEYS.contains(&k.as_str()))
        {
            errs.add(
                at.key("fields"),
                format!("`{own}` is a field every record has already"),
                "give it another name",
            );
        }
        if self.max_line_bytes < 16 {
            errs.add(
                at.key("max_line_bytes"),
                format!("{} is too small", self.max_line_bytes),
                "use the default, 102400",
            );
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// A line that parses as a JSON object is read as one; any other line is text.
    #[default]
    Auto,
    /// Every line is text.
    Text,
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
            lines: registry.counter_vec(
                "logsieve_source_lines_total",
                "Lines read, by source.",
                &["source"],
            ),
            bytes: registry.counter_vec(
                "logsieve_source_bytes_total",
                "Bytes read, by source.",
                &["source"],
            ),
            truncated: registry.counter_vec(
                "logsieve_source_truncated_lines_total",
                "Lines longer than max_line_bytes, cut and flagged.",
                &["source"],
            ),
            invalid_utf8: registry.counter_vec(
                "logsieve_source_invalid_utf8_lines_total",
                "Lines that were not valid UTF-8, decoded lossily and flagged.",
                &["source"],
            ),
        }
    }

    /// Counts a chunk's lines.
    pub fn count(&self, name: &str, events: &[Event], bytes: u64) {
        self.lines
            .with_label_values(&[name])
            .inc_by(events.len() as u64);
        self.bytes.with_label_values(&[name]).inc_by(bytes);
        let truncated = events.iter().filter(|e| e.truncated).count() as u64;
        if truncated > 0 {
            self.truncated.with_label_values(&[name]).inc_by(truncated);
        }
        let invalid = events.iter().filter(|e| e.invalid_utf8).count() as u64;
        if invalid > 0 {
            self.invalid_utf8.with_label_values(&[name]).inc_by(invalid);
        }
    }
}

/// How a byte-stream source turns framed lines into events.
#[derive(Clone)]
pub struct LineDecoder {
    pub source: Arc<str>,
    json: bool,
    message_field: String,
    source_field: String,
    extra: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
}

impl LineDecoder {
    pub fn new(source: Arc<str>, common: &SourceCommon) -> LineDecoder {
        LineDecoder {
            source,
            json: common.format == LineFormat::Auto,
            message_field: common.message_field.clone(),
            source_field: common.source_field.clone(),
            extra: (!common.fields.is_empty()).then(|| {
                Arc::new(
                    common
                        .fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            }),
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
            extra: self.extra.clone(),
            truncated: line.truncated,
            invalid_utf8: line.invalid_utf8,
        }
    }
}
