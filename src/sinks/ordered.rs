//! A thread that writes a sink's batches in the order they come, so that the sink can encode
//! the next batch (on the caller's core) while the last one is written: the file and stdout
//! sinks keep two batches in flight through it. After a failed write it refuses every later
//! batch until the failed one comes again — `drive` retries the oldest batch first — so the
//! output keeps the batches' order whatever fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::{encode_json_lines, PendingWrite};
use crate::event::Record;

/// One batch for the thread: its JSON lines, and where the outcome goes.
struct Job {
    /// Which batch this is (the address of its records): a retry carries the same.
    batch: usize,
    bytes: Vec<u8>,
    done: tokio::sync::oneshot::Sender<std::io::Result<u64>>,
}

pub struct OrderedWriter {
    jobs: mpsc::Sender<Job>,
    /// Bytes per record to make room for: the last batch's mean and an eighth, so that a
    /// batch's buffer is allocated once rather than grown (and copied) as it fills.
    record_bytes: AtomicUsize,
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
            record_bytes: AtomicUsize::new(256),
        })
    }

    /// Encodes the records here and hands them to the thread; the future says how it went.
    pub fn send(&self, records: &[Record]) -> PendingWrite {
        let per_record = self.record_bytes.load(Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(records.len() * per_record);
        encode_json_lines(records, &mut bytes);
        if !records.is_empty() {
            let mean = bytes.len() / records.len();
            self.record_bytes.store(mean + mean / 8, Ordering::Relaxed);
        }
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
