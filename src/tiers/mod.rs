//! The tier chain: the cheapest tier first, each labelling what it can in a whole batch and
//! leaving the rest for the next. Every tier sits behind the one small [`Tier`] trait, so the
//! pipeline, `classify` and `POST /classify` share the same chain and know nothing of its parts.
//! A line no tier decides leaves as `Unclassified` (tier `none`; a line meant for an LLM that
//! is not there leaves as tier `fallback`, reason `llm_disabled`).

pub mod regex;
pub mod route;

use std::time::Instant;

use async_trait::async_trait;
use prometheus::{HistogramVec, IntCounterVec, Registry};

use crate::event::{Event, Record, TierName, Verdict};
use crate::metrics;

/// One line on its way through the tiers.
#[derive(Debug)]
pub struct Pending {
    pub event: Event,
    /// Set by the tier that decides; later tiers skip decided lines.
    pub verdict: Option<Verdict>,
    /// Routed (or escalated) past the cheaper tiers, to the LLM.
    pub to_llm: bool,
}

impl Pending {
    pub fn new(event: Event) -> Pending {
        Pending {
            event,
            verdict: None,
            to_llm: false,
        }
    }

    /// Undecided and not on its way to the LLM: what the rules and the model look at.
    pub fn is_open(&self) -> bool {
        self.verdict.is_none() && !self.to_llm
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
}

/// The ordered chain of tiers.
pub struct Tiers {
    chain: Vec<Box<dyn Tier>>,
    metrics: TierMetrics,
}

impl Tiers {
    pub fn new(chain: Vec<Box<dyn Tier>>, registry: &Registry) -> Tiers {
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
        };
        Tiers { chain, metrics }
    }

    /// Runs the chain over a batch and returns the records, in the batch's order.
    pub async fn label(&self, events: Vec<Event>) -> Vec<Record> {
        let mut batch: Vec<Pending> = events.into_iter().map(Pending::new).collect();
        for tier in &self.chain {
            if batch.iter().all(|p| p.verdict.is_some()) {
                break;
            }
            let started = Instant::now();
            tier.label(&mut batch).await;
            self.metrics
                .duration
                .with_label_values(&[tier.name().as_str()])
                .observe(started.elapsed().as_secs_f64());
        }
        let mut counted: Vec<((std::sync::Arc<str>, TierName), u64)> = Vec::new();
        let records: Vec<Record> = batch
            .into_iter()
            .map(|p| {
                let verdict = p.verdict.unwrap_or_else(|| {
                    if p.to_llm {
                        Verdict::fallback(TierName::Fallback, Some("llm_disabled"))
                    } else {
                        Verdict::fallback(TierName::None, None)
                    }
                });
                match counted
                    .iter_mut()
                    .find(|((l, t), _)| *t == verdict.tier && **l == *verdict.label)
                {
                    Some((_, n)) => *n += 1,
                    None => counted.push(((verdict.label.clone(), verdict.tier), 1)),
                }
                Record {
                    event: p.event,
                    verdict,
                }
            })
            .collect();
        for ((label, tier), n) in counted {
            self.metrics
                .records
                .with_label_values(&[&*label, tier.as_str()])
                .inc_by(n);
        }
        records
    }
}

/// The chain a configuration asks for: routing, then the rules.
pub fn from_config(loaded: &crate::config::Loaded, registry: &Registry) -> anyhow::Result<Tiers> {
    let chain: Vec<Box<dyn Tier>> = vec![
        Box::new(route::RouteTier::new(&loaded.config.tiers.route)),
        Box::new(regex::RegexTier::new(&loaded.rules)?),
    ];
    Ok(Tiers::new(chain, registry))
}
