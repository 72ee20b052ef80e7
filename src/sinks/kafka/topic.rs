//! Kafka sink topics: a topic name, or a template with `{label}` and `{source}` filled in per
//! record (lower-cased, with characters a topic name cannot hold as `-`), cut to Kafka's limit.

use std::borrow::Cow;

use crate::event::Record;

const MAX_TOPIC_LEN: usize = 249;

/// A topic name with `{label}` and `{source}` filled in per record.
#[derive(Debug, PartialEq)]
pub enum TopicTemplate {
    Fixed(String),
    Parts(Vec<Part>),
}

#[derive(Debug, PartialEq)]
pub enum Part {
    Text(String),
    Label,
    Source,
}

impl TopicTemplate {
    pub fn parse(template: &str) -> TopicTemplate {
        if !template.contains("{label}") && !template.contains("{source}") {
            return TopicTemplate::Fixed(template.to_string());
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let (field, after) = if rest[open..].starts_with("{label}") {
                (Part::Label, &rest[open + "{label}".len()..])
            } else if rest[open..].starts_with("{source}") {
                (Part::Source, &rest[open + "{source}".len()..])
            } else {
                parts.push(Part::Text(rest[..=open].to_string()));
                rest = &rest[open + 1..];
                continue;
            };
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            parts.push(field);
            rest = after;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        TopicTemplate::Parts(parts)
    }

    pub fn render(&self, record: &Record) -> Cow<'_, str> {
        match self {
            TopicTemplate::Fixed(topic) => Cow::Borrowed(topic),
            TopicTemplate::Parts(parts) => {
                let mut topic = String::new();
                for part in parts {
                    match part {
                        Part::Text(text) => topic.push_str(text),
                        Part::Label => push_topic_safe(&mut topic, &record.verdict.label),
                        Part::Source => push_topic_safe(&mut topic, &record.event.source),
                    }
                }
                // Kafka's limit on a topic name's length (what is filled in is ASCII).
                topic.truncate(MAX_TOPIC_LEN);
                Cow::Owned(topic)
            }
        }
    }
}

/// Appends `value` lower-cased, with every character Kafka does not allow in a topic name
/// (outside `a-z 0-9 . _ -`) as `-`: "Security Alert" → "security-alert".
fn push_topic_safe(topic: &mut String, value: &str) {
    topic.extend(value.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
            c
        } else {
            '-'
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::event::{Event, Origin, TierName, Verdict};

    fn record(label: &str, source: &str) -> Record {
        Record {
            event: Event::plain(
                Arc::from("2026-11-27T00:00:00.000Z"),
                source,
                "m",
                Origin::Row { row: 1 },
            ),
            verdict: Verdict {
                label: Arc::from(label),
                tier: TierName::Regex,
                confidence: None,
                rule: None,
                reason: None,
            },
        }
    }

    #[test]
    fn a_topic_template_takes_the_label_and_source_in_a_topic_safe_form() {
        let template = TopicTemplate::parse("logs.{label}.{source}");
        assert_eq!(
            template.render(&record("Security Alert", "LegacyCRM/eu")),
            "logs.security-alert.legacycrm-eu"
        );
        assert_eq!(
            TopicTemplate::parse("plain-topic"),
            TopicTemplate::Fixed("plain-topic".into())
        );
        let odd = TopicTemplate::parse("{x}-{label}");
        assert_eq!(odd.render(&record("Error", "a")), "{x}-error");
        let long = TopicTemplate::parse("logs.{source}");
        assert_eq!(long.render(&record("Error", &"s".repeat(400))).len(), 249);
    }
}
