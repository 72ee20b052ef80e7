//! File sink: appends JSON lines, one `write` per batch. A batch counts as delivered once the
//! write returned: the bytes are in the kernel's page cache, which survives a crash or `kill -9`
//! of logsieve but not a power cut. `fsync = true` adds `fdatasync` before the acknowledgement,
//! for power-cut safety at a large cost in throughput. A write that fails part-way is cut back
//! to the file's length before it, and the file is opened again (it may have been rotated away
//! or its disk freed) before the retry, so a retry leaves neither a torn line nor a duplicate.
//! The file is opened by the first write, and again whenever its path stops leading to it (it
//! was rotated away or deleted), so records always go where the path says. A thread of the
//! sink's own ([`OrderedWriter`]) writes the batches in order while the next is encoded.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{OrderedWriter, PendingWrite, Sink, SinkBuild, SinkConfig, SinkPlan};
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
    writer: OrderedWriter,
}

impl FileSink {
    /// The sink and its writer thread; the file is opened (created) by the first write, so a
    /// folder that is not writable yet is a failing write — retried, reported in `/ready` —
    /// not a failed start.
    pub fn open(path: PathBuf, fsync: bool) -> anyhow::Result<FileSink> {
        let name = format!("file:{}", path.display());
        let mut file = None;
        let writer = OrderedWriter::start("logsieve-file-sink", move |bytes| {
            let result = write_batch(&path, &mut file, bytes, fsync);
            if result.is_err() {
                file = None;
            }
            result
        })?;
        Ok(FileSink { name, writer })
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
        self.writer.send(records).await
    }

    fn start_write(&mut self, records: &Arc<Vec<Record>>) -> Option<PendingWrite> {
        Some(self.writer.send(records))
    }

    /// Two: the next batch is encoded while the last is written.
    fn writes_in_flight(&self) -> usize {
        2
    }
}
