//! The learning loop: with `verdicts_out`, each LLM answer that is a real label is appended as
//! `source,log_message,target_label`, one row per template (de-duplicated across restarts), for
//! `logsieve train` to learn from — so the model is asked instead of the LLM next time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::tiers::cache::template;

/// The learning loop's file: `source,log_message,target_label`, one row per template.
pub struct Learned {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
    templates: HashSet<String>,
}

impl Learned {
    pub fn open(path: &Path) -> anyhow::Result<Learned> {
        let mut templates = HashSet::new();
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if exists {
            let mut reader = csv::Reader::from_path(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            for row in reader.records().flatten() {
                if let Some(message) = row.get(1) {
                    templates.insert(template(message));
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "tiers.llm.verdicts_out: cannot open {}: {e}",
                    path.display()
                )
            })?;
        let mut writer = csv::Writer::from_writer(file);
        if !exists {
            writer.write_record(["source", "log_message", "target_label"])?;
            writer.flush()?;
        }
        Ok(Learned {
            path: path.to_path_buf(),
            writer,
            templates,
        })
    }

    pub fn add(&mut self, source: &str, message: &str, label: &str) {
        if !self.templates.insert(template(message)) {
            return;
        }
        let written = self
            .writer
            .write_record([source, message, label])
            .and_then(|()| self.writer.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            warn!("cannot append to {}: {e}", self.path.display());
        }
    }
}
