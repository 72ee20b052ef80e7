//! The LLM tier: the lines routing sends straight to an LLM and the lines the model was not
//! sure of. They wait in one **bounded queue** (`queue_capacity` lines, counting those being
//! asked); `max_in_flight` requests run at once; when the queue is full `on_full` decides
//! (`fallback`: the line leaves at once as `Unclassified`, reason `llm_queue_full`; `block`:
//! the pipeline waits). A circuit breaker sends lines straight to their fallback while the
//! server is down. Verdicts go into the template cache (and `data_dir/llm-cache.jsonl`), so a
//! template is asked once; lines of a template already being asked wait for that answer.
//!
//! Two ways in: as a [`Tier`], waiting for the answers (`classify`, `POST /classify`, and the
//! agent with `ordered = true`); or [`LlmTier::dispatch`], where the line leaves the batch with
//! a claim on its chunk's acknowledgement and comes back later through [`LlmTier::take_output`],
//! so a slow LLM never holds up the lines the cheaper tiers decided.

pub mod answer;
pub mod breaker;
pub mod client;
pub mod config;
mod dispatch;
mod learn;
mod persist;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGauge};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::breaker::Breaker;
use self::client::ChatClient;
use self::config::{LlmPlan, OnFull};
use self::dispatch::{cached, counted_fallback, dispatch_jobs};
use self::learn::Learned;
use self::persist::Persisted;
use super::cache::{template, TemplateCache};
use super::{Escalated, Escalation, Pending, Tier, TiersPlan};
use crate::ack::Ack;
use crate::event::{Event, Record, Text, TierName, Verdict, UNCLASSIFIED};
use crate::metrics::Registry;

/// Answered lines waiting for the pipeline to hand them to the sinks.
const OUTPUT_QUEUE: usize = 1024;

/// A line the LLM tier answered after its batch left.
pub struct Answered {
    pub record: Record,
    /// The pipeline's claim on the line's chunk.
    pub ack: Ack,
}

/// Where an answer goes.
enum Reply {
    /// Someone awaits it (the `Tier` path).
    Wait(oneshot::Sender<Verdict>),
    /// It leaves as a record of its own (the agent's path).
    Deliver { event: Event, ack: Ack },
}

/// One line in the queue.
struct Job {
    /// Cache key: the template, prefixed by the route for routed lines (their label sets differ).
    key: String,
    message: Text,
    source: Arc<str>,
    labels: Arc<[Arc<str>]>,
    escalation: Escalation,
    reply: Reply,
    _slot: Slot,
}

/// A place in the bounded queue, given back when the line is answered (or dropped).
struct Slot {
    _permit: OwnedSemaphorePermit,
    depth: IntGauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.depth.dec();
    }
}

struct Metrics {
    fallbacks: IntCounterVec,
    depth: IntGauge,
    in_flight: IntGauge,
    breaker_open: IntGauge,
    asked: IntCounterVec,
}

/// What the dispatcher and its request tasks share.
struct Shared {
    client: ChatClient,
    breaker: Breaker,
    cache: Option<Arc<TemplateCache>>,
    persisted: Option<Persisted>,
    learned: Option<Mutex<Learned>>,
    /// Keys being asked now, with the lines that wait for the same answer.
    asking: Mutex<HashMap<String, Vec<Job>>>,
    requests: Arc<Semaphore>,
    out: mpsc::Sender<Answered>,
    metrics: Metrics,
}

pub struct LlmTier {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
    on_full: OnFull,
    route_labels: Vec<Arc<[Arc<str>]>>,
    /// Per route, what names it in cache keys: its source, or its message regex (not its
    /// index, so that reordering routes does not mix their answers).
    route_ids: Vec<String>,
    all_labels: Arc<[Arc<str>]>,
    output: Mutex<Option<mpsc::Receiver<Answered>>>,
    stop: CancellationToken,
}

