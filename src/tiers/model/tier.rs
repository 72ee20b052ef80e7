//! The model tier proper: embeds the lines no cheaper tier decided (one ONNX run per sub-batch,
//! on a blocking thread so the runtime keeps serving) and labels them with the logistic head.
//! A line whose best probability is below `threshold` escalates to the LLM tier; a confident
//! verdict is remembered for its template, so the same shape never reaches the model again.
//! Lines of one template in a batch are embedded once.
//!
//! A model run that fails — an error, or a panic inside ONNX Runtime or the tokenizer — is loud
//! and local: the batch's lines escalate with reason `model_error`, it is logged and counted
//! (`logsieve_model_errors_total`), and the next batch runs as usual.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prometheus::IntCounterVec;
use tracing::error;

use super::embed::ModelError;
use super::logistic::Head;
use crate::event::{Text, TierName, Verdict};
use crate::metrics::Registry;
use crate::tiers::cache::{template, TemplateCache};
use crate::tiers::{Escalation, Pending, Tier};

/// What turns texts into sentence embeddings (unit vectors, one per text, in order): the
/// MiniLM embedder, or a stand-in that fails on purpose in tests.
pub trait Embed: Send {
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError>;
}

pub struct ModelTier {
    embedder: Arc<Mutex<Box<dyn Embed>>>,
    head: Arc<Head>,
    labels: Vec<Arc<str>>,
    threshold: f32,
    cache: Option<Arc<TemplateCache>>,
    errors: IntCounterVec,
}

impl ModelTier {
    pub fn new(
        embedder: Box<dyn Embed>,
        head: Head,
        threshold: f32,
        cache: Option<Arc<TemplateCache>>,
        registry: &Registry,
    ) -> ModelTier {
        let labels = head.labels.iter().map(|l| Arc::from(l.as_str())).collect();
        ModelTier {
            embedder: Arc::new(Mutex::new(embedder)),
            head: Arc::new(head),
            labels,
            threshold,
            cache,
            errors: registry.counter_vec(
                "logsieve_model_errors_total",
                "Model runs that failed (their lines escalate with reason model_error), by kind: error, panic.",
                &["kind"],
            ),
        }
    }

    /// The head's best label and its probability for each text.
    async fn predict(&self, texts: Vec<Text>) -> Result<Vec<(usize, f32)>, (&'static str, String)> {
        let embedder = self.embedder.clone();
        let head = self.head.clone();
        let run = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(|t| &**t).collect();
            // A panic in an earlier run poisoned the lock; the embedder itself holds no state
            // between runs that a panic could leave half-changed, so it is used again.
            let mut embedder = embedder.lock().unwrap_or_else(|p| p.into_inner());
            let vectors = embedder.embed(&refs)?;
            Ok::<_, ModelError>(vectors.iter().map(|v| head.predict(v)).collect())
        })
        .await;
        match run {
            Ok(Ok(predictions)) => Ok(predictions),
            Ok(Err(e)) => Err(("error", e.to_string())),
            Err(e) => Err(("panic", e.to_string())),
        }
    }
}

#[async_trait]
impl Tier for ModelTier {
    fn name(&self) -> TierName {
        TierName::Model
    }

    fn is_slow(&self) -> bool {
        true
    }

