//! File sink: appends JSON lines, one `write` per batch. A batch counts as delivered once the
//! write returned: the bytes are in the kernel's page cache, which survives a crash or `kill -9`
//! of logsieve but not a power cut. `fsync = true` adds `fdatasync` before the acknowledgement,
//! for power-cut safety at a large cost in throughput. A write that fails part-way is cut back
//! to the file's length before it, and the file is opened again (it may have been rotated away
//! or its disk freed) before the retry, so a retry leaves neither a torn line nor a duplicate.
//! The file is opened by the first write, and again whenever its path stops leading to it (it
//! was rotated away or deleted), so records always go where the path says.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{encode_json_lines, Sink, SinkBuild, SinkConfig, SinkPlan};
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
    path: PathBuf,
    /// Open lazily, and again when the path no longer leads to it.
    file: Option<Arc<File>>,
    fsync: bool,
    buf: Vec<u8>,
}

impl FileSink {
    /// The sink; its file is opened (created) by the first write, so a folder that is not
    /// writable yet is a failing write — retried, reported in `/ready` — not a failed start.
    pub fn open(path: PathBuf, fsync: bool) -> anyhow::Result<FileSink> {
        Ok(FileSink {
            name: format!("file:{}", path.display()),
            path,
            file: None,
            fsync,
            buf: Vec::new(),
        })
    }

    /// The open file, opened again when its path now leads elsewhere or nowhere (the file was
    /// rotated away or deleted): records go where the path says.
    fn file(&mut self) -> std::io::Result<Arc<File>> {
        use std::os::unix::fs::MetadataExt;
        if let Some(file) = &self.file {
            let here = std::fs::metadata(&self.path).ok();
            let open = file.metadata().ok();
            let same = match (here, open) {
                (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                return Ok(file.clone());
            }
            tracing::info!(sink = %self.name, "the sink's file was moved or deleted; writing to a new one at its path");
        }
        let file = Arc::new(open_append(&self.path).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open {} for appending: {e}", self.path.display()),
            )
        })?);
        self.file = Some(file.clone());
        Ok(file)
    }
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
        let file = self.file()?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode_json_lines(records, &mut buf);
        let fsync = self.fsync;
        let (buf, result) =
            tokio::task::spawn_blocking(move || {
                let before = file.metadata().map(|m| m.len());
                let result = (&*file).write_all(&buf).and_then(|()| {
                    if fsync {
                        file.sync_data()
                    } else {
                        Ok(())
                    }
                });
                if result.is_err() {
                    // Take back a partly written batch so the retry leaves no torn line.
                    if let Ok(len) = before {
                        let _ = file.set_len(len);
                    }
                }
                (buf, result)
            })
            .await
            .map_err(std::io::Error::other)?;
        let written = buf.len() as u64;
        self.buf = buf;
        if result.is_err() {
            self.file = None;
        }
        result.map(|()| written)
    }
}
