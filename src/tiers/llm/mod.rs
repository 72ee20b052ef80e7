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

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGauge, Registry};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::breaker::{Breaker, Permit};
use self::client::{ChatClient, Question};
use super::cache::{template, TemplateCache};
use super::{Escalation, Pending, Tier};
use crate::ack::Ack;
use crate::config::{Config, LlmConfig, OnFull};
use crate::event::{Event, Record, TierName, Verdict, UNCLASSIFIED};
use crate::metrics;

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
    message: String,
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
    persisted: Option<Mutex<std::fs::File>>,
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
    ordered: bool,
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
    pub fn from_config(
        config: &Config,
        cache: Option<Arc<TemplateCache>>,
        registry: &Registry,
    ) -> anyhow::Result<Option<LlmTier>> {
        let Some(llm) = &config.tiers.llm else {
            info!("LLM tier: off (no [tiers.llm]); lines routed to it leave as Unclassified, reason llm_disabled");
            return Ok(None);
        };
        if let Some(why) = llm.off_because() {
            info!("LLM tier: off ({why}); lines routed to it leave as Unclassified, reason llm_disabled");
            return Ok(None);
        }
        let key = llm.api_key().map_err(anyhow::Error::msg)?;
        let tier = LlmTier::start(config, llm, key, cache, registry)?;
        info!(
            endpoint = tier.shared.client.endpoint(),
            model = %llm.model,
            queue_capacity = llm.queue_capacity,
            max_in_flight = llm.max_in_flight,
            "LLM tier: on"
        );
        Ok(Some(tier))
    }

    fn start(
        config: &Config,
        llm: &LlmConfig,
        key: Option<String>,
        cache: Option<Arc<TemplateCache>>,
        registry: &Registry,
    ) -> anyhow::Result<LlmTier> {
        let labels =
            |names: Vec<&str>| -> Arc<[Arc<str>]> { names.into_iter().map(Arc::from).collect() };
        let all_labels = labels(config.labels.iter().map(String::as_str).collect());
        let route_labels: Vec<Arc<[Arc<str>]>> = config
            .tiers
            .route
            .iter()
            .map(|r| labels(r.allowed_labels(&config.labels)))
            .collect();
        let route_ids: Vec<String> = config.tiers.route.iter().map(route_id).collect();
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
            (Some(cache), true) => Some(Mutex::new(load_persisted(
                &config.data_dir.join("llm-cache.jsonl"),
                cache,
                allowed,
            )?)),
            _ => None,
        };
        let learned = match &llm.verdicts_out {
            Some(path) => Some(Mutex::new(Learned::open(path)?)),
            None => None,
        };
        let metrics = Metrics {
            fallbacks: metrics::counter_vec(
                registry,
                "logsieve_llm_fallbacks_total",
                "Lines bound for the LLM that left with a fallback label, by reason.",
                &["reason"],
            ),
            depth: metrics::gauge(
                registry,
                "logsieve_llm_queue_lines",
                "Lines waiting for or at the LLM (bounded by queue_capacity).",
            ),
            in_flight: metrics::gauge(
                registry,
                "logsieve_llm_in_flight_requests",
                "LLM requests under way.",
            ),
            breaker_open: metrics::gauge(
                registry,
                "logsieve_llm_breaker_open",
                "1 while the circuit breaker keeps lines away from the LLM.",
            ),
            asked: metrics::counter_vec(
                registry,
                "logsieve_llm_lines_total",
                "Lines that reached the LLM tier, by how they were answered: asked, coalesced (waited for the same template's answer), cache.",
                &["via"],
            ),
        };
        let (out, output) = mpsc::channel(OUTPUT_QUEUE);
        let shared = Arc::new(Shared {
            client: ChatClient::new(llm, key, registry)?,
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
        Ok(LlmTier {
            shared,
            jobs,
            slots: Arc::new(Semaphore::new(llm.queue_capacity)),
            capacity: llm.queue_capacity,
            on_full: llm.on_full,
            ordered: llm.ordered,
            route_labels,
            route_ids,
            all_labels,
            output: Mutex::new(Some(output)),
            stop,
        })
    }

    /// Whether the agent should wait for a batch's answers to keep its records in order.
    pub fn ordered(&self) -> bool {
        self.ordered
    }

    /// The answers to dispatched lines; the pipeline takes it once.
    pub fn take_output(&self) -> Option<mpsc::Receiver<Answered>> {
        self.output.lock().expect("output lock").take()
    }

    /// Hands a line to the LLM without waiting for the answer. Returns its record when it is
    /// decided at once (cached template, full queue, open breaker); otherwise it comes back
    /// through [`LlmTier::take_output`], holding `ack` until then.
    pub async fn dispatch(&self, pending: Pending, ack: Ack) -> Option<(Record, Ack)> {
        let (key, escalation) = self.key_of(&pending);
        let event = pending.event;
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
    /// still queued after `give_up` is dropped unacknowledged (read again after a restart).
    pub async fn drain(&self, give_up: &CancellationToken) {
        while self.slots.available_permits() < self.capacity && !give_up.is_cancelled() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = give_up.cancelled() => {}
            }
        }
        self.stop.cancel();
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

    fn key_of(&self, pending: &Pending) -> (String, Escalation) {
        let escalation = pending
            .to_llm
            .clone()
            .unwrap_or(Escalation::Routed { route: 0 });
        let t = pending
            .template
            .clone()
            .unwrap_or_else(|| template(&pending.event.message));
        let key = match escalation {
            Escalation::Routed { route } => match self.route_ids.get(route) {
                Some(id) => format!("{id}\u{0}{t}"),
                None => t,
            },
            _ => t,
        };
        (key, escalation)
    }

    fn labels_for(&self, escalation: &Escalation) -> Arc<[Arc<str>]> {
        match escalation {
            Escalation::Routed { route } => self
                .route_labels
                .get(*route)
                .cloned()
                .unwrap_or_else(|| self.all_labels.clone()),
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
            if !pending.is_bound_for_llm() {
                continue;
            }
            let (key, escalation) = self.key_of(pending);
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

/// What names a route in cache keys.
fn route_id(route: &crate::config::RouteConfig) -> String {
    match (&route.source, &route.message) {
        (Some(source), _) => format!("route source={}", source.get_ref()),
        (None, Some(message)) => format!("route message={}", message.get_ref()),
        (None, None) => "route".into(),
    }
}

/// The verdict of a line the LLM did not answer: `Unclassified`, with the reason, keeping the
/// model's confidence for a line that escalated for want of it.
fn fallback(escalation: &Escalation, reason: &'static str) -> Verdict {
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

/// Takes jobs off the queue in order: answers what the cache or an answer under way can, asks
/// the LLM about the rest with at most `max_in_flight` requests out.
async fn dispatch_jobs(
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    stop: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            job = queue.recv() => match job { Some(job) => job, None => return },
            _ = stop.cancelled() => return,
        };
        let Some(job) = answer_from_cache(&shared, job).await else {
            continue;
        };
        let Some(job) = wait_for_same_template(&shared, job) else {
            continue;
        };
        let permit = tokio::select! {
            permit = shared.requests.clone().acquire_owned() => permit.expect("never closed"),
            _ = stop.cancelled() => return,
        };
        // Answered while this job waited for a request slot? (The slot is given back before
        // the answer is handed on, which may wait for the sinks.)
        if let Some(verdict) = cached(&shared, &job.key) {
            drop(permit);
            finish(&shared, job, verdict).await;
            continue;
        }
        match shared.breaker.permit() {
            Permit::Refused => {
                drop(permit);
                let verdict = counted_fallback(&shared, &job.escalation, "llm_circuit_open");
                finish(&shared, job, verdict).await;
                continue;
            }
            Permit::Go | Permit::Probe => {}
        }
        shared
            .asking
            .lock()
            .expect("asking lock")
            .insert(job.key.clone(), Vec::new());
        shared.metrics.asked.with_label_values(&["asked"]).inc();
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = ask(&shared, job, permit) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// The cached answer for a key, counted as such.
fn cached(shared: &Shared, key: &str) -> Option<Verdict> {
    let cached = shared.cache.as_ref().and_then(|c| c.get(key))?;
    shared.metrics.asked.with_label_values(&["cache"]).inc();
    Some(Verdict {
        tier: TierName::Cache,
        ..cached
    })
}

/// Answers a job from the cache; gives it back when its template is not there.
async fn answer_from_cache(shared: &Shared, job: Job) -> Option<Job> {
    let Some(verdict) = cached(shared, &job.key) else {
        return Some(job);
    };
    finish(shared, job, verdict).await;
    None
}

/// Parks a job behind the request already asking about its template; gives it back when none is.
fn wait_for_same_template(shared: &Shared, job: Job) -> Option<Job> {
    let mut asking = shared.asking.lock().expect("asking lock");
    match asking.get_mut(&job.key) {
        Some(followers) => {
            shared.metrics.asked.with_label_values(&["coalesced"]).inc();
            followers.push(job);
            None
        }
        None => Some(job),
    }
}

/// Asks the LLM about one job's line and answers it and every line that waited for it.
async fn ask(shared: &Shared, job: Job, permit: OwnedSemaphorePermit) {
    let mut asking = Asking {
        shared,
        key: job.key.clone(),
        settled: false,
    };
    shared.metrics.in_flight.inc();
    let answer = shared
        .client
        .ask(&Question {
            message: &job.message,
            source: &job.source,
            labels: &job.labels,
        })
        .await;
    shared.metrics.in_flight.dec();
    drop(permit);
    let verdict = match answer {
        Ok(text) => {
            let _ = shared.breaker.record(true);
            shared.metrics.breaker_open.set(0);
            match answer::parse(&text, &job.labels) {
                Some(label) => {
                    let verdict = Verdict {
                        label,
                        tier: TierName::Llm,
                        confidence: None,
                        rule: None,
                        reason: None,
                    };
                    remember(shared, &job, &verdict);
                    verdict
                }
                None => {
                    warn!(
                        answer_bytes = text.len(),
                        "the LLM's answer names no allowed label: {:?}",
                        text.chars().take(80).collect::<String>()
                    );
                    counted_fallback(shared, &job.escalation, "llm_unparseable")
                }
            }
        }
        Err(failure) => {
            // One line's refused request says nothing about the server: only failures that
            // would hit every line count towards opening the breaker.
            if !failure.is_server_down() {
                shared.breaker.record(true);
            } else if shared.breaker.record(false) {
                shared.metrics.breaker_open.set(1);
                warn!("LLM: {failure:?}; circuit breaker open, lines fall back until a probe succeeds");
            }
            counted_fallback(shared, &job.escalation, failure.reason())
        }
    };
    asking.settled = true;
    let followers = shared
        .asking
        .lock()
        .expect("asking lock")
        .remove(&job.key)
        .unwrap_or_default();
    for follower in followers {
        let verdict = match &verdict.reason {
            // A follower's own escalation decides the confidence it keeps.
            Some(reason) => counted_fallback(shared, &follower.escalation, reason),
            None => verdict.clone(),
        };
        finish(shared, follower, verdict).await;
    }
    finish(shared, job, verdict).await;
}

/// A question under way. If its task ends before the answer is in (a panic, or the agent
/// stopping), dropping this frees what waited on it: the template's key (so later lines ask
/// again), the lines that waited for the same answer (a waiting caller gets `llm_stopped`; a
/// dispatched line's claim is dropped, so its chunk is read again after a restart), and the
/// breaker's probe, if it was one.
struct Asking<'a> {
    shared: &'a Shared,
    key: String,
    settled: bool,
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.shared.metrics.in_flight.dec();
        self.shared.breaker.record(false);
        let followers = self
            .shared
            .asking
            .lock()
            .map(|mut asking| asking.remove(&self.key).unwrap_or_default())
            .unwrap_or_default();
        for follower in followers {
            if let Reply::Wait(tx) = follower.reply {
                let _ = tx.send(fallback(&follower.escalation, "llm_stopped"));
            }
        }
    }
}

fn counted_fallback(shared: &Shared, escalation: &Escalation, reason: &'static str) -> Verdict {
    shared.metrics.fallbacks.with_label_values(&[reason]).inc();
    fallback(escalation, reason)
}

/// Caches an answer (and persists it), and offers it to the learning loop.
fn remember(shared: &Shared, job: &Job, verdict: &Verdict) {
    if let Some(cache) = &shared.cache {
        cache.insert(job.key.clone(), verdict.clone());
        if let Some(file) = &shared.persisted {
            let line = serde_json::json!({"key": job.key, "label": &*verdict.label});
            let mut file = file.lock().expect("persist lock");
            if let Err(e) = writeln!(file, "{line}") {
                warn!("cannot append to the LLM cache file: {e}");
            }
        }
    }
    if &*verdict.label != UNCLASSIFIED {
        if let Some(learned) = &shared.learned {
            learned
                .lock()
                .expect("learned lock")
                .add(&job.source, &job.message, &verdict.label);
        }
    }
}

async fn finish(shared: &Shared, job: Job, verdict: Verdict) {
    match job.reply {
        Reply::Wait(tx) => {
            let _ = tx.send(verdict);
        }
        Reply::Deliver { event, ack } => {
            let answered = Answered {
                record: Record { event, verdict },
                ack,
            };
            if shared.out.send(answered).await.is_err() {
                warn!("an LLM answer arrived after the pipeline stopped; its line is read again after a restart");
            }
        }
    }
}

/// Loads the persisted LLM verdicts into the cache, rewrites the file without duplicates,
/// and returns it open for appending.
fn load_persisted(
    path: &Path,
    cache: &TemplateCache,
    allowed: impl Fn(&str, &str) -> bool,
) -> anyhow::Result<std::fs::File> {
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let mut index: HashMap<String, usize> = HashMap::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue; // a line cut by a crash
            };
            if let (Some(k), Some(l)) = (value["key"].as_str(), value["label"].as_str()) {
                if !allowed(k, l) {
                    continue; // the config changed: this answer may not be given any more
                }
                match index.get(k) {
                    Some(&i) => entries[i].1 = l.to_string(),
                    None => {
                        index.insert(k.to_string(), entries.len());
                        entries.push((k.to_string(), l.to_string()));
                    }
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = String::new();
    for (key, label) in &entries {
        cache.insert(
            key.clone(),
            Verdict {
                label: Arc::from(label.as_str()),
                tier: TierName::Llm,
                confidence: None,
                rule: None,
                reason: None,
            },
        );
        text.push_str(&serde_json::json!({"key": key, "label": label}).to_string());
        text.push('\n');
    }
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if !entries.is_empty() {
        info!(
            "LLM tier: {} verdicts loaded from {}",
            entries.len(),
            path.display()
        );
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}

/// The learning loop's file: `source,log_message,target_label`, one row per template.
struct Learned {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
    templates: HashSet<String>,
}

impl Learned {
    fn open(path: &Path) -> anyhow::Result<Learned> {
        let mut templates = HashSet::new();
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if exists {
            let mut reader = csv::Reader::from_path(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            for row in reader.records().flatten() {
                if let Some(message) = row.get(1) {
                    templates.insert(template(message));
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "tiers.llm.verdicts_out: cannot open {}: {e}",
                    path.display()
                )
            })?;
        let mut writer = csv::Writer::from_writer(file);
        if !exists {
            writer.write_record(["source", "log_message", "target_label"])?;
            writer.flush()?;
        }
        Ok(Learned {
            path: path.to_path_buf(),
            writer,
            templates,
        })
    }

    fn add(&mut self, source: &str, message: &str, label: &str) {
        if !self.templates.insert(template(message)) {
            return;
        }
        let written = self
            .writer
            .write_record([source, message, label])
            .and_then(|()| self.writer.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            warn!("cannot append to {}: {e}", self.path.display());
        }
    }
}
