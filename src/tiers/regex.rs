//! Regex rules, the cheapest labelling tier: one `RegexSet` pass per line finds every rule that
//! matches anywhere in the message, and the lowest-numbered one wins (first match, as the seed's
//! ordered `re.search` loop did).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use regex::RegexSet;
use serde::{Deserialize, Serialize};

use super::{Labels, Pending, Tier};
use crate::config::{compile_regex, ConfigErrors, ConfigFile, RulesAt, Section, BUILT_IN_RULES};
use crate::event::{TierName, Verdict};

/// `[tiers.regex]`: the rules file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// The rules file, relative to the config file's folder (`[[rules]]` tables: `name`,
    /// `pattern`, `label`); ordered, the first rule that matches wins. None: no rules.
    pub rules: Option<String>,
}

/// The rules file: `[[rules]]`, in order.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// One `[[rules]]` table of the rules file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Names the rule in records (`rule`) and in problems; unique.
    pub name: String,
    /// A Rust regex, matched anywhere in the message (like Python's `re.search`).
    pub pattern: String,
    /// The label a matching line gets.
    pub label: String,
}

/// A rule ready for the regex tier: its pattern compiled, its label checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: Arc<str>,
    pub pattern: String,
    pub label: Arc<str>,
}

/// The rules, checked and compiled into one set.
#[derive(Debug, Clone)]
pub struct RegexPlan {
    pub rules: Vec<Rule>,
    set: RegexSet,
    /// The rules file, when there is one.
    pub origin: Option<String>,
}

impl RegexConfig {
    /// Reads and checks the rules file; problems are reported at the rules file's lines.
    pub fn plan(
        &self,
        at: &Section,
        labels: &Labels,
        rules_at: &RulesAt,
        errs: &mut ConfigErrors,
    ) -> Option<RegexPlan> {
        let Some(rules_path) = &self.rules else {
            return RegexPlan::new(Vec::new(), None).ok();
        };
        let (name, text) = match rules_at {
            RulesAt::BuiltIn => (
                "<built-in config/rules.toml>".to_string(),
                BUILT_IN_RULES.to_string(),
            ),
            RulesAt::Dir(dir) => {
                let path = dir.join(rules_path);
                match std::fs::read_to_string(&path) {
                    Ok(text) => (path.display().to_string(), text),
                    Err(e) => {
                        errs.add(
                            at.key("rules"),
                            format!("cannot read {}: {e}", path.display()),
                            "give a path relative to the config file's folder",
                        );
                        return None;
                    }
                }
            }
        };
        let file = match ConfigFile::parse(name.clone(), text) {
            Ok(file) => file,
            Err(mut e) => {
                errs.0.append(&mut e.0);
                return None;
            }
        };
        let root = file.root();
        let parsed: RulesFile = root.parse(errs)?;
        let tables = root.list("rules", errs);
        let mut names = HashSet::new();
        let mut rules = Vec::new();
        let mut places = Vec::new();
        for (rule, at) in parsed.rules.into_iter().zip(&tables) {
            let name = rule.name;
            let key = |k: &str| at.key(k).named(format!("rules.{k} (rule `{name}`)"));
            if !names.insert(name.clone()) {
                errs.add(
                    at.key("name").named("rules.name"),
                    format!("`{name}` is used twice"),
                    "give every rule its own name",
                );
            }
            if !labels.allows(&rule.label) {
                errs.add(
                    key("label"),
                    format!("`{}` is not a known label", rule.label),
                    format!("use one of: {}", labels.list()),
                );
            }
            places.push(key("pattern"));
            rules.push(Rule {
                name: Arc::from(name.as_str()),
                pattern: rule.pattern,
                label: Arc::from(rule.label.as_str()),
            });
        }
        match RegexPlan::new(rules.clone(), Some(name)) {
            Ok(plan) => Some(plan),
            Err(e) => {
                // Which rules? Each alone, to name them at their lines.
                let before = errs.0.len();
                for (rule, place) in rules.iter().zip(places) {
                    compile_regex(&rule.pattern, place, errs);
                }
                if errs.0.len() == before {
                    errs.add(
                        at.key("rules"),
                        format!("the rules do not compile together: {e}"),
                        "simplify the patterns or use fewer rules",
                    );
                }
                None
            }
        }
    }
}

impl RegexPlan {
    /// The rules compiled as one set.
    pub fn new(rules: Vec<Rule>, origin: Option<String>) -> Result<RegexPlan, regex::Error> {
        let set = RegexSet::new(rules.iter().map(|r| &r.pattern))?;
        Ok(RegexPlan { rules, set, origin })
    }

    pub fn describe(&self) -> String {
        format!(
            "tier regex: {} rules{}",
            self.rules.len(),
            self.origin
                .as_ref()
                .map(|o| format!(" from {o}"))
                .unwrap_or_default()
        )
    }
}

pub struct RegexTier {
    set: RegexSet,
    rules: Vec<Rule>,
}

impl RegexTier {
    pub fn new(plan: &RegexPlan) -> RegexTier {
        RegexTier {
            set: plan.set.clone(),
            rules: plan.rules.clone(),
        }
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

    fn tier(rules: Vec<Rule>) -> RegexTier {
        RegexTier::new(&RegexPlan::new(rules, None).unwrap())
    }

    fn seed_tier() -> RegexTier {
        let config = RegexConfig {
            rules: Some("rules.toml".into()),
        };
        let file = ConfigFile::parse("test".into(), String::new()).unwrap();
        let labels = Labels::new(&["System Notification".into(), "User Action".into()]);
        let mut errs = ConfigErrors::default();
        let plan = config
            .plan(&file.root(), &labels, &RulesAt::BuiltIn, &mut errs)
            .unwrap();
        assert!(errs.is_empty(), "{errs}");
        RegexTier::new(&plan)
    }

    #[test]
    fn first_rule_in_order_wins_when_several_match() {
        let tier = tier(vec![
            rule("specific", r"disk \d+% full", "Resource Usage"),
            rule("general", r"disk", "Error"),
        ]);
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
        let event = |m: &str| {
            let origin = crate::event::Origin::Row { row: 1 };
            crate::event::Event::plain(Arc::from("t"), "s", m, origin)
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
