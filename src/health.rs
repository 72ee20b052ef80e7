//! What `/health` and `/ready` answer, shared by the parts that know: the pipeline (started,
//! draining) and the parts with start-up checks (a Kafka client waiting for its brokers).
//! Plain atomics, so any thread may set them and the HTTP server reads them without a lock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
    pub draining: AtomicBool,
    /// Start-up checks not passed yet (a Kafka broker that did not answer); `/ready` is 503
    /// until there are none.
    pending_checks: AtomicUsize,
}

impl Health {
    /// Registers a start-up check; `/ready` stays 503 until it is dropped (passed).
    pub fn check(self: &Arc<Self>) -> PendingCheck {
        self.pending_checks.fetch_add(1, Ordering::AcqRel);
        PendingCheck(self.clone())
    }

    /// Running, not draining, and every start-up check passed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && !self.is_draining()
            && self.pending_checks.load(Ordering::Acquire) == 0
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// A start-up check under way (see [`Health::check`]); dropping it marks it passed.
pub struct PendingCheck(Arc<Health>);

impl Drop for PendingCheck {
    fn drop(&mut self) {
        self.0.pending_checks.fetch_sub(1, Ordering::AcqRel);
    }
}
