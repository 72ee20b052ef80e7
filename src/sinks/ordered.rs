//! A thread that writes a sink's batches in the order they come, so that the sink can encode
//! the next batch (on the caller's core) while the last one is written: the file and stdout
//! sinks keep two batches in flight through it. After a failed write it refuses every later
//! batch until the failed one comes again — `drive` retries the oldest batch first — so the
//! output keeps the batches' order whatever fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::{encode_json_lines, PendingWrite};
use crate::event::Record;

/// The most room made per record beyond its message: a batch with large passed-through
/// fields does not make the next one reserve that much for each of its records.
const MAX_OVERHEAD: usize = 1024;

/// Sizes a batch's JSON buffer so that it is allocated once rather than grown (and copied) as
/// it fills: the messages' own lengths and an eighth, and for each record what the last batch's
/// records took beyond their message (keys, label, origin, passed-through fields) and an
/// eighth, at most [`MAX_OVERHEAD`].
struct Room(AtomicUsize);

impl Room {
    fn encode(&self, records: &[Record]) -> Vec<u8> {
        let text: usize = records.iter().map(|r| r.event.message.len()).sum();
        let overhead = self.0.load(Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(text + text / 8 + records.len() * overhead);
        encode_json_lines(records, &mut bytes);
        if !records.is_empty() {
            let mean = bytes.len().saturating_sub(text) / records.len();
            self.0
                .store((mean + mean / 8).min(MAX_OVERHEAD), Ordering::Relaxed);
        }
        bytes
    }
}

/// One batch for the thread: its JSON lines, and where the outcome goes.
struct Job {
    /// Which batch this is (the address of its records): a retry carries the same.
    batch: usize,
    bytes: Vec<u8>,
    done: tokio::sync::oneshot::Sender<std::io::Result<u64>>,
}

pub struct OrderedWriter {
    jobs: mpsc::Sender<Job>,
    room: Room,
}

impl OrderedWriter {
    /// Starts the thread `name`; `write` writes one batch's bytes, all or nothing.
    pub fn start(
        name: &str,
        write: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<OrderedWriter> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_in_order(queue, write))?;
        Ok(OrderedWriter {
            jobs,
            room: Room(AtomicUsize::new(256)),
        })
    }

    /// Encodes the records here and hands them to the thread; the future says how it went.
    pub fn send(&self, records: &[Record]) -> PendingWrite {
        let bytes = self.room.encode(records);
        let (done, outcome) = tokio::sync::oneshot::channel();
        let job = Job {
            batch: records.as_ptr() as usize,
            bytes,
            done,
        };
        let sent = self.jobs.send(job).is_ok();
        let stopped = || std::io::Error::other("the sink's writer thread stopped");
        Box::pin(async move {
            if !sent {
                return Err(stopped());
            }
            outcome.await.unwrap_or_else(|_| Err(stopped()))
        })
    }
}

fn write_in_order(jobs: mpsc::Receiver<Job>, mut write: impl FnMut(&[u8]) -> std::io::Result<()>) {
    let mut failed: Option<usize> = None;
    for job in jobs {
        if failed.is_some_and(|batch| batch != job.batch) {
            let _ = job.done.send(Err(std::io::Error::other(
                "not written: an earlier batch failed and is retried first",
            )));
            continue;
        }
        let result = write(&job.bytes);
        failed = result.is_err().then_some(job.batch);
        let _ = job.done.send(result.map(|()| job.bytes.len() as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = tokio::sync::oneshot::Receiver<std::io::Result<u64>>;

    fn job(batch: usize, text: &str) -> (Job, Outcome) {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let bytes = text.as_bytes().to_vec();
        (Job { batch, bytes, done }, outcome)
    }

    fn records(
        n: usize,
        message: &str,
        fields: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Vec<Record> {
        let origin = crate::event::Origin::Row { row: 1 };
        (0..n)
            .map(|_| {
                let mut event = crate::event::Event::plain(
                    std::sync::Arc::from("2026-12-01T00:00:00.000Z"),
                    "app",
                    message.to_string(),
                    origin.clone(),
                );
                event.fields = fields.clone().map(Box::new);
                Record {
                    event,
                    verdict: crate::event::Verdict::fallback(crate::event::TierName::None, None),
                }
            })
            .collect()
    }

    #[test]
    fn a_batch_gets_the_room_it_needs_and_a_huge_record_does_not_inflate_the_next() {
        let room = Room(AtomicUsize::new(256));
        let line = "GET /api/v1/orders/123 HTTP/1.1 200 in 12 ms from 10.0.0.1";
        let first = room.encode(&records(100, line, None));
        // The second batch of the same records is sized from the first: no growth.
        let second = room.encode(&records(100, line, None));
        assert_eq!(second.len(), first.len());
        assert!(second.capacity() >= second.len(), "room for all of it");
        assert!(
            second.capacity() <= second.len() * 5 / 4,
            "and not much more: {} for {}",
            second.capacity(),
            second.len()
        );
        // One record with 200 KB of passed-through fields, then 100 small ones.
        let mut big = serde_json::Map::new();
        big.insert(
            "blob".into(),
            serde_json::Value::String("x".repeat(200_000)),
        );
        room.encode(&records(1, line, Some(big)));
        let after = room.encode(&records(100, line, None));
        assert!(
            after.capacity() <= line.len() * 100 * 9 / 8 + 100 * MAX_OVERHEAD,
            "{} reserved",
            after.capacity()
        );
    }

    #[test]
    fn after_a_failed_write_only_its_retry_is_written_so_the_order_holds() {
        let written = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (jobs_tx, jobs) = mpsc::channel();
        let thread = std::thread::spawn({
            let (written, broken) = (written.clone(), broken.clone());
            move || {
                write_in_order(jobs, move |bytes| {
                    if broken.load(std::sync::atomic::Ordering::SeqCst) {
                        return Err(std::io::Error::other("disk full"));
                    }
                    written
                        .lock()
                        .unwrap()
                        .push_str(std::str::from_utf8(bytes).unwrap());
                    Ok(())
                })
            }
        });
        let outcome = |rx: Outcome| rx.blocking_recv().unwrap();
        let (first, first_done) = job(1, "first\n");
        let (second, second_done) = job(2, "second\n");
        jobs_tx.send(first).unwrap();
        jobs_tx.send(second).unwrap();
        assert!(outcome(first_done).is_err(), "the disk is full");
        assert!(
            outcome(second_done).is_err(),
            "refused: the first goes first"
        );
        broken.store(false, std::sync::atomic::Ordering::SeqCst);
        let (second, second_done) = job(2, "second\n");
        jobs_tx.send(second).unwrap();
        assert!(
            outcome(second_done).is_err(),
            "still refused before the first's retry"
        );
        for (batch, text) in [(1, "first\n"), (2, "second\n")] {
            let (retry, done) = job(batch, text);
            jobs_tx.send(retry).unwrap();
            assert_eq!(outcome(done).unwrap(), text.len() as u64);
        }
        drop(jobs_tx);
        thread.join().unwrap();
        assert_eq!(*written.lock().unwrap(), "first\nsecond\n");
    }
}
