//! The model tier: all-MiniLM-L6-v2 sentence embeddings through ONNX Runtime ([`embed`]) and
//! a logistic-regression head trained by `logsieve train` ([`logistic`]), run over the lines no
//! cheaper tier decided ([`tier`]). This module owns `[tiers.model]`: its keys, its checks and
//! the plan the tier is built from. The tier itself is the cargo feature `model` (on by
//! default); a build without it reads the section and refuses to turn it on.

#[cfg(feature = "model")]
pub mod embed;
#[cfg(feature = "model")]
pub mod logistic;
#[cfg(feature = "model")]
pub mod tier;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::cache::TemplateCache;
use super::Labels;
use crate::config::{ConfigErrors, Section};
use crate::metrics::Registry;

/// The most tokens all-MiniLM-L6-v2 reads (its `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// The command that fetches the model's assets.
pub const FETCH_COMMAND: &str = "scripts/fetch-models.sh";

/// `[tiers.model]`: MiniLM sentence embeddings and a logistic-regression head. Lines below
/// `threshold` escalate to the LLM tier (without one: `Unclassified`, reason `low_confidence`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Run the model tier.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// ONNX Runtime's shared library (from the onnxruntime wheel; `scripts/fetch-models.sh`).
    #[serde(default = "default_onnxruntime")]
    pub onnxruntime: PathBuf,
    /// all-MiniLM-L6-v2 as ONNX: int8 (`model.int8.onnx`, the default: faster, and within a
    /// point of fp32 on the seed and held-out sets) or fp32 (`model.onnx`).
    #[serde(default = "default_model")]
    pub model: PathBuf,
    /// The model's tokenizer.
    #[serde(default = "default_tokenizer")]
    pub tokenizer: PathBuf,
    /// sha256 of each asset, checked before use.
    #[serde(default = "default_checksums")]
    pub checksums: PathBuf,
    /// The trained logistic head (`logsieve train`).
    #[serde(default = "default_head")]
    pub head: PathBuf,
    /// Below this probability a line escalates to the LLM tier (the seed's threshold: 0.5).
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Most lines per ONNX run: lines are sorted by token count and a run holds lines of one
    /// token count (no padding).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Cores the model runs on: one ONNX Runtime session per thread, each running whole runs
    /// on one core (each session after the first: ~30 MB).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Tokens of a line the model looks at (8 to 256, the model's limit); the rest is cut.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn yes() -> bool {
    true
}
fn default_onnxruntime() -> PathBuf {
    PathBuf::from("models/onnxruntime/libonnxruntime.so")
}
fn default_model() -> PathBuf {
    PathBuf::from("models/minilm/model.int8.onnx")
}
fn default_tokenizer() -> PathBuf {
    PathBuf::from("models/minilm/tokenizer.json")
}
fn default_checksums() -> PathBuf {
    PathBuf::from("models/SHA256SUMS")
}
fn default_head() -> PathBuf {
    PathBuf::from("models/head.json")
}
fn default_threshold() -> f32 {
    0.5
}
fn default_batch_size() -> usize {
    32
}
fn default_threads() -> usize {
    2
}
fn default_max_tokens() -> usize {
    256
}

/// Where the model's files are.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub onnxruntime: PathBuf,
    pub model: PathBuf,
    pub tokenizer: PathBuf,
    /// `sha256  file` lines; files are named relative to its folder.
    pub checksums: PathBuf,
}

/// The model tier's checked settings.
#[derive(Debug, Clone)]
pub struct ModelPlan {
    pub files: ModelFiles,
    pub head: PathBuf,
    pub threshold: f32,
    pub batch_size: usize,
    pub threads: usize,
    pub max_tokens: usize,
    /// The labels the head's labels must be among.
    pub labels: Labels,
}

