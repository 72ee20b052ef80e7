//! Reading one config file with every key's place in it: a [`Section`] is a table of the
//! parsed document that a part deserializes its struct from (keeping the line of each value,
//! which serde's tagged enums would lose) and names its keys in problems with; problems are
//! [`ConfigError`]s, `file:line: key: problem (fix)`, collected in [`ConfigErrors`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{ImDocument, InlineTable, Item, Table, TableLike, Value};

/// One config file, parsed, with where each key and value is in it.
pub struct ConfigFile {
    name: String,
    doc: ImDocument<String>,
}

impl ConfigFile {
    /// Parses TOML text, its `${VAR}`s replaced from the environment first (see
    /// `interpolate`); `name` is how errors name the file.
    pub fn parse(name: String, text: String) -> Result<ConfigFile, ConfigErrors> {
        let text = super::interpolate::interpolate(&text, &name, |var| std::env::var(var).ok())?;
        match ImDocument::parse(text.clone()) {
            Ok(doc) => Ok(ConfigFile { name, doc }),
            Err(e) => {
                let line = e.span().map(|s| line_of(&text, s.start));
                Err(ConfigErrors(vec![ConfigError {
                    file: name,
                    line,
                    key: "(file)".into(),
                    problem: e.message().trim().to_string(),
                    fix: "fix the TOML at that line".into(),
                }]))
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole file as a section.
    pub fn root(&self) -> Section<'_> {
        Section {
            file: self,
            table: Some(TableRef::Table(self.doc.as_table())),
            path: String::new(),
            line: None,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    fn line(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        span.map(|s| line_of(self.doc.raw(), s.start))
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// A table of the document: `[[sources]]`, `[tiers.model]`, ….
#[derive(Clone, Copy)]
enum TableRef<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
}

impl<'a> TableRef<'a> {
    fn like(self) -> &'a dyn TableLike {
        match self {
            TableRef::Table(t) => t,
            TableRef::Inline(t) => t,
        }
    }

    /// An owned copy to deserialize from; its values keep their places in the file.
    fn to_inline(self) -> InlineTable {
        match self {
            TableRef::Table(t) => t.clone().into_inline_table(),
            TableRef::Inline(t) => t.clone(),
        }
    }
}

/// One section of a config file, to read a part's struct from and to name its keys, with their
/// lines, in problems. A part reads it with [`Section::parse`]; keys no part read are unknown.
pub struct Section<'a> {
    file: &'a ConfigFile,
    /// `None`: the section is not in the file (its defaults apply).
    table: Option<TableRef<'a>>,
    /// How problems name it: `sources[0]`, `tiers.model`; empty for the top level.
    path: String,
    /// Its header's line, for problems with no line of their own.
    line: Option<usize>,
    /// Keys some part read (see [`Section::reject_unknown`]).
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Section<'a> {
    /// A key of this section, as problems name it: `sinks[0].topic`.
    pub fn key(&self, key: &str) -> Place {
        let line = self
            .table
            .and_then(|t| t.like().get_key_value(key))
            .and_then(|(k, v)| self.file.line(v.span().or_else(|| k.span())))
            .or(self.line);
        self.place(key, line)
    }

    /// Element `index` of the array under `key`, with that element's own line.
    pub fn item(&self, key: &str, index: usize) -> Place {
        let line = self
            .table
            .and_then(|t| t.like().get(key))
            .and_then(|v| v.as_array())
            .and_then(|a| a.get(index))
            .and_then(|v| self.file.line(v.span()));
        match line {
            Some(line) => self.place(key, Some(line)),
            None => self.key(key),
        }
    }

    /// The section itself, for a problem with no key of its own.
    pub fn here(&self) -> Place {
        Place {
            file: self.file.name.clone(),
            line: self.line,
            key: if self.path.is_empty() {
                "(file)".into()
            } else {
                self.path.clone()
            },
        }
    }

    fn place(&self, key: &str, line: Option<usize>) -> Place {
        Place {
            file: self.file.name.clone(),
            line,
            key: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }

    /// The sub-table under `key` (empty when absent).
    pub fn table(&self, key: &str) -> Section<'a> {
        let (table, line) = match self.table.and_then(|t| t.like().get_key_value(key)) {
            Some((k, Item::Table(t))) => (
                Some(TableRef::Table(t)),
                self.file.line(t.span().or_else(|| k.span())),
            ),
            Some((k, Item::Value(Value::InlineTable(t)))) => (
                Some(TableRef::Inline(t)),
                self.file.line(t.span().or_else(|| k.span())),
            ),
            _ => (None, self.line),
        };
        Section {
            file: self.file,
            table,
            path: self.child_path(key),
            line,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// The tables of the array under `key` (`[[sources]]`, or `sources = [{…}]`).
    pub fn list(&self, key: &str, errs: &mut ConfigErrors) -> Vec<Section<'a>> {
        let element = |i: usize, table: TableRef<'a>, span| Section {
            file: self.file,
            table: Some(table),
            path: format!("{}[{i}]", self.child_path(key)),
            line: self.file.line(span),
            read: RefCell::new(BTreeSet::new()),
        };
        match self.table.and_then(|t| t.like().get(key)) {
            None => Vec::new(),
            Some(Item::ArrayOfTables(tables)) => tables
                .iter()
                .enumerate()
                .map(|(i, t)| element(i, TableRef::Table(t), t.span()))
                .collect(),
            Some(Item::Value(Value::Array(values)))
                if values.iter().all(|v| v.is_inline_table()) =>
            {
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        v.as_inline_table()
                            .map(|t| element(i, TableRef::Inline(t), v.span()))
                    })
                    .collect()
            }
            Some(_) => {
                errs.add(
                    self.key(key),
                    "is not a list of tables",
                    format!("write each as a [[{key}]] table"),
                );
                Vec::new()
            }
        }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A string value, when the key holds one.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.read.borrow_mut().insert(key.to_string());
        self.table?.like().get(key)?.as_str()
    }

    /// The `type` of a `[[sources]]` or `[[sinks]]` table, if it is one of `known`.
    pub fn component_type<'k>(
        &self,
        what: &str,
        known: impl Iterator<Item = &'k str>,
        errs: &mut ConfigErrors,
    ) -> Option<&'k str> {
        let known: Vec<&str> = known.collect();
        let list = known
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let Some(name) = self.str("type") else {
            errs.add(
                self.key("type"),
                format!("a {what} needs a type"),
                format!("add type = one of {list}"),
            );
            return None;
        };
        if let Some(k) = known.iter().find(|k| **k == name) {
            return Some(k);
        }
        let missing = match name {
            "kafka" if !cfg!(feature = "kafka") => {
                " (this logsieve was built without Kafka support: build it with the `kafka` feature)"
            }
            _ => "",
        };
        errs.add(
            self.key("type"),
            format!("unknown {what} type `{name}`{missing}"),
            format!("use one of {list}"),
        );
        None
    }

    /// Reads the section (or the part of it `T` declares) into `T`. A bad value is recorded at
    /// its line and its default taken instead; `None` when no value of `T` can be made.
    pub fn parse<T: DeserializeOwned>(&self, errs: &mut ConfigErrors) -> Option<T> {
        self.parse_without(&[], errs)
    }

    /// As [`Section::parse`], leaving out keys that other parts read.
    pub fn parse_without<T: DeserializeOwned>(
        &self,
        skip: &[&str],
        errs: &mut ConfigErrors,
    ) -> Option<T> {
        self.read
            .borrow_mut()
            .extend(keys_of::<T>().iter().map(|k| k.to_string()));
        let mut table = self.table.map(TableRef::to_inline).unwrap_or_default();
        for key in skip {
            table.remove(key);
        }
        // serde stops at the first bad value. To report the others too, the bad one is taken
        // out (its default applies) and the table read again; the checks then run on what is
        // left, and the whole config is refused anyway for the problems recorded.
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..MAX_PROBLEMS_PER_SECTION {
            let err = match T::deserialize(Value::InlineTable(table.clone()).into_deserializer()) {
                Ok(value) => return Some(value),
                Err(e) => e,
            };
            let missing = err.message().starts_with("missing field");
            if missing
                && removed
                    .iter()
                    .any(|k| err.message().contains(&format!("`{k}`")))
            {
                return None; // a required key we took out ourselves: reported already
            }
            let path = err.span().and_then(|span| path_to(&table, &span));
            errs.0.push(self.deserialize_error(&err, path.as_deref()));
            if let Some(Step::Key(k)) = path.as_ref().and_then(|p| p.last()) {
                removed.push(k.clone());
            }
            match path {
                Some(path) if !missing && remove_at(&mut table, &path) => {}
                _ => return None,
            }
        }
        None
    }

    fn deserialize_error(&self, err: &toml_edit::de::Error, path: Option<&[Step]>) -> ConfigError {
        let span = err.span();
        let key = match path {
            Some(path) => {
                let mut key = self.path.clone();
                for step in path {
                    match step {
                        Step::Key(k) if key.is_empty() => key.push_str(k),
                        Step::Key(k) => {
                            key.push('.');
                            key.push_str(k);
                        }
                        Step::Index(i) => key.push_str(&format!("[{i}]")),
                    }
                }
                key
            }
            None => self.here().key,
        };
        let message = err.message().trim().to_string();
        let fix = if message.starts_with("unknown field") {
            "remove it or correct its spelling; docs/configuration.md documents every key"
        } else if message.starts_with("unknown variant") {
            "use one of the values listed"
        } else if message.starts_with("missing field") {
            "add it; docs/configuration.md documents every key"
        } else {
            "fix the value at that line"
        };
        ConfigError {
            file: self.file.name.clone(),
            line: self.file.line(span).or(self.line),
            key,
            problem: message,
            fix: fix.to_string(),
        }
    }

    /// Reports every key of the section that no part read.
    pub fn reject_unknown(&self, errs: &mut ConfigErrors) {
        let Some(table) = self.table else { return };
        let read = self.read.borrow();
        for (key, _) in table.like().iter() {
            if !read.contains(key) {
                let expected: Vec<String> = read.iter().map(|k| format!("`{k}`")).collect();
                errs.add(
                    self.key(key),
                    format!(
                        "unknown field `{key}`, expected one of {}",
                        expected.join(", ")
                    ),
                    "remove it or correct its spelling; docs/configuration.md documents every key",
                );
            }
        }
    }
}

