//! The tier chain: the cheapest tier first, each labelling what it can in a whole batch and
//! leaving the rest for the next. Every tier sits behind the one small [`Tier`] trait, so the
//! pipeline, `classify` and `POST /classify` share the same chain and know nothing of its parts.
//! A line no tier decides leaves as `Unclassified` (tier `none`); a line meant for an LLM that
//! is not there leaves as tier `fallback` with the reason it escalated (`llm_disabled` when
//! routed, `low_confidence` when the model was unsure, with its best guess's confidence,
//! `model_error` when the model could not run on it).
//!
//! The LLM tier stands apart from the chain, and only [`Tiers`] knows it: [`Tiers::label`] waits
//! for its answers; the agent's way, [`Tiers::label_fast`] then [`Tiers::label_rest`], hands it
//! the lines and lets the rest of the batch go on, and the answers come back later as
//! [`LateRecords`]; [`Tiers::drain`] waits for what it still holds at shutdown. The agent's way
//! also lets the lines the fast tiers (routing, rules, cache) decided leave before a slow tier
//! (the model) runs on the rest of their batch. With `ordered = true` nothing leaves early.
//!
//! Each tier owns its section of the config (`[[tiers.route]]`, `[tiers.regex]`, …) and its
//! checks; [`TiersConfig::plan`] gathers them into the [`TiersPlan`] that [`Tiers::build`] runs.

pub mod cache;
pub mod llm;
pub mod model;
pub mod regex;
pub mod route;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{HistogramVec, IntCounterVec};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::Ack;
use crate::config::{ConfigErrors, RulesAt, Section};
use crate::event::{Event, Record, TierName, Verdict, UNCLASSIFIED};
use crate::metrics::Registry;

/// The seed's nine labels, the default `labels`; `Unclassified` is always allowed besides.
pub const SEED_LABELS: &[&str] = &[
    "HTTP Status",
    "Critical Error",
    "Security Alert",
    "Error",
    "System Notification",
    "Resource Usage",
    "User Action",
    "Workflow Error",
    "Deprecation Warning",
];

/// The labels tiers may give (the config's `labels`); `Unclassified` is always allowed too.
#[derive(Debug, Clone)]
pub struct Labels(Arc<[Arc<str>]>);

impl Labels {
    pub fn new(names: &[String]) -> Labels {
        Labels(names.iter().map(|n| Arc::from(n.as_str())).collect())
    }

    /// Whether a tier may give `label`.
    pub fn allows(&self, label: &str) -> bool {
        label == UNCLASSIFIED || self.0.iter().any(|l| &**l == label)
    }

    pub fn all(&self) -> Arc<[Arc<str>]> {
        self.0.clone()
    }

    /// `a, b, c`, for messages.
    pub fn list(&self) -> String {
        self.0.iter().map(|l| &**l).collect::<Vec<_>>().join(", ")
    }
}

/// `[tiers.*]`: the labelling tiers, each section documented with its tier.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    #[serde(default)]
    pub route: Vec<route::RouteConfig>,
    #[serde(default)]
    pub regex: regex::RegexConfig,
    /// The model tier; off when absent.
    pub model: Option<model::ModelConfig>,
    #[serde(default)]
    pub cache: cache::CacheConfig,
    /// The LLM tier; off when absent, disabled, or its API key is not there.
    pub llm: Option<llm::config::LlmConfig>,
}

/// The tiers' checked settings.
pub struct TiersPlan {
    pub labels: Labels,
    pub routes: Vec<route::RoutePlan>,
    pub regex: regex::RegexPlan,
    pub cache: cache::CacheConfig,
    pub model: Option<model::ModelPlan>,
    pub llm: llm::config::LlmPlan,
    /// `[tiers.llm] ordered`: the records of a batch leave together, in order.
    pub ordered: bool,
    /// Where the LLM tier keeps its answers across restarts.
    pub data_dir: PathBuf,
}