impl LlmTier {
    /// The tier, or `None` (with one line saying why) when it is not configured to run.
    /// Starts its dispatcher: call inside a tokio runtime.
    pub fn build(
        plan: &TiersPlan,
        cache: Option<Arc<TemplateCache>>,
        registry: &Registry,
    ) -> anyhow::Result<Option<LlmTier>> {
        let settings = match &plan.llm {
            LlmPlan::Off(why) => {
                info!("LLM tier: off ({why}); lines routed to it leave as Unclassified, reason llm_disabled");
                return Ok(None);
            }
            LlmPlan::On(settings) => settings,
        };
        let llm = &settings.config;
        let all_labels = plan.labels.all();
        let route_labels: Vec<Arc<[Arc<str>]>> =
            plan.routes.iter().map(|r| r.labels.clone()).collect();
        let route_ids: Vec<String> = plan.routes.iter().map(|r| r.id()).collect();
        // A persisted answer is kept only if its label is still allowed for its key.
        let allowed = |key: &str, label: &str| -> bool {
            let allowed = match key.split_once('\u{0}') {
                Some((id, _)) => route_ids
                    .iter()
                    .position(|r| r == id)
                    .map(|i| &route_labels[i]),
                None => Some(&all_labels),
            };
            label == UNCLASSIFIED || allowed.is_some_and(|set| set.iter().any(|l| &**l == label))
        };
        let persisted = match (&cache, llm.persist_cache) {
            (Some(cache), true) => Some(Persisted::load(
                &plan.data_dir.join("llm-cache.jsonl"),
                cache,
                allowed,
            )?),
            _ => None,
        };
        let learned = match &llm.verdicts_out {
            Some(path) => Some(Mutex::new(Learned::open(path)?)),
            None => None,
        };
        let metrics = Metrics {
            fallbacks: registry.counter_vec(
                "logsieve_llm_fallbacks_total",
                "Lines bound for the LLM that left with a fallback label, by reason.",
                &["reason"],
            ),
            depth: registry.gauge(
                "logsieve_llm_queue_lines",
                "Lines waiting for or at the LLM (bounded by queue_capacity).",
            ),
            in_flight: registry.gauge(
                "logsieve_llm_in_flight_requests",
                "LLM requests under way.",
            ),
            breaker_open: registry.gauge(
                "logsieve_llm_breaker_open",
                "1 while the circuit breaker keeps lines away from the LLM.",
            ),
            asked: registry.counter_vec(
                "logsieve_llm_lines_total",
                "Lines that reached the LLM tier, by how they were answered: asked, coalesced (waited for the same template's answer), cache.",
                &["via"],
            ),
        };
        let (out, output) = mpsc::channel(OUTPUT_QUEUE);
        let shared = Arc::new(Shared {
            client: ChatClient::new(llm, settings.api_key.clone(), registry)?,
            breaker: Breaker::new(
                llm.breaker_failures,
                Duration::from_millis(llm.breaker_open_ms),
            ),
            cache,
            persisted,
            learned,
            asking: Mutex::new(HashMap::new()),
            requests: Arc::new(Semaphore::new(llm.max_in_flight)),
            out,
            metrics,
        });
        let (jobs, queue) = mpsc::unbounded_channel(); // bounded by `slots`
        let stop = CancellationToken::new();
        tokio::spawn(dispatch_jobs(shared.clone(), queue, stop.clone()));
        info!(
            endpoint = shared.client.endpoint(),
            model = %llm.model,
            queue_capacity = llm.queue_capacity,
            max_in_flight = llm.max_in_flight,
            "LLM tier: on"
        );
        Ok(Some(LlmTier {
            shared,
            jobs,
            slots: Arc::new(Semaphore::new(llm.queue_capacity)),
            capacity: llm.queue_capacity,
            on_full: llm.on_full,
            route_labels,
            route_ids,
            all_labels,
            output: Mutex::new(Some(output)),
            stop,
        }))
    }

    /// The answers to dispatched lines; the pipeline takes it once.
    pub fn take_output(&self) -> Option<mpsc::Receiver<Answered>> {
        self.output.lock().expect("output lock").take()
    }

    /// Hands a line to the LLM without waiting for the answer. Returns its record when it is
    /// decided at once (cached template, full queue, open breaker); otherwise it comes back
    /// through [`LlmTier::take_output`], holding `ack` until then.
    pub async fn dispatch(&self, line: Escalated, ack: Ack) -> Option<(Record, Ack)> {
        let key = self.key_of(&line.escalation, line.template, &line.event.message);
        let Escalated {
            mut event,
            escalation,
            ..
        } = line;
        // It may wait for the LLM for long: it must not hold the rest of its read meanwhile.
        event.message.detach();
        let verdict = match self.admit(&key, &escalation).await {
            Err(verdict) => verdict,
            Ok(slot) => {
                let job = Job {
                    key,
                    message: event.message.clone(),
                    source: event.source.clone(),
                    labels: self.labels_for(&escalation),
                    escalation,
                    reply: Reply::Deliver { event, ack },
                    _slot: slot,
                };
                let Err(mpsc::error::SendError(job)) = self.jobs.send(job) else {
                    return None;
                };
                let verdict = fallback(&job.escalation, "llm_stopped");
                let Reply::Deliver { event, ack } = job.reply else {
                    unreachable!("a dispatched job delivers")
                };
                return Some((Record { event, verdict }, ack));
            }
        };
        Some((Record { event, verdict }, ack))
    }

    /// Waits until every line handed to the LLM is answered, or `give_up`; then stops. What is
    /// still queued after `give_up` is dropped unacknowledged (read again after a restart);
    /// returns how many lines that was.
    pub async fn drain(&self, give_up: &CancellationToken) -> usize {
        // Every place in the queue given back: every line answered.
        let capacity = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        let abandoned = tokio::select! {
            _ = self.slots.acquire_many(capacity) => 0,
            _ = give_up.cancelled() => self.capacity - self.slots.available_permits(),
        };
        if abandoned > 0 {
            warn!("LLM tier: giving up at shutdown on {abandoned} lines still waiting for answers (read again after a restart)");
        }
        self.stop.cancel();
        abandoned
    }

