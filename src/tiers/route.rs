//! Routing, the seed's first decision: lines from a listed source (the seed's `LegacyCRM`), or
//! whose message matches a route's regex, skip the rules and the model and go straight to the
//! LLM tier, which asks with that route's own label set.

use async_trait::async_trait;

use super::{Escalation, Pending, Tier};
use crate::config::{RouteConfig, RouteTarget};
use crate::event::TierName;

enum Matcher {
    Source(String),
    Message(regex::Regex),
}

pub struct RouteTier {
    /// A handful at most, in config order: a scan beats hashing every line's source.
    routes: Vec<(Matcher, usize)>,
}

impl RouteTier {
    pub fn new(routes: &[RouteConfig]) -> anyhow::Result<RouteTier> {
        let mut matchers = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            if route.to != RouteTarget::Llm {
                continue;
            }
            let matcher = match (&route.source, &route.message) {
                (Some(source), _) => Matcher::Source(source.get_ref().clone()),
                (None, Some(message)) => Matcher::Message(regex::Regex::new(message.get_ref())?),
                (None, None) => continue,
            };
            matchers.push((matcher, i));
        }
        Ok(RouteTier { routes: matchers })
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
            let route = self.routes.iter().find(|(m, _)| match m {
                Matcher::Source(s) => *s == *event.source,
                Matcher::Message(re) => re.is_match(&event.message),
            });
            if let Some(&(_, route)) = route {
                pending.escalate(Escalation::Routed { route });
            }
        }
    }
}
