//! The model tier: embeds the lines no cheaper tier decided (one ONNX run per sub-batch, on a
//! blocking thread so the runtime keeps serving) and labels them with the logistic head. A
//! line whose best probability is below `threshold` escalates to the LLM tier; a confident
//! verdict is remembered for its template, so the same shape never reaches the model again.
//! Lines of one template in a batch are embedded once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tracing::error;

use super::cache::{template, TemplateCache};
use super::embed::Embedder;
use super::logistic::Head;
use super::{Escalation, Pending, Tier};
use crate::event::{TierName, Verdict};

pub struct ModelTier {
    embedder: Arc<Mutex<Embedder>>,
    head: Arc<Head>,
    labels: Vec<Arc<str>>,
    threshold: f32,
    cache: Option<Arc<TemplateCache>>,
}

impl ModelTier {
    pub fn new(
        embedder: Embedder,
        head: Head,
        threshold: f32,
        cache: Option<Arc<TemplateCache>>,
    ) -> ModelTier {
        let labels = head.labels.iter().map(|l| Arc::from(l.as_str())).collect();
        ModelTier {
            embedder: Arc::new(Mutex::new(embedder)),
            head: Arc::new(head),
            labels,
            threshold,
            cache,
        }
    }
}

#[async_trait]
impl Tier for ModelTier {
    fn name(&self) -> TierName {
        TierName::Model
    }

    async fn label(&self, batch: &mut [Pending]) {
        // One embedding per distinct template.
        let mut by_template: HashMap<String, Vec<usize>> = HashMap::new();
        let mut texts: Vec<String> = Vec::new();
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
        let embedder = self.embedder.clone();
        let head = self.head.clone();
        let predictions = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = embedder.lock().expect("embedder lock").embed(&refs)?;
            Ok::<_, super::embed::ModelError>(
                vectors.iter().map(|v| head.predict(v)).collect::<Vec<_>>(),
            )
        })
        .await;
        let predictions = match predictions {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                error!(
                    "model tier failed on a batch of {} templates: {e}; they escalate",
                    templates.len()
                );
                for pending in batch.iter_mut().filter(|p| p.is_open()) {
                    pending.escalate(Escalation::ModelFailed);
                }
                return;
            }
            Err(e) => {
                error!("model tier task failed: {e}");
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
