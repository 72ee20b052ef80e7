//! Reading an LLM's answer: whatever the server sent back (a constrained JSON object, a
//! `<category>` tag as the seed asked for, a reasoning model's `<think>` preamble, or a
//! sentence that happens to name one label), find the one allowed label it means, or say it
//! did not give one. Matching is case-insensitive; `Unclassified` is always allowed.

use std::sync::Arc;

use crate::event::UNCLASSIFIED;

/// The allowed label the answer names, or `None` when it names none (or several).
pub fn parse(answer: &str, allowed: &[Arc<str>]) -> Option<Arc<str>> {
    let text = strip_think(answer)?;
    let text = text.trim();
    // A constrained answer: {"label": "..."} (or "category").
    if text.starts_with('{') {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
            let field = ["label", "category"]
                .iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()));
            return field.and_then(|f| exact(f, allowed));
        }
    }
    if let Some(inner) = between(text, "<category>", "</category>") {
        return exact(inner, allowed);
    }
    exact(text, allowed).or_else(|| mentioned_once(text, allowed))
}

/// The answer without a reasoning model's `<think>…</think>` part; `None` when the thinking
/// never ended (the answer was cut off before it said anything).
fn strip_think(answer: &str) -> Option<&str> {
    match answer.find("<think>") {
        None => Some(answer),
        Some(_) => answer
            .rfind("</think>")
            .map(|end| &answer[end + "</think>".len()..]),
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The allowed label equal to `text`, ignoring case, surrounding space, quotes, markdown
/// emphasis and a final full stop.
fn exact(text: &str, allowed: &[Arc<str>]) -> Option<Arc<str>> {
    let cleaned = text
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '*' || c == '`' || c == '.')
        .trim();
    if cleaned.eq_ignore_ascii_case(UNCLASSIFIED) {
        return Some(Arc::from(UNCLASSIFIED));
    }
    allowed
        .iter()
        .find(|l| l.eq_ignore_ascii_case(cleaned))
        .cloned()
}

/// A free-text answer that names exactly one allowed label ("The category is Workflow Error").
fn mentioned_once(text: &str, allowed: &[Arc<str>]) -> Option<Arc<str>> {
    let lower = text.to_lowercase();
    let mut named = allowed.iter().filter(|l| lower.contains(&l.to_lowercase()));
    let first = named.next()?;
    // "Error" is inside "Workflow Error": a label contained in another named one does not count.
    let others: Vec<&Arc<str>> = named.collect();
    let longest = others
        .iter()
        .copied()
        .chain(std::iter::once(first))
        .max_by_key(|l| l.len())
        .expect("one at least");
    let all_inside_longest = others
        .iter()
        .chain(std::iter::once(&first))
        .all(|l| longest.to_lowercase().contains(&l.to_lowercase()));
    all_inside_longest.then(|| longest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<Arc<str>> {
        ["Workflow Error", "Deprecation Warning", "Error"]
            .iter()
            .map(|l| Arc::from(*l))
            .collect()
    }

    fn parsed(answer: &str) -> Option<String> {
        parse(answer, &labels()).map(|l| l.to_string())
    }

    #[test]
    fn the_seed_category_tag_is_read_case_insensitively() {
        assert_eq!(
            parsed("Sure. <category> workflow error </category>").as_deref(),
            Some("Workflow Error")
        );
    }

    #[test]
    fn a_reasoning_models_think_block_is_skipped() {
        let answer = "<think>Maybe <category>Error</category>? No.</think>\n<category>Deprecation Warning</category>";
        assert_eq!(parsed(answer).as_deref(), Some("Deprecation Warning"));
        assert_eq!(parsed("<think>still thinking about Error when cut"), None);
    }

    #[test]
    fn constrained_json_and_bare_labels_are_read() {
        assert_eq!(
            parsed(r#"{"label": "Workflow Error"}"#).as_deref(),
            Some("Workflow Error")
        );
        assert_eq!(parsed("\"Error\".").as_deref(), Some("Error"));
        assert_eq!(parsed("**Unclassified**").as_deref(), Some("Unclassified"));
    }

    #[test]
    fn a_sentence_naming_one_label_is_read_and_nesting_is_not_ambiguity() {
        assert_eq!(
            parsed("This looks like a Workflow Error to me").as_deref(),
            Some("Workflow Error")
        );
        assert_eq!(
            parsed("Either an Error or a Deprecation Warning"),
            None,
            "two unrelated labels are ambiguous"
        );
    }

    #[test]
    fn labels_outside_the_set_and_garbage_are_not_read() {
        assert_eq!(parsed("<category>Security Alert</category>"), None);
        assert_eq!(parsed(r#"{"label": "Security Alert"}"#), None);
        assert_eq!(parsed("\u{0}\u{1}garbage%%"), None);
        assert_eq!(parsed(""), None);
    }
}
