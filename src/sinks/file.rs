//! File sink: appends JSON lines, one `write` per batch. A batch counts as delivered once the
//! write returned: the bytes are in the kernel's page cache, which survives a crash or `kill -9`
//! of logsieve but not a power cut. `fsync = true` adds `fdatasync` before the acknowledgement,
//! for power-cut safety at a large cost in throughput. A write that fails part-way is cut back
//! to the file's length before it, and the file is opened again (it may have been rotated away
//! or its disk freed) before the retry, so a retry leaves neither a torn line nor a duplicate.
//! The file is opened by the first write, and again whenever its path stops leading to it (it
//! was rotated away or deleted), so records always go where the path says. A thread of the
//! sink's own writes the batches in order while the next one is encoded; after a failed write
//! it takes nothing but the retry of that batch, so the file keeps the batches' order.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{encode_json_lines, PendingWrite, Sink, SinkBuild, SinkConfig, SinkPlan};
use crate::config::{ConfigErrors, Section};
use crate::event::Record;

/// `type = "file"`: appends JSON lines to a file.
#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
pub struct FileSinkConfig {
    /// The file to append to, e.g. `"/var/lib/logsieve/labelled.jsonl"`; its folder must exist.
    pub path: Option<PathBuf>,
    /// `fdatasync` after every batch before acknowledging it (survives a power cut; costs
    /// throughput).
    #[serde(default)]
    pub fsync: bool,
}

impl SinkConfig for FileSinkConfig {
    const TYPE: &'static str = "file";

    fn plan(self, _: usize, at: &Section, errs: &mut ConfigErrors) -> Option<Box<dyn SinkPlan>> {
        let Some(path) = self.path else {
            errs.add(
                at.key("path"),
                "a file sink needs a path",
                "add path = \"/var/lib/logsieve/labelled.jsonl\"",
            );
            return None;
        };
        let folder = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|d| !d.is_dir()) {
            errs.add(
                at.key("path"),
                format!("folder {} does not exist", folder.display()),
                "create it or correct the path",
            );
            return None;
        }
        Some(Box::new(FileSinkPlan {
            path,
            fsync: self.fsync,
        }))
    }
}

struct FileSinkPlan {
    path: PathBuf,
    fsync: bool,
}

impl SinkPlan for FileSinkPlan {
    fn describe(&self) -> String {
        format!(
            "file {} (JSON lines{})",
            self.path.display(),
            if self.fsync { ", fsync" } else { "" }
        )
    }

    fn exclusive(&self) -> Option<String> {
        Some(format!("the file {}", self.path.display()))
    }

    fn open(&self, _: &SinkBuild) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(FileSink::open(self.path.clone(), self.fsync)?))
    }
}

pub struct FileSink {
    name: String,
    /// The thread that owns the file and writes the batches, in the order they are sent.
    writer: std::sync::mpsc::Sender<WriteJob>,
}

/// One batch for the writer thread: its JSON lines, and where the outcome goes.
struct WriteJob {
    /// Which batch this is (the address of its records): a retry carries the same.
    batch: usize,
    bytes: Vec<u8>,
    done: tokio::sync::oneshot::Sender<std::io::Result<u64>>,
}

impl FileSink {
    /// The sink and its writer thread; the file is opened (created) by the first write, so a
    /// folder that is not writable yet is a failing write — retried, reported in `/ready` —
    /// not a failed start.
    pub fn open(path: PathBuf, fsync: bool) -> anyhow::Result<FileSink> {
        let name = format!("file:{}", path.display());
        let (writer, jobs) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("logsieve-file-sink".into())
            .spawn(move || write_jobs(path, fsync, jobs))?;
        Ok(FileSink { name, writer })
    }