    async fn label(&self, batch: &mut [Pending]) {
        // One embedding per distinct template.
        let mut by_template: HashMap<String, Vec<usize>> = HashMap::new();
        let mut texts: Vec<Text> = Vec::new();
        let mut templates: Vec<String> = Vec::new();
        for (i, pending) in batch.iter_mut().enumerate() {
            if !pending.is_open() {
                continue;
            }
            let t = pending
                .template
                .take()
                .unwrap_or_else(|| template(&pending.event.message));
            let slot = by_template.entry(t.clone()).or_default();
            if slot.is_empty() {
                texts.push(pending.event.message.clone());
                templates.push(t);
            }
            slot.push(i);
        }
        if texts.is_empty() {
            return;
        }
        let predictions = match self.predict(texts).await {
            Ok(p) => p,
            Err((kind, e)) => {
                self.errors.with_label_values(&[kind]).inc();
                error!(
                    "model tier failed ({kind}) on a batch of {} templates: {e}; their lines escalate with reason model_error",
                    templates.len()
                );
                for pending in batch.iter_mut().filter(|p| p.is_open()) {
                    pending.escalate(Escalation::ModelFailed);
                }
                return;
            }
        };
        for (t, (index, p)) in templates.into_iter().zip(predictions) {
            let lines = &by_template[&t];
            if p >= self.threshold {
                let verdict = Verdict {
                    label: self.labels[index].clone(),
                    tier: TierName::Model,
                    confidence: Some(p),
                    rule: None,
                    reason: None,
                };
                for &i in lines {
                    batch[i].verdict = Some(verdict.clone());
                }
                if let Some(cache) = &self.cache {
                    cache.insert(t, verdict);
                }
            } else {
                for &i in lines {
                    batch[i].escalate(Escalation::LowConfidence {
                        label: self.labels[index].clone(),
                        confidence: p,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Origin};
    use crate::tiers::model::embed::DIM;

    /// Panics on its first run, then gives every text the same unit vector.
    struct PanicsOnce {
        runs: usize,
    }

    impl Embed for PanicsOnce {
        fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
            self.runs += 1;
            if self.runs == 1 {
                panic!("ONNX Runtime fell over");
            }
            let mut v = vec![0f32; DIM];
            v[0] = 1.0;
            Ok(vec![v; texts.len()])
        }
    }

    struct Fails;

    impl Embed for Fails {
        fn embed(&mut self, _: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
            Err(ModelError::Runtime("out of memory".into()))
        }
    }

    fn head() -> Head {
        let mut error = vec![0f32; DIM];
        error[0] = 10.0;
        Head {
            embedding_model: "test".into(),
            labels: vec!["Error".into(), "Other".into()],
            weights: vec![error, vec![0f32; DIM]],
            bias: vec![0.0, 0.0],
            trained: serde_json::Value::Null,
        }
    }

    fn batch(messages: &[&str]) -> Vec<Pending> {
        messages
            .iter()
            .map(|m| {
                let origin = Origin::Row { row: 1 };
                Pending::new(Event::plain(Arc::from("t"), "s", m.to_string(), origin))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_panicking_model_run_escalates_its_batch_and_the_next_batch_still_runs() {
        let registry = Registry::default();
        let tier = ModelTier::new(
            Box::new(PanicsOnce { runs: 0 }),
            head(),
            0.5,
            None,
            &registry,
        );
        let mut first = batch(&["disk on fire", "fan stopped"]);
        tier.label(&mut first).await;
        for p in &first {
            assert!(p.verdict.is_none());
            assert_eq!(p.to_llm, Some(Escalation::ModelFailed));
        }
        assert_eq!(tier.errors.with_label_values(&["panic"]).get(), 1);

        let mut second = batch(&["disk on fire"]);
        tier.label(&mut second).await;
        let verdict = second[0].verdict.as_ref().expect("the model ran again");
        assert_eq!(&*verdict.label, "Error");
        assert!(registry
            .render()
            .contains("logsieve_model_errors_total{kind=\"panic\"} 1"));
    }

    #[tokio::test]
    async fn a_failing_model_run_escalates_with_model_error() {
        let tier = ModelTier::new(Box::new(Fails), head(), 0.5, None, &Registry::default());
        let mut lines = batch(&["disk on fire"]);
        tier.label(&mut lines).await;
        assert_eq!(lines[0].to_llm, Some(Escalation::ModelFailed));
        assert_eq!(tier.errors.with_label_values(&["error"]).get(), 1);
    }
}
