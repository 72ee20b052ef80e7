//! The tier chain: the cheapest tier first, each labelling what it can in a whole batch and
//! leaving the rest for the next. Every tier sits behind the one small [`Tier`] trait, so the
//! pipeline, `classify` and `POST /classify` share the same chain and know nothing of its parts.
//! A line no tier decides leaves as `Unclassified` (tier `none`); a line meant for an LLM that
//! is not there leaves as tier `fallback` with the reason it escalated (`llm_disabled` when
//! routed, `low_confidence` when the model was unsure, with its best guess's confidence).
//! The LLM tier stands apart from the chain: [`Tiers::label`] waits for its answers,
//! [`Tiers::label_streaming`] hands it the lines and lets the rest of the batch go on.

pub mod cache;
pub mod embed;
pub mod llm;
pub mod logistic;
pub mod model;
pub mod regex;
pub mod route;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{HistogramVec, IntCounterVec, Registry};

use crate::ack::Ack;
use crate::event::{Event, Record, TierName, Verdict};
use crate::metrics;

/// Why a line goes to the LLM tier.
#[derive(Debug, Clone, PartialEq)]
pub enum Escalation {
    /// A route (its index in `[[tiers.route]]`) sends the line straight there.
    Routed { route: usize },
    /// The model's best label was below the threshold.
    LowConfidence { label: Arc<str>, confidence: f32 },
    /// The model could not run on it.
    ModelFailed,
}

/// One line on its way through the tiers.
#[derive(Debug)]
pub struct Pending {
    pub event: Event,
    /// Set by the tier that decides; later tiers skip decided lines.
    pub verdict: Option<Verdict>,
    /// Set when the line skips the remaining cheap tiers, bound for the LLM.
    pub to_llm: Option<Escalation>,
    /// The line's template, once a tier computed it.
    pub template: Option<String>,
}

impl Pending {
    pub fn new(event: Event) -> Pending {
        Pending {
            event,
            verdict: None,
            to_llm: None,
            template: None,
        }
    }

    /// Undecided and not on its way to the LLM: what the rules and the model look at.
    pub fn is_open(&self) -> bool {
        self.verdict.is_none() && self.to_llm.is_none()
    }

    /// Undecided by the cheap tiers and escalated: the LLM tier's to answer.
    pub fn is_bound_for_llm(&self) -> bool {
        self.verdict.is_none() && self.to_llm.is_some()
    }

    pub fn escalate(&mut self, why: Escalation) {
        self.to_llm = Some(why);
    }

    /// The verdict for a line no tier decided.
    fn undecided(&self) -> Verdict {
        match &self.to_llm {
            None => Verdict::fallback(TierName::None, None),
            Some(Escalation::Routed { .. }) => {
                Verdict::fallback(TierName::Fallback, Some("llm_disabled"))
            }
            Some(Escalation::LowConfidence { confidence, .. }) => Verdict {
                confidence: Some(*confidence),
                ..Verdict::fallback(TierName::Fallback, Some("low_confidence"))
            },
            Some(Escalation::ModelFailed) => {
                Verdict::fallback(TierName::Fallback, Some("model_error"))
            }
        }
    }
}

/// A tier labels what it can in a batch and leaves the rest for the next tier.
#[async_trait]
pub trait Tier: Send + Sync {
    fn name(&self) -> TierName;
    async fn label(&self, batch: &mut [Pending]);
}

struct TierMetrics {
    duration: HistogramVec,
    records: IntCounterVec,
    saved: IntCounterVec,
}

/// The ordered chain of tiers, and the LLM tier behind it.
pub struct Tiers {
    chain: Vec<Box<dyn Tier>>,
    llm: Option<llm::LlmTier>,
    metrics: TierMetrics,
}

impl Tiers {
    pub fn new(chain: Vec<Box<dyn Tier>>, llm: Option<llm::LlmTier>, registry: &Registry) -> Tiers {
        let metrics = TierMetrics {
            duration: metrics::histogram_vec(
                registry,
                "logsieve_tier_duration_seconds",
                "Time a tier spent on one batch.",
                &["tier"],
                prometheus::exponential_buckets(0.00001, 4.0, 12).expect("valid buckets"),
            ),
            records: metrics::counter_vec(
                registry,
                "logsieve_records_total",
                "Records labelled, by label and by the tier that decided.",
                &["label", "tier"],
            ),
            saved: metrics::counter_vec(
                registry,
                "logsieve_llm_saved_lines_total",
                "Lines a cheaper tier decided, so no LLM was asked, by tier (regex, cache, model).",
                &["tier"],
            ),
        };
        Tiers {
            chain,
            llm,
            metrics,
        }
    }

    /// The LLM tier, when one runs.
    pub fn llm(&self) -> Option<&llm::LlmTier> {
        self.llm.as_ref()
    }

    /// Runs every tier over a batch, waiting for the LLM's answers, and returns the records in
    /// the batch's order.
    pub async fn label(&self, events: Vec<Event>) -> Vec<Record> {
        let mut batch = self.run_chain(events).await;
        if let Some(llm) = &self.llm {
            self.timed(llm, &mut batch).await;
        }
        self.finish(batch, None)
    }

