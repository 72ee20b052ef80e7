//! The LLM queue's consumer: takes lines off the bounded queue in order, answers what the
//! template cache or a question already under way can, and asks the LLM about the rest with at
//! most `max_in_flight` requests out — retried, timed out and kept away from a dead server by
//! the client and the breaker — then hands each answer to whoever waits for it.

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::breaker::Permit;
use super::client::Question;
use super::{answer, fallback, Answered, Job, Reply, Shared};
use crate::event::{Record, TierName, Verdict, UNCLASSIFIED};
use crate::tiers::Escalation;

/// Takes jobs off the queue in order: answers what the cache or an answer under way can, asks
/// the LLM about the rest with at most `max_in_flight` requests out.
pub(super) async fn dispatch_jobs(
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
pub(super) fn cached(shared: &Shared, key: &str) -> Option<Verdict> {
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

pub(super) fn counted_fallback(
    shared: &Shared,
    escalation: &Escalation,
    reason: &'static str,
) -> Verdict {
    shared.metrics.fallbacks.with_label_values(&[reason]).inc();
    fallback(escalation, reason)
}

/// Caches an answer (and persists it), and offers it to the learning loop.
fn remember(shared: &Shared, job: &Job, verdict: &Verdict) {
    if let Some(cache) = &shared.cache {
        cache.insert(job.key.clone(), verdict.clone());
        if let Some(persisted) = &shared.persisted {
            persisted.append(&job.key, &verdict.label);
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