/// How many bad values of one section are reported before giving up on it.
const MAX_PROBLEMS_PER_SECTION: usize = 20;

/// One step into a table: a key, or an array's element.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The steps from `table` to the key or value the byte range `span` of the file is in.
fn path_to(table: &InlineTable, span: &std::ops::Range<usize>) -> Option<Vec<Step>> {
    let holds = |s: Option<std::ops::Range<usize>>| s.is_some_and(|s| s.contains(&span.start));
    for (key, value) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        let inner = match value {
            Value::InlineTable(t) => path_to(t, span),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let deeper = match item {
                    Value::InlineTable(t) => path_to(t, span),
                    _ => None,
                };
                match deeper {
                    Some(rest) => Some([vec![Step::Index(i)], rest].concat()),
                    None => holds(item.span()).then(|| vec![Step::Index(i)]),
                }
            }),
            _ => None,
        };
        if let Some(rest) = inner {
            return Some([vec![Step::Key(key.to_string())], rest].concat());
        }
        if holds(key_span) || holds(value.span()) {
            return Some(vec![Step::Key(key.to_string())]);
        }
    }
    None
}

/// Takes the entry at `path` out of `table`; whether there was one.
fn remove_at(table: &mut InlineTable, path: &[Step]) -> bool {
    match path {
        [Step::Key(key)] => table.remove(key).is_some(),
        [Step::Key(key), rest @ ..] => match table.get_mut(key) {
            Some(Value::InlineTable(inner)) => remove_at(inner, rest),
            Some(Value::Array(items)) => match rest {
                [Step::Index(i)] if *i < items.len() => {
                    items.remove(*i);
                    true
                }
                [Step::Index(i), deeper @ ..] => match items.get_mut(*i) {
                    Some(Value::InlineTable(inner)) => remove_at(inner, deeper),
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        },
        _ => false,
    }
}

/// The keys a config struct reads, in the order it declares them (serde's own list).
pub fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor};

    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Self::Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// Where a problem is: the file, the line when known, and the key as the user wrote it.
#[derive(Debug, Clone)]
pub struct Place {
    file: String,
    line: Option<usize>,
    key: String,
}

impl Place {
    /// The same place, named otherwise in the message (`rules.pattern (rule `b`)`).
    pub fn named(self, key: impl Into<String>) -> Place {
        Place {
            key: key.into(),
            ..self
        }
    }
}

/// One problem with the configuration, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {} ({})", self.key, self.problem, self.fix)
    }
}

/// Every problem found, one per line.
#[derive(Debug, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Records a problem at `at`.
    pub fn add(&mut self, at: Place, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(ConfigError {
            file: at.file,
            line: at.line,
            key: at.key,
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
