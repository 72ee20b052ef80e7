//! Regex rules, the cheapest labelling tier: one `RegexSet` pass per line finds every rule that
//! matches anywhere in the message, and the lowest-numbered one wins (first match, as the seed's
//! ordered `re.search` loop did).

use std::sync::Arc;

use async_trait::async_trait;
use regex::RegexSet;

use super::{Pending, Tier};
use crate::config::Rule;
use crate::event::{TierName, Verdict};

pub struct RegexTier {
    set: RegexSet,
    rules: Vec<Rule>,
}

impl RegexTier {
    pub fn new(rules: &[Rule]) -> anyhow::Result<RegexTier> {
        let set = RegexSet::new(rules.iter().map(|r| &r.pattern))?;
        Ok(RegexTier {
            set,
            rules: rules.to_vec(),
        })
    }

    /// The first rule matching `message`, if any.
    pub fn first_match(&self, message: &str) -> Option<&Rule> {
        // Most lines match no rule; `is_match` rejects them with a literal prefilter, without
        // the overlapping search `matches` needs to find every rule that matches.
        if !self.set.is_match(message) {
            return None;
        }
        self.set
            .matches(message)
            .iter()
            .next()
            .map(|i| &self.rules[i])
    }
}

#[async_trait]
impl Tier for RegexTier {
    fn name(&self) -> TierName {
        TierName::Regex
    }

    async fn label(&self, batch: &mut [Pending]) {
        if self.rules.is_empty() {
            return;
        }
        for pending in batch.iter_mut().filter(|p| p.is_open()) {
            if let Some(rule) = self.first_match(&pending.event.message) {
                pending.verdict = Some(Verdict {
                    label: rule.label.clone(),
                    tier: TierName::Regex,
                    confidence: None,
                    rule: Some(Arc::clone(&rule.name)),
                    reason: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, pattern: &str, label: &str) -> Rule {
        Rule {
            name: Arc::from(name),
            pattern: pattern.into(),
            label: Arc::from(label),
        }
    }

    fn seed_tier() -> RegexTier {
        let text = include_str!("../../config/rules.toml");
        #[derive(serde::Deserialize)]
        struct F {
            rules: Vec<R>,
        }
        #[derive(serde::Deserialize)]
        struct R {
            name: String,
            pattern: String,
            label: String,
        }
        let f: F = toml::from_str(text).unwrap();
        let rules: Vec<Rule> = f
            .rules
            .iter()
            .map(|r| rule(&r.name, &r.pattern, &r.label))
            .collect();
        RegexTier::new(&rules).unwrap()
    }

    #[test]
    fn first_rule_in_order_wins_when_several_match() {
        let tier = RegexTier::new(&[
            rule("specific", r"disk \d+% full", "Resource Usage"),
            rule("general", r"disk", "Error"),
        ])
        .unwrap();
        assert_eq!(
            &*tier.first_match("disk 91% full").unwrap().name,
            "specific"
        );
        assert_eq!(&*tier.first_match("disk gone").unwrap().name, "general");
        assert!(tier.first_match("all good").is_none());
    }

    #[test]
    fn seed_rules_match_anywhere_like_re_search() {
        let tier = seed_tier();
        let cases = [
            ("User User123 logged in.", Some("User Action")),
            (
                "prefix: User User9 logged out. trailing",
                Some("User Action"),
            ),
            (
                "Backup started at 2025-05-14 07:06:55.",
                Some("System Notification"),
            ),
            (
                "File data_6957.csv uploaded successfully by user User265.",
                Some("System Notification"),
            ),
            (
                "Account with ID 5351 created by User634.",
                Some("User Action"),
            ),
            (
                "Disk cleanup completed successfully.",
                Some("System Notification"),
            ),
            // The seed's output.csv called this a Security Alert; no seed rule matches it.
            ("User 12345 logged in.", None),
            // Dots are escaped now: "Backup completed successfullyX" no longer matches.
            ("Backup completed successfullyX", None),
        ];
        for (message, label) in cases {
            assert_eq!(
                tier.first_match(message).map(|r| &*r.label),
                label,
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn routed_and_decided_lines_are_left_alone() {
        let tier = seed_tier();
        let event = |m: &str| crate::event::Event {
            timestamp: Arc::from("t"),
            source: Arc::from("s"),
            message: m.into(),
            origin: crate::event::Origin::Row { row: 1 },
            fields: None,
            truncated: false,
            invalid_utf8: false,
        };
        let mut batch = vec![
            Pending::new(event("Backup completed successfully.")),
            Pending::new(event("Backup completed successfully.")),
            Pending::new(event("nothing to see")),
        ];
        batch[1].escalate(super::super::Escalation::Routed { route: 0 });
        tier.label(&mut batch).await;
        assert_eq!(
            batch[0].verdict.as_ref().unwrap().rule.as_deref(),
            Some("backup_completed")
        );
        assert!(batch[1].verdict.is_none(), "routed to the LLM");
        assert!(batch[2].verdict.is_none());
    }
}
