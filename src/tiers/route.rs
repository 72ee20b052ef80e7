//! Routing, the seed's first decision: lines from a listed source (the seed's `LegacyCRM`), or
//! whose message matches a route's regex, skip the rules and the model and go straight to the
//! LLM tier, which asks with that route's own label set.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Escalation, Labels, Pending, Tier};
use crate::config::{compile_regex, ConfigErrors, Section};
use crate::event::TierName;

/// `[[tiers.route]]`: lines that skip the rules and the model and go to the LLM. Without an LLM
/// tier they leave as `Unclassified` with reason `llm_disabled`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Lines whose `source` equals this, e.g. `"LegacyCRM"`.
    pub source: Option<String>,
    /// Or (instead of `source`) lines whose message matches this regex.
    pub message: Option<String>,
    /// Where they go.
    pub to: RouteTarget,
    /// The labels the LLM may choose from for these lines [default: every label].
    pub labels: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteTarget {
    /// The LLM tier.
    Llm,
}

/// What a route matches.
#[derive(Debug, Clone)]
pub enum Matcher {
    Source(String),
    Message(regex::Regex),
}

/// A route, checked: its matcher compiled and its labels known.
#[derive(Debug, Clone)]
pub struct RoutePlan {
    pub matcher: Matcher,
    /// The labels the LLM may give its lines.
    pub labels: Arc<[Arc<str>]>,
}

impl RouteConfig {
    pub fn plan(self, at: &Section, labels: &Labels, errs: &mut ConfigErrors) -> Option<RoutePlan> {
        let matcher = match (self.source, self.message) {
            (Some(source), _) if source.is_empty() => {
                errs.add(
                    at.key("source"),
                    "is empty",
                    "name the source, e.g. \"LegacyCRM\"",
                );
                None
            }
            (Some(_), Some(_)) => {
                errs.add(
                    at.key("source"),
                    "a route takes `source` or `message`, not both",
                    "split it into two routes",
                );
                None
            }
            (None, None) => {
                errs.add(
                    at.key("source"),
                    "a route needs `source` or `message`",
                    "add source = \"LegacyCRM\" or message = \"^legacy:\"",
                );
                None
            }
            (Some(source), None) => Some(Matcher::Source(source)),
            (None, Some(message)) => {
                compile_regex(&message, at.key("message"), errs).map(Matcher::Message)
            }
        };
        let allowed: Arc<[Arc<str>]> = match &self.labels {
            None => labels.all(),
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    if !labels.allows(name) {
                        errs.add(
                            at.item("labels", i),
                            format!("`{name}` is not a known label"),
                            format!("use some of: {}", labels.list()),
                        );
                    }
                }
                names.iter().map(|n| Arc::from(n.as_str())).collect()
            }
        };
        Some(RoutePlan {
            matcher: matcher?,
            labels: allowed,
        })
    }
}

impl RoutePlan {
    /// `source "LegacyCRM"` or `message ~ /regex/`.
    pub fn describe_matcher(&self) -> String {
        match &self.matcher {
            Matcher::Source(s) => format!("source {s:?}"),
            Matcher::Message(re) => format!("message ~ /{}/", re.as_str()),
        }
    }

    pub fn describe(&self) -> String {
        let labels: Vec<&str> = self.labels.iter().map(|l| &**l).collect();
        format!(
            "tier route: {} -> llm ({})",
            self.describe_matcher(),
            labels.join(", ")
        )
    }

    /// The source it routes, if it routes by source.
    pub fn source(&self) -> Option<&str> {
        match &self.matcher {
            Matcher::Source(s) => Some(s),
            Matcher::Message(_) => None,
        }
    }

    /// What names the route in the LLM cache's keys: its source or its regex (not its index,
    /// so that reordering routes does not mix their answers).
    pub fn id(&self) -> String {
        match &self.matcher {
            Matcher::Source(s) => format!("route source={s}"),
            Matcher::Message(re) => format!("route message={}", re.as_str()),
        }
    }
}

pub struct RouteTier {
    /// A handful at most, in config order: a scan beats hashing every line's source.
    routes: Vec<Matcher>,
}

impl RouteTier {
    pub fn new(routes: &[RoutePlan]) -> RouteTier {
        RouteTier {
            routes: routes.iter().map(|r| r.matcher.clone()).collect(),
        }
    }
}

#[async_trait]
impl Tier for RouteTier {
    fn name(&self) -> TierName {
        TierName::Route
    }

    async fn label(&self, batch: &mut [Pending]) {
        if self.routes.is_empty() {
            return;
        }
        for pending in batch.iter_mut().filter(|p| p.is_open()) {
            let event = &pending.event;
            let route = self.routes.iter().position(|m| match m {
                Matcher::Source(s) => *s == *event.source,
                Matcher::Message(re) => re.is_match(&event.message),
            });
            if let Some(route) = route {
                pending.escalate(Escalation::Routed { route });
            }
        }
    }
}