impl TiersConfig {
    /// Checks every tier's section (`at` is `[tiers]`); the rules file is read from `rules_at`.
    pub fn plan(
        self,
        at: &Section,
        labels: &Labels,
        data_dir: &Path,
        rules_at: &RulesAt,
        errs: &mut ConfigErrors,
    ) -> Option<TiersPlan> {
        let route_list = at.list("route", errs);
        let routes: Vec<route::RoutePlan> = self
            .route
            .into_iter()
            .zip(&route_list)
            .filter_map(|(r, at)| r.plan(at, labels, errs))
            .collect();
        let regex = self.regex.plan(&at.table("regex"), labels, rules_at, errs);
        let model = match self.model {
            Some(m) => m.plan(&at.table("model"), labels, errs),
            None => Some(None),
        };
        let ordered = self.llm.as_ref().is_some_and(|l| l.ordered);
        let llm = llm::config::LlmConfig::plan(self.llm, &at.table("llm"), errs);
        Some(TiersPlan {
            labels: labels.clone(),
            routes,
            regex: regex?,
            cache: self.cache,
            model: model?,
            llm: llm?,
            ordered,
            data_dir: data_dir.to_path_buf(),
        })
    }
}

impl TiersPlan {
    /// One line per tier, in the order they run, and a warning when none labels anything.
    pub fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.routes.iter().map(|r| r.describe()).collect();
        lines.push(self.regex.describe());
        lines.push(match &self.model {
            Some(m) => m.describe(),
            None => "tier model: off".into(),
        });
        lines.push(self.llm.describe());
        if let Some(warning) = self.labels_nothing() {
            lines.push(format!("warning: {warning}"));
        }
        lines
    }

    /// Says so when no tier in force can label a line, so every line would leave as
    /// `Unclassified` (tier `none`).
    pub fn labels_nothing(&self) -> Option<String> {
        let llm_gets_lines = !self.routes.is_empty() || self.model.is_some();
        let labels = !self.regex.rules.is_empty()
            || self.model.is_some()
            || (self.llm.is_on() && llm_gets_lines);
        (!labels).then(|| {
            "no tier labels anything: every line leaves as Unclassified (tier none); add rules \
             ([tiers.regex] rules = \"rules.toml\"), the model ([tiers.model]), or an LLM \
             ([tiers.llm]) with routes to it"
                .to_string()
        })
    }

    /// The sources routed straight to the LLM.
    pub fn routed_sources(&self) -> Vec<&str> {
        self.routes.iter().filter_map(|r| r.source()).collect()
    }
}

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

    pub fn escalate(&mut self, why: Escalation) {
        self.to_llm = Some(why);
    }

    /// The verdict for a line no tier decided.
    fn undecided(&self) -> Verdict {
        match &self.to_llm {
            None => Verdict::fallback(TierName::None, None),
            Some(escalation) => llm::fallback(escalation, escalation.unanswered_reason()),
        }
    }
}

impl Escalation {
    /// The reason a line escalated this way leaves with when no LLM answers it.
    fn unanswered_reason(&self) -> &'static str {
        match self {
            Escalation::Routed { .. } => "llm_disabled",
            Escalation::LowConfidence { .. } => "low_confidence",
            Escalation::ModelFailed => "model_error",
        }
    }
}

/// A line the cheap tiers sent on to the LLM, with why.
#[derive(Debug)]
pub struct Escalated {
    pub event: Event,
    pub escalation: Escalation,
    pub template: Option<String>,
}

/// A tier labels what it can in a batch and leaves the rest for the next tier.
#[async_trait]
pub trait Tier: Send + Sync {
    fn name(&self) -> TierName;
    async fn label(&self, batch: &mut [Pending]);
    /// A tier whose run over a batch can take long (the model): in the agent, the lines the
    /// tiers before it decided leave without waiting for it.
    fn is_slow(&self) -> bool {
        false
    }
}

#[derive(Clone)]
struct TierMetrics {
    duration: HistogramVec,
    records: IntCounterVec,
    saved: IntCounterVec,
}

impl TierMetrics {
    fn register(registry: &Registry) -> TierMetrics {
        TierMetrics {
            duration: registry.histogram_vec(
                "logsieve_tier_duration_seconds",
                "Time a tier spent on one batch.",
                &["tier"],
                prometheus::exponential_buckets(0.00001, 4.0, 12).expect("valid buckets"),
            ),
            records: registry.counter_vec(
                "logsieve_records_total",
                "Records labelled, by label and by the tier that decided.",
                &["label", "tier"],
            ),
            saved: registry.counter_vec(
                "logsieve_llm_saved_lines_total",
                "Lines a cheaper tier decided, so no LLM was asked, by tier (regex, cache, model).",
                &["tier"],
            ),
        }
    }

