//! The LLM tier's memory across restarts: every answer is appended to
//! `data_dir/llm-cache.jsonl` (`{"key", "label"}` per line) and loaded into the template cache
//! at start, so a restart does not pay for the same templates again. The file is rewritten
//! without duplicates at load; an answer whose label the config no longer allows is dropped.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::event::{TierName, Verdict};
use crate::tiers::cache::TemplateCache;

/// The file of persisted LLM answers, open for appending.
pub struct Persisted {
    file: Mutex<std::fs::File>,
}

impl Persisted {
    /// Loads the persisted answers into the cache (those `allowed` still), rewrites the file
    /// without duplicates, and keeps it open for appending.
    pub fn load(
        path: &Path,
        cache: &TemplateCache,
        allowed: impl Fn(&str, &str) -> bool,
    ) -> anyhow::Result<Persisted> {
        Ok(Persisted {
            file: Mutex::new(load(path, cache, allowed)?),
        })
    }

    /// Appends one answer.
    pub fn append(&self, key: &str, label: &str) {
        let line = serde_json::json!({"key": key, "label": label});
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(file, "{line}") {
            warn!("cannot append to the LLM cache file: {e}");
        }
    }
}

fn load(
    path: &Path,
    cache: &TemplateCache,
    allowed: impl Fn(&str, &str) -> bool,
) -> anyhow::Result<std::fs::File> {
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let mut index: HashMap<String, usize> = HashMap::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue; // a line cut by a crash
            };
            if let (Some(k), Some(l)) = (value["key"].as_str(), value["label"].as_str()) {
                if !allowed(k, l) {
                    continue; // the config changed: this answer may not be given any more
                }
                match index.get(k) {
                    Some(&i) => entries[i].1 = l.to_string(),
                    None => {
                        index.insert(k.to_string(), entries.len());
                        entries.push((k.to_string(), l.to_string()));
                    }
                }
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = String::new();
    for (key, label) in &entries {
        cache.insert(
            key.clone(),
            Verdict {
                label: Arc::from(label.as_str()),
                tier: TierName::Llm,
                confidence: None,
                rule: None,
                reason: None,
            },
        );
        text.push_str(&serde_json::json!({"key": key, "label": label}).to_string());
        text.push('\n');
    }
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if !entries.is_empty() {
        info!(
            "LLM tier: {} verdicts loaded from {}",
            entries.len(),
            path.display()
        );
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))
}
