//! The batcher: gathers source chunks into micro-batches of at most `max_lines` lines and
//! `max_bytes` of messages (a batch always takes one line, however long), closing a batch early
//! when `max_wait` has passed since its first line. The model tier runs once per
//! batch; cheap tiers don't care. A chunk split across two batches is acknowledged by both.
//! [`Acks::for_line`] finds the chunk of one line, for a line that leaves on its own (the LLM's).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ack::Ack;
use crate::config::{ConfigErrors, Section};
use crate::event::Event;
use crate::sources::Chunk;

/// `[batch]`: lines are labelled in micro-batches.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch leaves when it holds this many lines…
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    /// …or this many bytes of messages (a single longer line still makes a batch of its own)…
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// …or when its first line has waited this long (ms).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

/// About one read of the file source (256 KiB of ~120-byte lines): one hand-off per read
/// instead of four: 1.06–1.2× the lines/s of 512 on 2 cores (BENCHMARKS.md §1).
fn default_max_lines() -> usize {
    2048
}

/// Bounds a batch of long lines: 2048 lines of up to `max_line_bytes` would be 200 MB.
fn default_max_bytes() -> usize {
    1024 * 1024
}

fn default_max_wait_ms() -> u64 {
    20
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_lines: default_max_lines(),
            max_bytes: default_max_bytes(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

impl BatchConfig {
    pub fn check(&self, at: &Section, errs: &mut ConfigErrors) {
        if self.max_lines == 0 {
            errs.add(at.key("max_lines"), "must be at least 1", "use 2048");
        }
        if self.max_bytes == 0 {
            errs.add(
                at.key("max_bytes"),
                "must be at least 1",
                "use 1048576 (1 MiB)",
            );
        }
    }
}

/// Lines labelled together, with the acknowledgements of the chunks they came from.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub acks: Acks,
}

/// The acknowledgements of a batch's chunks, in line order.
#[derive(Debug, Default)]
pub struct Acks {
    pub chunks: Vec<Ack>,
    /// `ends[i]`: the index just past chunk i's last line in the batch.
    ends: Vec<usize>,
}

impl Acks {
    /// A claim on the chunk that line `line` of the batch came from.
    pub fn for_line(&self, line: usize) -> Ack {
        let chunk = self.ends.partition_point(|&end| end <= line);
        self.chunks[chunk.min(self.chunks.len() - 1)].clone()
    }
}

pub struct Batcher {
    chunks: mpsc::Receiver<Chunk>,
    max_lines: usize,
    max_bytes: usize,
    max_wait: Duration,
    /// Bytes of messages in `building`.
    bytes: usize,
    /// The rest of a chunk larger than a batch, taken from the front without shifting it.
    carry: Option<(std::vec::IntoIter<Event>, Ack)>,
    /// The batch being gathered, and when it must leave. It lives here, not in `next`, so
    /// that a caller that stops waiting for `next` (a `select!` another branch won) loses none
    /// of the lines already taken from the sources: the next call goes on with them.
    building: Batch,
    deadline: Option<Instant>,
}

impl Batcher {
    pub fn new(
        chunks: mpsc::Receiver<Chunk>,
        max_lines: usize,
        max_bytes: usize,
        max_wait: Duration,
    ) -> Batcher {
        Batcher {
            chunks,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            max_wait,
            bytes: 0,
            carry: None,
            building: Batch::default(),
            deadline: None,
        }
    }

    /// The next batch; `None` once every source has finished and everything was handed out.
    /// Cancellation-safe: every await is a channel receive, and what one brings is put in the
    /// batcher before the next await.
    pub async fn next(&mut self) -> Option<Batch> {
        if self.building.events.is_empty() {
            match self.carry.take() {
                Some((events, ack)) => self.add(events, ack),
                None => {
                    let chunk = self.chunks.recv().await?;
                    self.add(chunk.events.into_iter(), chunk.ack);
                }
            }
            self.deadline = Some(Instant::now() + self.max_wait);
        }
        let deadline = self.deadline.unwrap_or_else(Instant::now);
        while self.building.events.len() < self.max_lines
            && self.bytes < self.max_bytes
            && self.carry.is_none()
        {
            let chunk = match self.chunks.try_recv() {
                Ok(chunk) => chunk,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, self.chunks.recv()).await {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) | Err(_) => break,
                    }
                }
            };
            self.add(chunk.events.into_iter(), chunk.ack);
        }
        self.deadline = None;
        self.bytes = 0;
        Some(std::mem::take(&mut self.building))
    }

    /// Takes what fits of a chunk's events (by lines and bytes; an empty batch takes one line
    /// whatever its length); the rest waits for the next batch with its own ack clone.
    fn add(&mut self, mut events: std::vec::IntoIter<Event>, ack: Ack) {
        let batch = &mut self.building;
        let room = self.max_lines - batch.events.len();
        let mut taking = 0;
        for event in events.as_slice().iter().take(room) {
            let len = event.message.len();
            if self.bytes + len > self.max_bytes && (taking > 0 || !batch.events.is_empty()) {
                break;
            }
            self.bytes += len;
            taking += 1;
        }
        if events.len() > taking {
            batch.events.extend(events.by_ref().take(taking));
            self.carry = Some((events, ack.clone()));
        } else {
            batch.events.extend(events);
        }
        batch.acks.chunks.push(ack);
        batch.acks.ends.push(batch.events.len());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ack::{track, ChunkState};
    use crate::event::Origin;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let origin = Origin::Row { row: i as u64 };
                Event::plain(Arc::from("t"), "s", format!("line {i}"), origin)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_full_batch_leaves_at_once_and_a_large_chunk_is_split() {
        let (tx, rx) = mpsc::channel(4);
        let mut batcher = Batcher::new(rx, 3, usize::MAX, Duration::from_secs(3600));
        let (ack, receipt) = track();
        tx.send(Chunk {
            events: events(5),
            ack,
        })
        .await
        .unwrap();
        drop(tx);

        let first = batcher.next().await.unwrap();
        assert_eq!(first.events.len(), 3);
        let second = batcher.next().await.unwrap();
        assert_eq!(second.events.len(), 2);
        assert_eq!(second.events[0].message, "line 3");
        assert!(batcher.next().await.is_none());

        for ack in first.acks.chunks {
            ack.delivered();
        }
        assert_eq!(
            receipt.state(),
            ChunkState::InFlight,
            "the second half is not delivered"
        );
        for ack in second.acks.chunks {
            ack.delivered();
        }
        assert_eq!(receipt.state(), ChunkState::Delivered);
    }

    /// Bytes bound a batch as lines do; a line longer than the bound still leaves, alone.
    #[tokio::test]
    async fn a_batch_stops_at_max_bytes_and_a_long_line_makes_its_own() {
        let (tx, rx) = mpsc::channel(4);
        // "line 0" … "line 9": 6 bytes each; 20 bytes take three lines.
        let mut batcher = Batcher::new(rx, 100, 20, Duration::from_secs(3600));
        let ack = Ack::none();
        let mut lines = events(5);
        lines.insert(
            3,
            Event::plain(Arc::from("t"), "s", "x".repeat(50), Origin::Row { row: 99 }),
        );
        tx.send(Chunk { events: lines, ack }).await.unwrap();
        drop(tx);
        let mut batches: Vec<Vec<String>> = Vec::new();
        while let Some(batch) = batcher.next().await {
            batches.push(batch.events.iter().map(|e| e.message.to_string()).collect());
        }
        let line = |i: usize| format!("line {i}");
        assert_eq!(
            batches,
            [
                vec![line(0), line(1), line(2)],
                vec!["x".repeat(50)],
                vec![line(3), line(4)],
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_batch_leaves_after_max_wait() {
        let (tx, rx) = mpsc::channel(4);
        let mut batcher = Batcher::new(rx, 100, usize::MAX, Duration::from_millis(50));
        tx.send(Chunk {
            events: events(2),
            ack: Ack::none(),
        })
        .await
        .unwrap();
        let started = Instant::now();
        let batch = batcher.next().await.unwrap();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        drop(tx);
    }

    /// A caller that gives up waiting for `next` (a reload won a `select!`) loses nothing:
    /// the lines already taken are in the next batch.
    #[tokio::test(start_paused = true)]
    async fn a_batch_interrupted_while_gathering_keeps_its_lines() {
        let (tx, rx) = mpsc::channel(4);
        let mut batcher = Batcher::new(rx, 100, usize::MAX, Duration::from_secs(10));
        let (ack, receipt) = track();
        tx.send(Chunk {
            events: events(3),
            ack,
        })
        .await
        .unwrap();
        let interrupted = tokio::time::timeout(Duration::from_millis(10), batcher.next()).await;
        assert!(interrupted.is_err(), "still gathering when interrupted");
        tx.send(Chunk {
            events: events(2),
            ack: Ack::none(),
        })
        .await
        .unwrap();
        drop(tx);
        let batch = batcher.next().await.unwrap();
        assert_eq!(batch.events.len(), 5, "the first chunk's lines were kept");
        for ack in batch.acks.chunks {
            ack.delivered();
        }
        assert_eq!(receipt.state(), ChunkState::Delivered);
    }

    #[tokio::test]
    async fn small_chunks_are_gathered_into_one_batch() {
        let (tx, rx) = mpsc::channel(8);
        let mut batcher = Batcher::new(rx, 10, usize::MAX, Duration::from_secs(3600));
        for _ in 0..4 {
            tx.send(Chunk {
                events: events(2),
                ack: Ack::none(),
            })
            .await
            .unwrap();
        }
        drop(tx);
        let batch = batcher.next().await.unwrap();
        assert_eq!(batch.events.len(), 8);
        assert_eq!(batch.acks.chunks.len(), 4);
    }

    #[tokio::test]
    async fn a_line_finds_the_ack_of_its_own_chunk() {
        let (tx, rx) = mpsc::channel(8);
        let mut batcher = Batcher::new(rx, 10, usize::MAX, Duration::from_secs(3600));
        let mut receipts = Vec::new();
        for n in [2, 3] {
            let (ack, receipt) = track();
            receipts.push(receipt);
            tx.send(Chunk {
                events: events(n),
                ack,
            })
            .await
            .unwrap();
        }
        drop(tx);
        let batch = batcher.next().await.unwrap();
        let held = batch.acks.for_line(2); // the second chunk's first line
        for ack in batch.acks.chunks {
            ack.delivered();
        }
        assert_eq!(receipts[0].state(), ChunkState::Delivered);
        assert_eq!(receipts[1].state(), ChunkState::InFlight);
        held.delivered();
        assert_eq!(receipts[1].state(), ChunkState::Delivered);
    }
}
