//! Routing by source, the seed's first decision: lines from a listed source (the seed's
//! `LegacyCRM`) skip the rules and the model and go straight to the LLM tier.

use async_trait::async_trait;

use super::{Escalation, Pending, Tier};
use crate::config::{RouteConfig, RouteTarget};
use crate::event::TierName;

pub struct RouteTier {
    /// Sources sent to the LLM. A handful at most: a scan beats hashing every line's source.
    to_llm: Vec<String>,
}

impl RouteTier {
    pub fn new(routes: &[RouteConfig]) -> RouteTier {
        RouteTier {
            to_llm: routes
                .iter()
                .filter(|r| r.to == RouteTarget::Llm)
                .map(|r| r.source.get_ref().clone())
                .collect(),
        }
    }
}

#[async_trait]
impl Tier for RouteTier {
    fn name(&self) -> TierName {
        TierName::Route
    }

    async fn label(&self, batch: &mut [Pending]) {
        if self.to_llm.is_empty() {
            return;
        }
        for pending in batch.iter_mut().filter(|p| p.is_open()) {
            let source: &str = &pending.event.source;
            if self.to_llm.iter().any(|s| s == source) {
                pending.escalate(Escalation::Routed);
            }
        }
    }
}
