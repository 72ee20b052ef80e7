//! What `/health` and `/ready` answer, shared by the parts that know: the pipeline (started,
//! draining), the parts with start-up checks (a Kafka client waiting for its brokers), and the
//! sinks (a sink that cannot write, or whose write has hung for a minute, makes the agent not
//! ready: it is not shipping). Readable from any thread without waiting on the parts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How long one sink write may take before the agent stops counting as ready.
pub const SINK_STALL: Duration = Duration::from_secs(60);

pub struct Health {
    pub ready: AtomicBool,
    /// Cancelled when the pipeline starts to drain (a stop, the inputs' end, a reload).
    draining: CancellationToken,
    /// Start-up checks not passed yet (a Kafka broker that did not answer); `/ready` is 503
    /// until there are none.
    pending_checks: AtomicUsize,
    /// Per sink with trouble: its writes fail, or one has hung since `SINK_STALL` ago.
    sinks: Mutex<HashMap<String, SinkState>>,
}

#[derive(Debug, Clone, Copy)]
enum SinkState {
    /// A write under way since this moment has not finished for [`SINK_STALL`].
    Stalled(Instant),
    Failing,
}

impl Health {
    /// Draining from when `draining` is cancelled.
    pub fn new(draining: CancellationToken) -> Health {
        Health {
            ready: AtomicBool::new(false),
            draining,
            pending_checks: AtomicUsize::new(0),
            sinks: Mutex::default(),
        }
    }

    /// Registers a start-up check; `/ready` stays 503 until it is dropped (passed).
    pub fn check(self: &Arc<Self>) -> PendingCheck {
        self.pending_checks.fetch_add(1, Ordering::AcqRel);
        PendingCheck(self.clone())
    }

    /// Running, not draining, every start-up check passed, every sink writing.
    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// Why the agent is not ready, if it is not.
    pub fn not_ready_because(&self) -> Option<String> {
        if !self.ready.load(Ordering::Acquire) {
            Some("starting".into())
        } else if self.is_draining() {
            Some("draining".into())
        } else if self.pending_checks.load(Ordering::Acquire) > 0 {
            Some("waiting for a start-up check (a Kafka broker?)".into())
        } else {
            self.sink_trouble()
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Why some sink keeps the agent from being ready, if one does.
    pub fn sink_trouble(&self) -> Option<String> {
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        sinks.iter().next().map(|(name, state)| match state {
            SinkState::Failing => format!("sink {name} cannot write"),
            SinkState::Stalled(since) => format!(
                "sink {name} has not finished a write for {} s",
                since.elapsed().as_secs()
            ),
        })
    }

    /// A sink's write, under way since `since`, has not finished for [`SINK_STALL`].
    pub fn sink_stalled(&self, sink: &str, since: Instant) {
        self.set_sink(sink, Some(SinkState::Stalled(since)));
    }

    /// A sink's write failed; it will retry.
    pub fn sink_failing(&self, sink: &str) {
        self.set_sink(sink, Some(SinkState::Failing));
    }

    /// A sink's write went through.
    pub fn sink_wrote(&self, sink: &str) {
        self.set_sink(sink, None);
    }

    fn set_sink(&self, sink: &str, state: Option<SinkState>) {
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        match state {
            Some(s) => {
                // A retry after a failure is still a failing sink until it succeeds.
                let failing = matches!(sinks.get(sink), Some(SinkState::Failing));
                if !(failing && matches!(s, SinkState::Stalled(_))) {
                    sinks.insert(sink.to_string(), s);
                }
            }
            None => {
                sinks.remove(sink);
            }
        }
    }
}

/// A start-up check under way (see [`Health::check`]); dropping it marks it passed.
pub struct PendingCheck(Arc<Health>);

impl Drop for PendingCheck {
    fn drop(&mut self) {
        self.0.pending_checks.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_sink_is_not_ready_until_a_write_goes_through() {
        let health = Health::new(CancellationToken::new());
        health.ready.store(true, Ordering::Release);
        assert!(health.is_ready());
        health.sink_failing("file");
        health.sink_stalled("file", Instant::now() - SINK_STALL);
        assert!(
            !health.is_ready(),
            "the retry of a failed write is still failing"
        );
        assert_eq!(health.sink_trouble().unwrap(), "sink file cannot write");
        health.sink_wrote("file");
        assert!(health.is_ready());
        health.sink_stalled("file", Instant::now() - SINK_STALL);
        assert_eq!(
            health.sink_trouble().unwrap(),
            format!(
                "sink file has not finished a write for {} s",
                SINK_STALL.as_secs()
            )
        );
        health.sink_wrote("file");
        assert!(health.is_ready());
    }
}