    /// The agent's way: runs the cheap tiers and hands the lines bound for the LLM to it, each
    /// with a claim on its chunk (`ack_for(i)` for line i); they leave later, through the LLM
    /// tier's output. Returns the records that leave now: the batch's other lines in order,
    /// then the LLM-bound lines the LLM tier decided at once (cached template, full queue, open
    /// breaker). With `[tiers.llm] ordered = true` (or no LLM) this is [`Tiers::label`].
    pub async fn label_streaming(
        &self,
        events: Vec<Event>,
        ack_for: impl Fn(usize) -> Ack,
    ) -> Vec<Record> {
        let Some(llm) = self.llm.as_ref().filter(|l| !l.ordered()) else {
            return self.label(events).await;
        };
        let batch = self.run_chain(events).await;
        let mut leaving = Vec::new();
        let mut records = self.finish(batch, Some(&mut leaving));
        for (i, pending) in leaving {
            if let Some((record, ack)) = llm.dispatch(pending, ack_for(i)).await {
                ack.delivered(); // it leaves with its batch, whose acks cover it
                self.count(&record.verdict);
                records.push(record);
            }
        }
        records
    }

    /// Counts a record the LLM tier answered after its batch left.
    pub fn count(&self, verdict: &Verdict) {
        self.metrics
            .records
            .with_label_values(&[&*verdict.label, verdict.tier.as_str()])
            .inc();
    }

    async fn run_chain(&self, events: Vec<Event>) -> Vec<Pending> {
        let mut batch: Vec<Pending> = events.into_iter().map(Pending::new).collect();
        for tier in &self.chain {
            if batch.iter().all(|p| !p.is_open()) {
                break;
            }
            self.timed(tier.as_ref(), &mut batch).await;
        }
        batch
    }

    async fn timed(&self, tier: &dyn Tier, batch: &mut [Pending]) {
        let started = Instant::now();
        tier.label(batch).await;
        self.metrics
            .duration
            .with_label_values(&[tier.name().as_str()])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The records of a batch, counted by label and tier. With `leaving`, the lines bound for
    /// the LLM are moved there (with their index in the batch) instead of becoming records.
    fn finish(
        &self,
        batch: Vec<Pending>,
        mut leaving: Option<&mut Vec<(usize, Pending)>>,
    ) -> Vec<Record> {
        let mut counted: Vec<((Arc<str>, TierName), u64)> = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        for (i, mut p) in batch.into_iter().enumerate() {
            if let Some(out) = leaving.as_mut().filter(|_| p.is_bound_for_llm()) {
                out.push((i, p));
                continue;
            }
            let verdict = p.verdict.take().unwrap_or_else(|| p.undecided());
            match counted
                .iter_mut()
                .find(|((l, t), _)| *t == verdict.tier && **l == *verdict.label)
            {
                Some((_, n)) => *n += 1,
                None => counted.push(((verdict.label.clone(), verdict.tier), 1)),
            }
            records.push(Record {
                event: p.event,
                verdict,
            });
        }
        for ((label, tier), n) in counted {
            self.metrics
                .records
                .with_label_values(&[&*label, tier.as_str()])
                .inc_by(n);
            if matches!(tier, TierName::Regex | TierName::Cache | TierName::Model) {
                self.metrics
                    .saved
                    .with_label_values(&[tier.as_str()])
                    .inc_by(n);
            }
        }
        records
    }
}

/// The chain a configuration asks for: routing, the rules, then (when configured) the template
/// cache and the model.
pub fn from_config(loaded: &crate::config::Loaded, registry: &Registry) -> anyhow::Result<Tiers> {
    let tiers = &loaded.config.tiers;
    let mut chain: Vec<Box<dyn Tier>> = vec![
        Box::new(route::RouteTier::new(&tiers.route)?),
        Box::new(regex::RegexTier::new(&loaded.rules)?),
    ];
    let cache = (tiers.cache.capacity > 0)
        .then(|| cache::TemplateCache::new(tiers.cache.capacity, registry));
    if let Some(model) = tiers.model.as_ref().filter(|m| m.enabled) {
        let head = logistic::Head::load(&model.head)?;
        if let Some(unknown) = head
            .labels
            .iter()
            .find(|l| !crate::config::is_known_label(&loaded.config.labels, l))
        {
            anyhow::bail!(
                "{}: the head knows label `{unknown}`, which is not in the config's labels",
                model.head.display()
            );
        }
        let embedder = embed::Embedder::load(&model.files(), model.threads, model.batch_size)?;
        if let Some(cache) = &cache {
            chain.push(Box::new(cache::CacheTier::new(cache.clone())));
        }
        chain.push(Box::new(model::ModelTier::new(
            embedder,
            head,
            model.threshold,
            cache.clone(),
        )));
    }
    let llm = llm::LlmTier::from_config(&loaded.config, cache, registry)?;
    Ok(Tiers::new(chain, llm, registry))
}