impl ModelConfig {
    /// `Some(None)`: the tier is off; `None`: there were problems.
    pub fn plan(
        self,
        at: &Section,
        labels: &Labels,
        errs: &mut ConfigErrors,
    ) -> Option<Option<ModelPlan>> {
        if !self.enabled {
            return Some(None);
        }
        if !cfg!(feature = "model") {
            errs.add(
                at.key("enabled"),
                "this logsieve was built without the model tier (cargo feature `model`)",
                "set enabled = false or remove [tiers.model], or build with the `model` feature",
            );
            return None;
        }
        let problems = errs.0.len();
        if !(0.0..=1.0).contains(&self.threshold) {
            errs.add(
                at.key("threshold"),
                format!("{} is not a probability", self.threshold),
                "use a value between 0 and 1, e.g. 0.5",
            );
        }
        if !(8..=MAX_TOKENS).contains(&self.max_tokens) {
            errs.add(
                at.key("max_tokens"),
                format!("{} is outside 8..={MAX_TOKENS}", self.max_tokens),
                format!("use a value from 8 to {MAX_TOKENS} (all-MiniLM-L6-v2 reads at most {MAX_TOKENS} tokens), e.g. {}", default_max_tokens()),
            );
        }
        for (key, path) in [
            ("onnxruntime", &self.onnxruntime),
            ("model", &self.model),
            ("tokenizer", &self.tokenizer),
        ] {
            if !path.is_file() {
                errs.add(
                    at.key(key),
                    format!("{} does not exist", path.display()),
                    format!("run {FETCH_COMMAND} to fetch the model assets, or set [tiers.model] enabled = false"),
                );
            }
        }
        (errs.0.len() == problems).then(|| {
            Some(ModelPlan {
                files: ModelFiles {
                    onnxruntime: self.onnxruntime,
                    model: self.model,
                    tokenizer: self.tokenizer,
                    checksums: self.checksums,
                },
                head: self.head,
                threshold: self.threshold,
                batch_size: self.batch_size.max(1),
                threads: self.threads.max(1),
                max_tokens: self.max_tokens,
                labels: labels.clone(),
            })
        })
    }
}

impl ModelPlan {
    #[cfg(feature = "model")]
    pub fn embed_options(&self) -> embed::EmbedOptions {
        embed::EmbedOptions::new(self.threads, self.batch_size, self.max_tokens)
    }

    pub fn describe(&self) -> String {
        format!(
            "tier model: {} + head {} (threshold {}, batch {}, {} threads, {} tokens)",
            self.files.model.display(),
            self.head.display(),
            self.threshold,
            self.batch_size,
            self.threads,
            self.max_tokens
        )
    }

    /// Loads the head and the model (checking both) into the tier.
    #[cfg(feature = "model")]
    pub fn build(
        &self,
        cache: Option<Arc<TemplateCache>>,
        registry: &Registry,
    ) -> anyhow::Result<tier::ModelTier> {
        let head = logistic::Head::load(&self.head)?;
        if let Some(unknown) = head.labels.iter().find(|l| !self.labels.allows(l)) {
            anyhow::bail!(
                "{}: the head knows label `{unknown}`, which is not in the config's labels",
                self.head.display()
            );
        }
        let embedder = embed::Embedder::load(&self.files, &self.embed_options())?;
        Ok(tier::ModelTier::new(
            Box::new(embedder),
            head,
            self.threshold,
            cache,
            registry,
        ))
    }

    /// Without the `model` feature no plan is ever made (see [`ModelConfig::plan`]).
    #[cfg(not(feature = "model"))]
    pub fn build(
        &self,
        _cache: Option<Arc<TemplateCache>>,
        _registry: &Registry,
    ) -> anyhow::Result<NoModel> {
        anyhow::bail!("this logsieve was built without the model tier (cargo feature `model`)")
    }
}

/// What a build without the `model` feature has instead of the tier: nothing that runs.
#[cfg(not(feature = "model"))]
pub enum NoModel {}

#[cfg(not(feature = "model"))]
#[async_trait::async_trait]
impl super::Tier for NoModel {
    fn name(&self) -> crate::event::TierName {
        match *self {}
    }

    async fn label(&self, _batch: &mut [super::Pending]) {
        match *self {}
    }
}