    /// Counts records by label and tier (and the ones a cheap tier kept from the LLM).
    fn count<'a>(&self, verdicts: impl Iterator<Item = &'a Verdict>) {
        let mut counted: Vec<((&str, TierName), u64)> = Vec::new();
        for v in verdicts {
            match counted
                .iter_mut()
                .find(|((l, t), _)| *t == v.tier && *l == &*v.label)
            {
                Some((_, n)) => *n += 1,
                None => counted.push(((&v.label, v.tier), 1)),
            }
        }
        for ((label, tier), n) in counted {
            self.records
                .with_label_values(&[label, tier.as_str()])
                .inc_by(n);
            if matches!(tier, TierName::Regex | TierName::Cache | TierName::Model) {
                self.saved.with_label_values(&[tier.as_str()]).inc_by(n);
            }
        }
    }
}

/// The ordered chain of tiers, and the LLM tier behind it.
pub struct Tiers {
    chain: Vec<Box<dyn Tier>>,
    /// Where the slow tiers begin in `chain` (its length when there is none).
    slow_from: usize,
    llm: Option<llm::LlmTier>,
    /// Keep each batch's records together and in order (no early leaving, no late records).
    ordered: bool,
    metrics: TierMetrics,
    /// Cancelled once the LLM tier has answered all it held: [`LateRecords`] then ends.
    late_done: CancellationToken,
}

impl Tiers {
    pub fn new(
        chain: Vec<Box<dyn Tier>>,
        llm: Option<llm::LlmTier>,
        ordered: bool,
        registry: &Registry,
    ) -> Tiers {
        Tiers {
            slow_from: chain
                .iter()
                .position(|t| t.is_slow())
                .unwrap_or(chain.len()),
            chain,
            llm,
            ordered,
            metrics: TierMetrics::register(registry),
            late_done: CancellationToken::new(),
        }
    }

    /// The chain a plan asks for: routing, the rules, then (when configured) the template
    /// cache and the model; and the LLM tier. Starts the LLM tier's dispatcher, so call it
    /// inside a tokio runtime.
    pub fn build(plan: &TiersPlan, registry: &Registry) -> anyhow::Result<Tiers> {
        let mut chain: Vec<Box<dyn Tier>> = vec![
            Box::new(route::RouteTier::new(&plan.routes)),
            Box::new(regex::RegexTier::new(&plan.regex)),
        ];
        let cache = (plan.cache.capacity > 0)
            .then(|| cache::TemplateCache::new(plan.cache.capacity, registry));
        if let Some(model) = &plan.model {
            if let Some(cache) = &cache {
                chain.push(Box::new(cache::CacheTier::new(cache.clone())));
            }
            chain.push(Box::new(model.build(cache.clone(), registry)?));
        }
        let llm = llm::LlmTier::build(plan, cache, registry)?;
        Ok(Tiers::new(chain, llm, plan.ordered, registry))
    }

    /// Runs every tier over a batch, waiting for the LLM's answers, and returns the records in
    /// the batch's order.
    pub async fn label(&self, events: Vec<Event>) -> Vec<Record> {
        let batch = self.run_chain(events).await;
        self.wait_for_llm(batch).await
    }

    /// Asks the LLM tier (if any) and waits for its answers: the batch's records, in order.
    async fn wait_for_llm(&self, mut batch: Vec<Pending>) -> Vec<Record> {
        if let Some(llm) = &self.llm {
            self.timed(llm, &mut batch).await;
        }
        self.finish(batch, None)
    }

    /// The agent's way, first half: runs the fast tiers (routing, the rules, the cache). When
    /// some lines are left for a slow tier (the model) and the output need not keep its order,
    /// the lines decided so far leave now: returns their records, and the rest of the batch
    /// for [`Tiers::label_rest`]. Otherwise returns no records, and the whole batch.
    pub async fn label_fast(&self, events: Vec<Event>) -> (Vec<Record>, Labelling) {
        let mut batch: Vec<Pending> = events.into_iter().map(Pending::new).collect();
        self.run_tiers(&self.chain[..self.slow_from], &mut batch)
            .await;
        let slow = self.slow_from < self.chain.len() && batch.iter().any(Pending::is_open);
        let leave_early = slow && !self.ordered && batch.iter().any(|p| p.verdict.is_some());
        if !leave_early {
            let index = (0..batch.len()).collect();
            return (Vec::new(), Labelling { batch, index, slow });
        }
        let (mut early, mut rest) = (Vec::new(), Labelling::default());
        rest.slow = true;
        for (i, mut p) in batch.into_iter().enumerate() {
            match p.verdict.take() {
                Some(verdict) => early.push(Record {
                    event: p.event,
                    verdict,
                }),
                None => {
                    rest.batch.push(p);
                    rest.index.push(i);
                }
            }
        }
        self.metrics.count(early.iter().map(|r| &r.verdict));
        (early, rest)
    }

