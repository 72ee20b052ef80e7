//! The template cache: most log lines are a handful of shapes with different numbers in them.
//! [`template`] masks the variable parts of a line (UUIDs, IPs, hex ids, quoted strings, paths,
//! numbers); a bounded LRU maps a template to the verdict an expensive tier (the model, later the
//! LLM) gave it, so a repeated shape skips the model. The cache tier answers hits, in front of
//! the model tier, which fills it with its confident verdicts.

use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use prometheus::{IntCounterVec, IntGauge};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Pending, Tier};
use crate::event::{TierName, Verdict};
use crate::metrics::Registry;

/// `[tiers.cache]`: templates the model or the LLM already decided are answered from here.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Templates remembered (least recently used go first); 0 turns the cache off.
    #[serde(default = "default_cache_capacity")]
    pub capacity: usize,
}

fn default_cache_capacity() -> usize {
    100_000
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: default_cache_capacity(),
        }
    }
}

/// The placeholder that replaces a variable part.
pub const HOLE: &str = "<*>";

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
          [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}   # UUID
        | \b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b                                     # IPv4[:port]
        | \b(?:0x)?[0-9a-fA-F]{8,}\b                                                  # hex id
        | "[^"\n]{0,256}" | '[^'\n]{0,256}'                                            # quoted
        | (?:/[^\s/"',;]+){2,}/?                                                      # path
        | \d+(?:[.,:]\d+)*                                                            # number
        "#,
    )
    .expect("valid template pattern")
});

/// The line with its variable parts replaced by `<*>`.
pub fn template(message: &str) -> String {
    VARIABLE.replace_all(message, HOLE).into_owned()
}

/// A bounded map from template to verdict, shared by the tiers that read and fill it.
pub struct TemplateCache {
    entries: Mutex<lru::LruCache<String, Verdict>>,
    lookups: IntCounterVec,
    size: IntGauge,
}

impl TemplateCache {
    pub fn new(capacity: usize, registry: &Registry) -> Arc<TemplateCache> {
        let capacity = NonZeroUsize::new(capacity.max(1)).expect("at least 1");
        Arc::new(TemplateCache {
            entries: Mutex::new(lru::LruCache::new(capacity)),
            lookups: registry.counter_vec(
                "logsieve_cache_lookups_total",
                "Template cache lookups, by result (hit or miss).",
                &["result"],
            ),
            size: registry.gauge("logsieve_cache_entries", "Templates in the cache."),
        })
    }

    /// Remembers what an expensive tier decided for a template.
    pub fn insert(&self, template: String, verdict: Verdict) {
        let mut entries = self.entries.lock().expect("cache lock");
        entries.put(template, verdict);
        self.size.set(entries.len() as i64);
    }

    pub fn get(&self, template: &str) -> Option<Verdict> {
        self.entries
            .lock()
            .expect("cache lock")
            .get(template)
            .cloned()
    }
}

/// Answers lines whose template an expensive tier already decided.
pub struct CacheTier {
    cache: Arc<TemplateCache>,
}

impl CacheTier {
    pub fn new(cache: Arc<TemplateCache>) -> CacheTier {
        CacheTier { cache }
    }
}

#[async_trait]
impl Tier for CacheTier {
    fn name(&self) -> TierName {
        TierName::Cache
    }

    async fn label(&self, batch: &mut [Pending]) {
        let (mut hits, mut misses) = (0, 0);
        let mut entries = self.cache.entries.lock().expect("cache lock");
        for pending in batch.iter_mut().filter(|p| p.is_open()) {
            let t = template(&pending.event.message);
            match entries.get(&t) {
                Some(v) => {
                    hits += 1;
                    pending.verdict = Some(Verdict {
                        tier: TierName::Cache,
                        ..v.clone()
                    });
                }
                None => misses += 1,
            }
            pending.template = Some(t);
        }
        drop(entries);
        self.cache.lookups.with_label_values(&["hit"]).inc_by(hits);
        self.cache
            .lookups
            .with_label_values(&["miss"])
            .inc_by(misses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_are_masked() {
        let cases = [
            ("User User123 logged in.", "User User<*> logged in."),
            (
                "IP 192.168.133.114:8080 blocked due to potential attack",
                "IP <*> blocked due to potential attack",
            ),
            (
                "nova.osapi_compute.wsgi.server [req-b9718cd8-f65e-49cc-8349-6cf7122af137 113d3a99c3da401fbd62cc2caa5b96d2] \"GET /v2/servers/detail HTTP/1.1\" status: 200 len: 1893 time: 0.2675118",
                "nova.osapi_compute.wsgi.server [req-<*> <*>] <*> status: <*> len: <*> time: <*>",
            ),
            (
                "The 'ReportGenerator' module will be retired in version 4.0.",
                "The <*> module will be retired in version <*>.",
            ),
            ("Reading /var/lib/app/data.db failed", "Reading <*> failed"),
            ("Disk usage at 91%", "Disk usage at <*>%"),
        ];
        for (line, want) in cases {
            assert_eq!(template(line), want, "{line}");
        }
    }

    #[test]
    fn lines_differing_only_in_numbers_share_a_template() {
        assert_eq!(
            template("Memory usage at 93% on node worker-3"),
            template("Memory usage at 71% on node worker-12")
        );
        assert_ne!(
            template("Memory usage at 93% on node worker-3"),
            template("Disk usage at 93% on node worker-3")
        );
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_least_recently_used() {
        let cache = TemplateCache::new(2, &Registry::default());
        let v = Verdict::fallback(TierName::Model, None);
        cache.insert("a".into(), v.clone());
        cache.insert("b".into(), v.clone());
        assert!(cache.get("a").is_some()); // a is now the most recently used
        cache.insert("c".into(), v);
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert_eq!(cache.size.get(), 2);
    }
}
