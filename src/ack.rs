//! Delivery tracking: a source may forget a position only after every sink has written every
//! line up to it. A source stamps each chunk it reads with an [`Ack`]; the chunk's lines travel
//! through the tiers, the pipeline hands one clone of the ack to each sink, and a sink calls
//! [`Ack::delivered`] once its write is flushed. An ack dropped any other way (a sink gave up at
//! shutdown, a task died) marks its chunk failed. [`Watermark`] turns those outcomes into the
//! highest *contiguous* delivered position per origin, so a restart replays what was in flight
//! and never skips a line that was not written.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
struct Chunk {
    outstanding: AtomicUsize,
    failed: AtomicBool,
}

/// One holder's claim on a chunk's delivery. Clone it for each sink that must write the chunk.
#[derive(Debug)]
pub struct Ack {
    chunk: Option<Arc<Chunk>>,
    settled: bool,
}

impl Ack {
    /// An ack nobody waits for (a request answered in place, standard input).
    pub fn none() -> Ack {
        Ack {
            chunk: None,
            settled: true,
        }
    }

    /// The holder wrote its copy of the chunk: release the claim as delivered.
    pub fn delivered(mut self) {
        self.settled = true;
    }
}

impl Clone for Ack {
    fn clone(&self) -> Ack {
        if let Some(chunk) = &self.chunk {
            chunk.outstanding.fetch_add(1, Ordering::Relaxed);
        }
        Ack {
            chunk: self.chunk.clone(),
            settled: self.chunk.is_none(),
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(chunk) = self.chunk.take() {
            if !self.settled {
                chunk.failed.store(true, Ordering::Release);
            }
            chunk.outstanding.fetch_sub(1, Ordering::Release);
        }
    }
}

/// State of a chunk as seen by its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    InFlight,
    Delivered,
    Failed,
}

/// The source's end of a chunk's tracking.
#[derive(Debug)]
pub struct Receipt {
    chunk: Arc<Chunk>,
}

impl Receipt {
    pub fn state(&self) -> ChunkState {
        if self.chunk.outstanding.load(Ordering::Acquire) > 0 {
            ChunkState::InFlight
        } else if self.chunk.failed.load(Ordering::Acquire) {
            ChunkState::Failed
        } else {
            ChunkState::Delivered
        }
    }
}

/// Starts tracking a new chunk: the [`Ack`] travels with its lines, the [`Receipt`] stays home.
pub fn track() -> (Ack, Receipt) {
    let chunk = Arc::new(Chunk {
        outstanding: AtomicUsize::new(1),
        failed: AtomicBool::new(false),
    });
    (
        Ack {
            chunk: Some(chunk.clone()),
            settled: false,
        },
        Receipt { chunk },
    )
}

/// Highest contiguous delivered position of one origin (a file identity, a partition).
/// Chunks are pushed in read order with the position just past their last line.
#[derive(Debug)]
pub struct Watermark<P> {
    delivered: P,
    pending: VecDeque<(P, Receipt)>,
    stuck: bool,
}

impl<P: Copy> Watermark<P> {
    pub fn new(start: P) -> Self {
        Watermark {
            delivered: start,
            pending: VecDeque::new(),
            stuck: false,
        }
    }

    /// Records a chunk that ends at `end`, read after every chunk pushed before it.
    pub fn push(&mut self, end: P, receipt: Receipt) {
        self.pending.push_back((end, receipt));
    }

    /// Moves past every delivered chunk at the front and returns the delivered position.
    /// A failed chunk stops the watermark for good (in this run): what follows it is replayed
    /// after a restart rather than skipped.
    pub fn advance(&mut self) -> P {
        while !self.stuck {
            match self.pending.front().map(|(_, r)| r.state()) {
                Some(ChunkState::Delivered) => {
                    let (end, _) = self.pending.pop_front().expect("front exists");
                    self.delivered = end;
                }
                Some(ChunkState::Failed) => self.stuck = true,
                Some(ChunkState::InFlight) | None => break,
            }
        }
        self.delivered
    }

    pub fn delivered(&self) -> P {
        self.delivered
    }

    /// Chunks not yet known to be delivered.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// A chunk failed; this watermark will not move again in this run.
    pub fn is_stuck(&self) -> bool {
        self.stuck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_moves_only_over_contiguous_deliveries() {
        let mut mark = Watermark::new(0u64);
        let (a, ra) = track();
        let (b, rb) = track();
        let (c, rc) = track();
        mark.push(100, ra);
        mark.push(200, rb);
        mark.push(300, rc);

        b.delivered();
        assert_eq!(
            mark.advance(),
            0,
            "100 is still in flight, so 200 cannot count"
        );
        a.delivered();
        assert_eq!(mark.advance(), 200);
        c.delivered();
        assert_eq!(mark.advance(), 300);
        assert_eq!(mark.in_flight(), 0);
    }

    #[test]
    fn every_clone_must_deliver() {
        let mut mark = Watermark::new(0u64);
        let (ack, receipt) = track();
        mark.push(10, receipt);
        let for_second_sink = ack.clone();
        ack.delivered();
        assert_eq!(mark.advance(), 0, "one of two sinks has not written yet");
        for_second_sink.delivered();
        assert_eq!(mark.advance(), 10);
    }

    #[test]
    fn a_dropped_ack_fails_its_chunk_and_stops_the_watermark() {
        let mut mark = Watermark::new(0u64);
        let (a, ra) = track();
        let (b, rb) = track();
        let (c, rc) = track();
        mark.push(1, ra);
        mark.push(2, rb);
        mark.push(3, rc);
        a.delivered();
        drop(b); // a sink gave up without writing
        c.delivered();
        assert_eq!(mark.advance(), 1);
        assert!(mark.is_stuck());
        assert_eq!(mark.advance(), 1, "never skips the failed chunk");
    }

    #[test]
    fn acks_of_nothing_are_inert() {
        let none = Ack::none();
        let copy = none.clone();
        drop(none);
        copy.delivered();
    }
}