    /// One line for the log at shutdown: what the LLM cost and what it was spared.
    pub fn summary(&self) -> String {
        let c = &self.shared.client;
        let m = &self.shared.metrics;
        let count = |v: &IntCounterVec, l: &str| v.with_label_values(&[l]).get();
        format!(
            "LLM tier: {} lines asked, {} answered by a template already asked, {} from the cache; {} requests ({} ok); tokens {} prompt / {} completion; fallbacks: {}",
            count(&m.asked, "asked"),
            count(&m.asked, "coalesced"),
            count(&m.asked, "cache"),
            c.requests_sent(),
            c.requests_ok(),
            c.tokens("prompt"),
            c.tokens("completion"),
            fallback_counts(&m.fallbacks),
        )
    }

    /// The line's cache key: its template, prefixed by its route for routed lines (their
    /// label sets differ).
    fn key_of(&self, escalation: &Escalation, template_: Option<String>, message: &str) -> String {
        let t = template_.unwrap_or_else(|| template(message));
        match escalation {
            Escalation::Routed { route } => format!("{}\u{0}{t}", self.route_ids[*route]),
            _ => t,
        }
    }

    fn labels_for(&self, escalation: &Escalation) -> Arc<[Arc<str>]> {
        match escalation {
            Escalation::Routed { route } => self.route_labels[*route].clone(),
            _ => self.all_labels.clone(),
        }
    }

    /// A place in the queue, or the verdict the line leaves with at once.
    async fn admit(&self, key: &str, escalation: &Escalation) -> Result<Slot, Verdict> {
        let shared = &self.shared;
        if let Some(verdict) = cached(shared, key) {
            return Err(verdict);
        }
        if shared.breaker.is_open() {
            return Err(counted_fallback(shared, escalation, "llm_circuit_open"));
        }
        let permit = match self.on_full {
            OnFull::Fallback => self.slots.clone().try_acquire_owned().ok(),
            OnFull::Block => self.slots.clone().acquire_owned().await.ok(),
        };
        match permit {
            Some(permit) => {
                shared.metrics.depth.inc();
                Ok(Slot {
                    _permit: permit,
                    depth: shared.metrics.depth.clone(),
                })
            }
            None => Err(counted_fallback(shared, escalation, "llm_queue_full")),
        }
    }
}

#[async_trait]
impl Tier for LlmTier {
    fn name(&self) -> TierName {
        TierName::Llm
    }

    /// Asks about every line bound for the LLM and waits for the answers.
    async fn label(&self, batch: &mut [Pending]) {
        let mut waiting = Vec::new();
        for (i, pending) in batch.iter_mut().enumerate() {
            let Some(escalation) = pending.to_llm.clone().filter(|_| pending.verdict.is_none())
            else {
                continue;
            };
            let key = self.key_of(
                &escalation,
                pending.template.clone(),
                &pending.event.message,
            );
            match self.admit(&key, &escalation).await {
                Err(verdict) => pending.verdict = Some(verdict),
                Ok(slot) => {
                    let (tx, rx) = oneshot::channel();
                    let job = Job {
                        key,
                        message: pending.event.message.clone(),
                        source: pending.event.source.clone(),
                        labels: self.labels_for(&escalation),
                        escalation: escalation.clone(),
                        reply: Reply::Wait(tx),
                        _slot: slot,
                    };
                    if self.jobs.send(job).is_err() {
                        pending.verdict = Some(fallback(&escalation, "llm_stopped"));
                        continue;
                    }
                    waiting.push((i, rx, escalation));
                }
            }
        }
        for (i, rx, escalation) in waiting {
            batch[i].verdict = Some(
                rx.await
                    .unwrap_or_else(|_| fallback(&escalation, "llm_stopped")),
            );
        }
    }
}

/// The verdict of a line the LLM did not answer: `Unclassified`, with the reason, keeping the
/// model's confidence for a line that escalated for want of it.
pub(crate) fn fallback(escalation: &Escalation, reason: &'static str) -> Verdict {
    let confidence = match escalation {
        Escalation::LowConfidence { confidence, .. } => Some(*confidence),
        _ => None,
    };
    Verdict {
        confidence,
        ..Verdict::fallback(TierName::Fallback, Some(reason))
    }
}

fn fallback_counts(fallbacks: &IntCounterVec) -> String {
    use prometheus::core::Collector;
    let mut parts = Vec::new();
    for family in fallbacks.collect() {
        for m in family.get_metric() {
            let reason = m
                .get_label()
                .first()
                .map(|l| l.value().to_string())
                .unwrap_or_default();
            parts.push(format!("{reason} {}", m.get_counter().get_value()));
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
