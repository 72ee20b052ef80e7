//! The circuit breaker in front of the LLM: after `failures` lines in a row could not be
//! answered it opens for `open_for`, and lines fall back at once instead of queueing behind a
//! dead server. Then it half-opens: one request goes through as a probe; its success closes the
//! breaker, its failure opens it again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is out; everyone else falls back until it returns.
    Probing,
}

pub struct Breaker {
    state: Mutex<State>,
    failures: u32,
    open_for: Duration,
}

/// May a request go out now?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// The one request that tests a half-open breaker.
    Probe,
    Refused,
}

impl Breaker {
    pub fn new(failures: u32, open_for: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            failures: failures.max(1),
            open_for,
        }
    }

    /// Whether new lines should skip the queue (open, or a probe is out).
    pub fn is_open(&self) -> bool {
        match *self.state.lock().expect("breaker lock") {
            State::Closed { .. } => false,
            State::Open { until } => Instant::now() < until,
            State::Probing => true,
        }
    }

    pub fn permit(&self) -> Permit {
        let mut state = self.state.lock().expect("breaker lock");
        match *state {
            State::Closed { .. } => Permit::Go,
            State::Open { until } if Instant::now() >= until => {
                *state = State::Probing;
                Permit::Probe
            }
            State::Open { .. } | State::Probing => Permit::Refused,
        }
    }

    /// Records how a request ended. Returns true when this call opened the breaker.
    pub fn record(&self, ok: bool) -> bool {
        let mut state = self.state.lock().expect("breaker lock");
        let open = State::Open {
            until: Instant::now() + self.open_for,
        };
        match (*state, ok) {
            (_, true) => {
                *state = State::Closed { failures: 0 };
                false
            }
            (State::Closed { failures }, false) if failures + 1 >= self.failures => {
                *state = open;
                true
            }
            (State::Closed { failures }, false) => {
                *state = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            (State::Probing, false) => {
                *state = open;
                true
            }
            // A request that started before the breaker opened.
            (State::Open { .. }, false) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_n_failures_probes_once_and_closes_on_success() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        assert!(!breaker.record(false));
        assert!(!breaker.record(false));
        assert!(!breaker.is_open());
        assert!(breaker.record(false), "the third failure opens it");
        assert!(breaker.is_open());
        assert_eq!(breaker.permit(), Permit::Refused);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.permit(), Permit::Probe);
        assert_eq!(breaker.permit(), Permit::Refused, "one probe at a time");
        assert!(breaker.record(false), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(breaker.permit(), Permit::Probe);
        breaker.record(true);
        assert!(!breaker.is_open());
        assert_eq!(breaker.permit(), Permit::Go);
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(60));
        breaker.record(false);
        breaker.record(true);
        breaker.record(false);
        assert!(!breaker.is_open());
    }
}