    /// Encodes the batch here (on the caller's core) and hands it to the writer thread.
    fn send(&self, records: &[Record]) -> PendingWrite {
        let mut bytes = Vec::with_capacity(records.len() * 256);
        encode_json_lines(records, &mut bytes);
        let (done, outcome) = tokio::sync::oneshot::channel();
        let job = WriteJob {
            batch: records.as_ptr() as usize,
            bytes,
            done,
        };
        let sent = self.writer.send(job).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(std::io::Error::other(
                    "the file sink's writer thread stopped",
                ));
            }
            outcome.await.unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the file sink's writer thread stopped",
                ))
            })
        })
    }
}

/// The writer thread: writes each job's bytes in order. After a failed write it refuses every
/// later job until the failed batch comes again (the sink retries the oldest batch first), so
/// the file keeps the batches in their order whatever fails.
fn write_jobs(path: PathBuf, fsync: bool, jobs: std::sync::mpsc::Receiver<WriteJob>) {
    let mut file: Option<File> = None;
    let mut failed: Option<usize> = None;
    for job in jobs {
        if failed.is_some_and(|batch| batch != job.batch) {
            let _ = job.done.send(Err(std::io::Error::other(
                "not written: an earlier batch failed and is retried first",
            )));
            continue;
        }
        let result = write_batch(&path, &mut file, &job.bytes, fsync);
        failed = result.is_err().then_some(job.batch);
        if result.is_err() {
            file = None;
        }
        let _ = job.done.send(result.map(|()| job.bytes.len() as u64));
    }
}

/// One batch appended to the file at `path` (opened again when its path now leads elsewhere
/// or nowhere: rotated away or deleted). A write that fails part-way is cut back.
fn write_batch(
    path: &Path,
    file: &mut Option<File>,
    bytes: &[u8],
    fsync: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if let Some(open) = file.as_ref() {
        let here = std::fs::metadata(path).ok();
        let same = match (here, open.metadata().ok()) {
            (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if !same {
            tracing::info!(sink = %format!("file:{}", path.display()), "the sink's file was moved or deleted; writing to a new one at its path");
            *file = None;
        }
    }
    if file.is_none() {
        *file = Some(open_append(path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open {} for appending: {e}", path.display()),
            )
        })?);
    }
    let open = file.as_mut().expect("opened above");
    let before = open.metadata().map(|m| m.len());
    let result = open
        .write_all(bytes)
        .and_then(|()| if fsync { open.sync_data() } else { Ok(()) });
    if result.is_err() {
        // Take back a partly written batch so the retry leaves no torn line.
        if let Ok(len) = before {
            let _ = open.set_len(len);
        }
    }
    result
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, records: &[Record]) -> std::io::Result<u64> {
        self.send(records).await
    }

    fn start_write(&mut self, records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
        Some(self.send(records))
    }

    /// Two: the next batch is encoded while the last is written.
    fn writes_in_flight(&self) -> usize {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(
        batch: usize,
        text: &str,
    ) -> (
        WriteJob,
        tokio::sync::oneshot::Receiver<std::io::Result<u64>>,
    ) {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let bytes = text.as_bytes().to_vec();
        (WriteJob { batch, bytes, done }, outcome)
    }

    #[test]
    fn after_a_failed_write_only_its_retry_is_written_so_the_order_holds() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("not-yet");
        let path = folder.join("out.jsonl");
        let (jobs_tx, jobs) = std::sync::mpsc::channel();
        let writer = std::thread::spawn({
            let path = path.clone();
            move || write_jobs(path, false, jobs)
        });
        let outcome = |rx: tokio::sync::oneshot::Receiver<_>| rx.blocking_recv().unwrap();
        let (first, first_done) = job(1, "first\n");
        let (second, second_done) = job(2, "second\n");
        jobs_tx.send(first).unwrap();
        jobs_tx.send(second).unwrap();
        assert!(
            outcome(first_done).is_err(),
            "its folder does not exist yet"
        );
        assert!(
            outcome(second_done).is_err(),
            "refused: the first is retried first"
        );
        std::fs::create_dir(&folder).unwrap();
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
        writer.join().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first\nsecond\n");
    }
}