    /// The agent's way, second half: the slow tiers, then the LLM tier, which is handed its
    /// lines, each with a claim on its chunk (`ack_for(i)` for line i of the batch); they
    /// leave later, as [`LateRecords`]. Returns the records that leave now: the other lines in
    /// order, then the LLM-bound lines the LLM tier decided at once (cached template, full
    /// queue, open breaker). With `ordered = true` (or no LLM) the LLM's answers are waited
    /// for and the records keep the batch's order.
    pub async fn label_rest(&self, rest: Labelling, ack_for: impl Fn(usize) -> Ack) -> Vec<Record> {
        let Labelling {
            mut batch, index, ..
        } = rest;
        self.run_tiers(&self.chain[self.slow_from..], &mut batch)
            .await;
        let Some(llm) = self.llm.as_ref().filter(|_| !self.ordered) else {
            return self.wait_for_llm(batch).await;
        };
        let mut leaving = Vec::new();
        let mut records = self.finish(batch, Some(&mut leaving));
        let first_decided = records.len();
        for (i, line) in leaving {
            if let Some((record, ack)) = llm.dispatch(line, ack_for(index[i])).await {
                ack.delivered(); // it leaves with its batch, whose acks cover it
                records.push(record);
            }
        }
        self.metrics
            .count(records[first_decided..].iter().map(|r| &r.verdict));
        records
    }

    /// Whether each batch's records leave together and in order (`ordered = true`).
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// The records the LLM answers after their batch left; taken once, by the pipeline. Ends
    /// after [`Tiers::drain`].
    pub fn take_late(&self) -> Option<LateRecords> {
        let answers = self.llm.as_ref()?.take_output()?;
        Some(LateRecords {
            answers,
            done: self.late_done.clone(),
            metrics: self.metrics.clone(),
        })
    }

    /// At shutdown: waits until the LLM tier has answered every line it holds (or `give_up`),
    /// then ends [`LateRecords`]. Returns how many lines it gave up on (not delivered).
    pub async fn drain(&self, give_up: &CancellationToken) -> usize {
        let mut abandoned = 0;
        if let Some(llm) = &self.llm {
            abandoned = llm.drain(give_up).await;
        }
        self.late_done.cancel();
        abandoned
    }

    /// One line for the log at shutdown: what the LLM cost and what it was spared.
    pub fn summary(&self) -> Option<String> {
        self.llm.as_ref().map(|l| l.summary())
    }

    async fn run_chain(&self, events: Vec<Event>) -> Vec<Pending> {
        let mut batch: Vec<Pending> = events.into_iter().map(Pending::new).collect();
        self.run_tiers(&self.chain, &mut batch).await;
        batch
    }

    /// Runs `tiers` in turn over the batch, until no line is open.
    async fn run_tiers(&self, tiers: &[Box<dyn Tier>], batch: &mut [Pending]) {
        for tier in tiers {
            if batch.iter().all(|p| !p.is_open()) {
                break;
            }
            self.timed(tier.as_ref(), batch).await;
        }
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
        mut leaving: Option<&mut Vec<(usize, Escalated)>>,
    ) -> Vec<Record> {
        let mut records = Vec::with_capacity(batch.len());
        for (i, mut p) in batch.into_iter().enumerate() {
            if let Some(out) = leaving.as_mut() {
                if let (None, Some(escalation)) = (&p.verdict, p.to_llm.take()) {
                    out.push((
                        i,
                        Escalated {
                            event: p.event,
                            escalation,
                            template: p.template,
                        },
                    ));
                    continue;
                }
            }
            let verdict = p.verdict.take().unwrap_or_else(|| p.undecided());
            records.push(Record {
                event: p.event,
                verdict,
            });
        }
        self.metrics.count(records.iter().map(|r| &r.verdict));
        records
    }
}

/// A batch between [`Tiers::label_fast`] and [`Tiers::label_rest`]: its lines not yet on their
/// way, each with its index in the batch.
#[derive(Debug, Default)]
pub struct Labelling {
    batch: Vec<Pending>,
    index: Vec<usize>,
    /// Some of its lines are left for a slow tier.
    slow: bool,
}

impl Labelling {
    /// Whether [`Tiers::label_rest`] will run a slow tier (the model) on it.
    pub fn is_slow(&self) -> bool {
        self.slow
    }
}

