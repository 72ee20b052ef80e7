//! `type = "kafka"` of `[[sources]]`: the keys, their checks, and the plan the source is
//! built from.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{KafkaMetrics, KafkaSource};
use crate::config::{at_least_one, ConfigErrors, Section};
use crate::kafka;
use crate::sources::{Source, SourceBuild, SourceCommon, SourceConfig, SourceMetrics, SourcePlan};

/// `type = "kafka"`: consumes topics as a member of a consumer group; an offset is committed
/// only once every sink delivered that message and all before it in its partition.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port…]`. Env: `LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS` (every Kafka source
    /// and sink).
    pub bootstrap_servers: Option<String>,
    /// Topic names, or regexes when they start with `^`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// The consumer group; instances with the same group share the topics' partitions.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where a group with no committed offset starts.
    #[serde(default)]
    pub auto_offset_reset: AutoOffsetReset,
    /// How long the group waits for a silent member before handing its partitions on (ms).
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Delivered offsets are committed at most this often (ms), and on rebalance and shutdown.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// On rebalance, how long to wait for in-flight messages of revoked partitions (ms).
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Where a record's `source` comes from: `"topic"`, `"key"` or `"header:<name>"`; a JSON
    /// payload's `source_field` wins.
    #[serde(default = "default_source_from")]
    pub source_from: String,
    /// Passed to librdkafka as they are (they win over logsieve's own settings).
    #[serde(default)]
    pub librdkafka_options: BTreeMap<String, String>,
}

fn default_group_id() -> String {
    "logsieve".into()
}

fn default_session_timeout_ms() -> u64 {
    10_000
}

fn default_commit_interval_ms() -> u64 {
    1_000
}

fn default_drain_timeout_ms() -> u64 {
    5_000
}

fn default_source_from() -> String {
    "topic".into()
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AutoOffsetReset {
    /// The oldest message the topic keeps.
    #[default]
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

impl AutoOffsetReset {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
        }
    }
}

/// Where a Kafka source takes a record's `source` from (`source_from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFrom {
    /// The topic's name (default).
    Topic,
    /// The message key (UTF-8, lossily).
    Key,
    /// A message header.
    Header(String),
}

impl SourceFrom {
    /// `"topic"`, `"key"` or `"header:<name>"`.
    pub fn parse(text: &str) -> Option<SourceFrom> {
        match text {
            "topic" => Some(SourceFrom::Topic),
            "key" => Some(SourceFrom::Key),
            _ => text
                .strip_prefix("header:")
                .filter(|h| !h.is_empty())
                .map(|h| SourceFrom::Header(h.to_string())),
        }
    }
}

impl SourceConfig for KafkaSourceConfig {
    const TYPE: &'static str = "kafka";

    fn plan(
        self,
        common: SourceCommon,
        index: usize,
        at: &Section,
        errs: &mut ConfigErrors,
    ) -> Option<Box<dyn SourcePlan>> {
        let servers = kafka::bootstrap_servers(self.bootstrap_servers.as_deref(), at, errs);
        if self.topics.is_empty() {
            errs.add(
                at.key("topics"),
                "a Kafka source needs at least one topic",
                "add topics = [\"app-logs\"] (a name, or a regex starting with ^)",
            );
        }
        for (i, topic) in self.topics.iter().enumerate() {
            if topic.trim().is_empty() {
                errs.add(at.item("topics", i), "a topic is empty", "name the topic");
            }
        }
        let source_from = SourceFrom::parse(&self.source_from);
        if source_from.is_none() {
            errs.add(
                at.key("source_from"),
                format!(
                    "`{}` is not a place to take the source from",
                    self.source_from
                ),
                "use \"topic\", \"key\" or \"header:<name>\"",
            );
        }
        at_least_one(self.commit_interval_ms, at.key("commit_interval_ms"), errs);
        at_least_one(self.session_timeout_ms, at.key("session_timeout_ms"), errs);
        let name = common
            .name
            .clone()
            .unwrap_or_else(|| format!("kafka-{index}"));
        Some(Box::new(KafkaSourcePlan {
            name: Arc::from(name),
            servers: servers?,
            source_from: source_from?,
            common,
            settings: self,
        }))
    }
}

/// A Kafka source's checked settings.
#[derive(Clone)]
pub struct KafkaSourcePlan {
    pub name: Arc<str>,
    pub servers: String,
    pub source_from: SourceFrom,
    pub common: SourceCommon,
    pub settings: KafkaSourceConfig,
}

impl SourcePlan for KafkaSourcePlan {
    fn describe(&self) -> String {
        let s = &self.settings;
        format!(
            "kafka {} topics {} (group {}, auto_offset_reset {}, commit every {} ms)",
            self.servers,
            s.topics.join(", "),
            s.group_id,
            s.auto_offset_reset.as_str(),
            s.commit_interval_ms
        )
    }

    fn build(&self, cx: &SourceBuild) -> anyhow::Result<Box<dyn Source>> {
        Ok(Box::new(KafkaSource {
            name: self.name.clone(),
            plan: self.clone(),
            metrics: SourceMetrics::register(cx.registry),
            kafka: KafkaMetrics::register(cx.registry),
            health: cx.health.clone(),
        }))
    }
}