/// Records the LLM tier answered after their batch left, each with its claim on its chunk,
/// gathered as they come (up to 256 at a time).
pub struct LateRecords {
    answers: mpsc::Receiver<llm::Answered>,
    done: CancellationToken,
    metrics: TierMetrics,
}

impl LateRecords {
    /// The next records that are ready, or `None` once the LLM tier was drained.
    pub async fn next(&mut self) -> Option<(Vec<Record>, Vec<Ack>)> {
        let first = tokio::select! {
            biased;
            answer = self.answers.recv() => answer?,
            _ = self.done.cancelled() => self.answers.try_recv().ok()?,
        };
        let (mut records, mut acks) = (Vec::new(), Vec::new());
        let mut next = Some(first);
        while let Some(llm::Answered { record, ack }) = next.take() {
            records.push(record);
            acks.push(ack);
            if records.len() < 256 {
                next = self.answers.try_recv().ok();
            }
        }
        self.metrics.count(records.iter().map(|r| &r.verdict));
        Some((records, acks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Origin;

    /// Decides the open lines that contain `only` as `tier` would: the rules ("rule"), or the
    /// model (every line left; a slow tier).
    struct Deciding {
        tier: TierName,
        only: &'static str,
    }

    #[async_trait]
    impl Tier for Deciding {
        fn name(&self) -> TierName {
            self.tier
        }
        async fn label(&self, batch: &mut [Pending]) {
            for p in batch.iter_mut() {
                if p.is_open() && p.event.message.contains(self.only) {
                    p.verdict = Some(Verdict {
                        label: Arc::from("Error"),
                        tier: self.tier,
                        confidence: None,
                        rule: None,
                        reason: None,
                    });
                }
            }
        }
        fn is_slow(&self) -> bool {
            self.tier == TierName::Model
        }
    }

    fn tiers(ordered: bool) -> Tiers {
        let chain: Vec<Box<dyn Tier>> = vec![
            Box::new(Deciding {
                tier: TierName::Regex,
                only: "rule",
            }),
            Box::new(Deciding {
                tier: TierName::Model,
                only: "",
            }),
        ];
        Tiers::new(chain, None, ordered, &Registry::default())
    }

    fn events(messages: &[&str]) -> Vec<Event> {
        let timestamp: Arc<str> = Arc::from("2026-01-01T00:00:00.000Z");
        messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let origin = Origin::Row { row: i as u64 + 1 };
                Event::plain(timestamp.clone(), "app", m.to_string(), origin)
            })
            .collect()
    }

    fn said(records: &[Record]) -> Vec<(String, TierName)> {
        records
            .iter()
            .map(|r| (r.event.message.to_string(), r.verdict.tier))
            .collect()
    }

    #[tokio::test]
    async fn the_rules_lines_leave_before_the_model_runs_on_the_rest_unless_ordered() {
        let batch = ["rule a", "model b", "rule c", "model d"];
        let (early, rest) = tiers(false).label_fast(events(&batch)).await;
        assert!(rest.is_slow());
        assert_eq!(
            said(&early),
            [
                ("rule a".into(), TierName::Regex),
                ("rule c".into(), TierName::Regex)
            ]
        );
        let later = tiers(false).label_rest(rest, |_| Ack::none()).await;
        assert_eq!(
            said(&later),
            [
                ("model b".into(), TierName::Model),
                ("model d".into(), TierName::Model)
            ]
        );

        let (early, rest) = tiers(true).label_fast(events(&batch)).await;
        assert!(early.is_empty(), "ordered: nothing leaves early");
        let all = tiers(true).label_rest(rest, |_| Ack::none()).await;
        let order: Vec<String> = said(&all).into_iter().map(|(m, _)| m).collect();
        assert_eq!(order, batch);
    }

    #[tokio::test]
    async fn a_batch_the_fast_tiers_decide_whole_leaves_once_and_skips_the_model() {
        let (early, rest) = tiers(false).label_fast(events(&["rule a", "rule b"])).await;
        assert!(early.is_empty());
        assert!(!rest.is_slow());
        let records = tiers(false).label_rest(rest, |_| Ack::none()).await;
        assert_eq!(records.len(), 2);

        let (early, rest) = tiers(false).label_fast(events(&["model a"])).await;
        assert!(early.is_empty(), "nothing decided, nothing leaves early");
        assert!(rest.is_slow());
    }
}
