//! Configuration: reads the TOML file (`config/logsieve.toml` by default, else built-in
//! defaults equal to it), applies the `LOGSIEVE_*` environment overrides, and turns it — once —
//! into the checked, typed [`Plan`] that `run`, `classify`, `train` and `validate` use.
//!
//! This module owns only that plumbing, the top level of the file (`data_dir`, `labels`) and
//! the collection of problems. Every other section belongs to the part it configures: its
//! struct (each key documented with `///`, which `logsieve config-reference` turns into
//! `docs/configuration.md`), its checks, and the plan it becomes live next to its code. Every
//! problem is collected, not just the first, and reported as `file:line: key: problem (fix)`.
//!
//! `[[sources]]` and `[[sinks]]` tables are dispatched on their `type` by hand, not through a
//! serde tagged enum, which would buffer the table and lose every line number (toml-rs/toml#535):
//! each table is deserialized straight from the parsed document, which still knows where each
//! key and value is ([`Section`]).

mod interpolate;
mod section;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::batch::BatchConfig;
use crate::server::{ServerConfig, ServerPlan};
use crate::sinks::{self, SinkPlan};
use crate::sources::{self, SourcePlan};
use crate::tiers::{Labels, TiersConfig, TiersPlan, SEED_LABELS};
pub use section::{keys_of, ConfigError, ConfigErrors, ConfigFile, Place, Section};

/// The file `run`, `classify` and `validate` read when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/logsieve.toml";
const BUILT_IN_CONFIG: &str = include_str!("../../config/logsieve.toml");
/// The rules the built-in config names.
pub const BUILT_IN_RULES: &str = include_str!("../../config/rules.toml");

/// Keys at the top of the file, before any `[section]`.
// `[[sources]]` and `[[sinks]]` are read apart (see the module doc); every other section's
// struct lives with its part.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopLevel {
    /// Where checkpoints and the LLM's persisted answers are kept. Env: `LOGSIEVE_DATA_DIR`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The labels tiers may give; `Unclassified` is always allowed besides.
    #[serde(default = "default_labels")]
    pub labels: Vec<String>,
    /// The HTTP server.
    #[serde(default)]
    #[schemars(skip)]
    pub server: ServerConfig,
    /// Micro-batching.
    #[serde(default)]
    #[schemars(skip)]
    pub batch: BatchConfig,
    /// The labelling tiers.
    #[serde(default)]
    #[schemars(skip)]
    pub tiers: TiersConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_labels() -> Vec<String> {
    SEED_LABELS.iter().map(|s| s.to_string()).collect()
}

/// The configuration, checked once and turned into typed values: what `validate` prints and
/// what the commands build their parts from.
pub struct Plan {
    /// The config file, or `<built-in config/logsieve.toml>`.
    pub origin: String,
    /// Everything but the tiers, as a canonical text: two plans with the same key differ in
    /// their tiers only (a reload then swaps the tiers and leaves the pipeline running).
    pub pipeline_key: String,
    pub data_dir: PathBuf,
    pub labels: Labels,
    pub server: ServerPlan,
    pub sources: Vec<Box<dyn SourcePlan>>,
    pub batch: BatchConfig,
    pub tiers: TiersPlan,
    pub sinks: Vec<Box<dyn SinkPlan>>,
}

impl Plan {
    /// What would run, one line per part (`validate` prints it; `run` logs it).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!("config: {} (valid)", self.origin),
            format!("data_dir: {}", self.data_dir.display()),
            self.server.describe(),
        ];
        if self.sources.is_empty() {
            lines.push("sources: none (classification server only)".into());
        }
        lines.extend(
            self.sources
                .iter()
                .map(|s| format!("source: {}", s.describe())),
        );
        lines.push(format!(
            "batch: up to {} lines, {} bytes or {} ms",
            self.batch.max_lines, self.batch.max_bytes, self.batch.max_wait_ms
        ));
        lines.extend(self.tiers.describe());
        lines.extend(self.sinks.iter().map(|s| format!("sink: {}", s.describe())));
        lines
    }
}

/// Loads `path`, or `config/logsieve.toml` when it exists, or the built-in defaults.
pub fn load(path: Option<&Path>) -> Result<Plan, ConfigErrors> {
    let default = Path::new(DEFAULT_CONFIG_PATH);
    let chosen = match path {
        Some(p) => Some(p.to_path_buf()),
        None if default.exists() => Some(default.to_path_buf()),
        None => None,
    };
    let (file, rules_at) = match &chosen {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    file: p.display().to_string(),
                    line: None,
                    key: "(file)".into(),
                    problem: format!("cannot read it: {e}"),
                    fix: "check the path given to --config".into(),
                }])
            })?;
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            (
                ConfigFile::parse(p.display().to_string(), text)?,
                RulesAt::Dir(dir),
            )
        }
        None => (
            ConfigFile::parse(
                "<built-in config/logsieve.toml>".into(),
                BUILT_IN_CONFIG.into(),
            )?,
            RulesAt::BuiltIn,
        ),
    };
    plan(&file, &rules_at)
}

/// Where `[tiers.regex] rules` is looked for.
pub enum RulesAt {
    /// Relative to the config file's folder.
    Dir(PathBuf),
    /// The built-in config names the built-in rules.
    BuiltIn,
}

fn plan(file: &ConfigFile, rules_at: &RulesAt) -> Result<Plan, ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let root = file.root();
    let top = root.parse_without::<TopLevel>(&["sources", "sinks"], &mut errs);
    let sources = sources::plan_all(&root.list("sources", &mut errs), &mut errs);
    let sinks = sinks::plan_all(&root.list("sinks", &mut errs), &mut errs);
    let Some(mut top) = top else {
        return Err(errs);
    };
    apply_env(&mut top, &mut errs);
    let key = pipeline_key(&root, &top);
    let labels = Labels::new(&top.labels);
    let server = top.server.plan(&root.table("server"), &mut errs);
    top.batch.check(&root.table("batch"), &mut errs);
    let tiers = top.tiers.plan(
        &root.table("tiers"),
        &labels,
        &top.data_dir,
        rules_at,
        &mut errs,
    );
    match (server, tiers) {
        (Some(server), Some(tiers)) if errs.0.is_empty() => Ok(Plan {
            origin: file.name().to_string(),
            pipeline_key: key,
            data_dir: top.data_dir,
            labels,
            server,
            sources,
            batch: top.batch,
            tiers,
            sinks,
        }),
        _ => Err(errs),
    }
}

/// The file without `[tiers]` and `labels`, canonically, with what the environment overrides.
fn pipeline_key(root: &Section, top: &TopLevel) -> String {
    let rest = root
        .parse_without::<toml::Value>(&["tiers", "labels"], &mut ConfigErrors::default())
        .map(|v| v.to_string())
        .unwrap_or_default();
    format!(
        "{rest}\ndata_dir={:?} server={:?} kafka={:?}",
        top.data_dir,
        top.server.address,
        std::env::var("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS").ok()
    )
}

/// `LOGSIEVE_DATA_DIR`, `LOGSIEVE_SERVER_ADDRESS` and `LOGSIEVE_LLM_<KEY>` win over the file.
/// (`LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS` is read where Kafka's settings are checked.)
fn apply_env(top: &mut TopLevel, errs: &mut ConfigErrors) {
    if let Ok(dir) = std::env::var("LOGSIEVE_DATA_DIR") {
        top.data_dir = PathBuf::from(dir);
    }
    if let Ok(address) = std::env::var("LOGSIEVE_SERVER_ADDRESS") {
        top.server.address = address;
    }
    let llm = top.tiers.llm.take();
    match crate::tiers::llm::config::with_env_overrides(llm) {
        Ok(llm) => top.tiers.llm = llm,
        Err(e) => errs.0.push(e),
    }
}

/// One `type` of `[[sources]]` or `[[sinks]]`: its name, how its table becomes a plan (`P`:
/// the sources' or the sinks' plan trait), and its keys for `logsieve config-reference`.
pub struct ComponentType<P: ?Sized> {
    pub name: &'static str,
    /// Reads and checks the table (its index in the list given) into a plan.
    pub plan: fn(usize, &Section, &mut ConfigErrors) -> Option<Box<P>>,
    pub schema: fn() -> schemars::Schema,
    /// Its keys in the order its struct declares them.
    pub keys: fn() -> &'static [&'static str],
}

/// A config struct's JSON schema (its keys, their docs and defaults).
pub fn schema_of<C: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(C)
}

/// Plans the tables of a `[[sources]]` or `[[sinks]]` list, each by its `type`; keys no part
/// read are unknown, and two plans that hold the same thing (`exclusive`) are a problem.
pub fn plan_list<P: ?Sized>(
    tables: &[Section],
    what: &str,
    types: &[ComponentType<P>],
    exclusive: impl Fn(&P) -> Option<String>,
    errs: &mut ConfigErrors,
) -> Vec<Box<P>> {
    let mut plans: Vec<Box<P>> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    for (index, at) in tables.iter().enumerate() {
        let Some(kind) = at
            .component_type(what, types.iter().map(|t| t.name), errs)
            .and_then(|name| types.iter().find(|t| t.name == name))
        else {
            continue;
        };
        let plan = (kind.plan)(index, at, errs);
        at.reject_unknown(errs);
        let Some(plan) = plan else { continue };
        if let Some(thing) = exclusive(&plan) {
            if held.contains(&thing) {
                errs.add(
                    at.here(),
                    format!("another {what} already holds {thing}"),
                    "keep one",
                );
            }
            held.push(thing);
        }
        plans.push(plan);
    }
    plans
}

/// A regex from the config, compiled; a problem names the key and the regex's own complaint.
pub fn compile_regex(pattern: &str, at: Place, errs: &mut ConfigErrors) -> Option<regex::Regex> {
    match regex::Regex::new(pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            let detail = e.to_string().lines().last().unwrap_or_default().to_string();
            errs.add(
                at,
                format!("`{pattern}` does not compile: {detail}"),
                "fix the regex (Rust regex syntax; escape literal dots as \\.)",
            );
            None
        }
    }
}

/// A value that must be at least 1.
pub fn at_least_one(value: u64, at: Place, errs: &mut ConfigErrors) {
    if value == 0 {
        errs.add(at, "must be at least 1", "remove it to use the default");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(config: &str, rules: &str) -> Result<Plan, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.toml"), rules).unwrap();
        let path = dir.path().join("logsieve.toml");
        std::fs::write(&path, config).unwrap();
        load(Some(&path))
    }

    #[test]
    fn built_in_defaults_load_the_seed_rules() {
        let file = ConfigFile::parse("built-in".into(), BUILT_IN_CONFIG.into()).unwrap();
        let plan = plan(&file, &RulesAt::BuiltIn).unwrap();
        assert_eq!(plan.tiers.regex.rules.len(), 8);
        assert_eq!(
            plan.tiers.routes[0].describe_matcher(),
            "source \"LegacyCRM\""
        );
        assert_eq!(plan.server.address.to_string(), "127.0.0.1:9598");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = load_text("data_dir = \"x\"\n[batch]\nmax_line = 5\n", "")
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("logsieve.toml:3: batch.max_line: unknown field"),
            "{text}"
        );
        assert!(
            text.contains("max_lines"),
            "lists the expected keys: {text}"
        );
    }

    #[test]
    fn an_unknown_key_in_a_sink_or_source_table_is_named_with_its_line() {
        let config = "[[sources]]\ntype = \"stdin\"\nformat = \"text\"\nbogus = 1\n\n[[sinks]]\ntype = \"file\"\npath = \"out.jsonl\"\nfsynk = true\n";
        let text = load_text(config, "").err().unwrap().to_string();
        assert!(
            text.contains("logsieve.toml:4: sources[0].bogus: unknown field `bogus`"),
            "{text}"
        );
        assert!(
            text.contains("logsieve.toml:9: sinks[0].fsynk: unknown field `fsynk`"),
            "{text}"
        );
        assert!(text.contains("`fsync`"), "lists the expected keys: {text}");
    }

    #[test]
    fn a_bad_value_is_named_by_its_key_and_the_other_problems_still_reported() {
        let config = "[batch]\nmax_wait_ms = \"soon\"\nmax_lines = 0\n\n[tiers.llm]\napi_key_env = \"\"\non_full = \"panic\"\n";
        let text = load_text(config, "").err().unwrap().to_string();
        assert!(
            text.contains("logsieve.toml:2: batch.max_wait_ms: invalid type: string \"soon\""),
            "{text}"
        );
        assert!(
            text.contains("logsieve.toml:7: tiers.llm.on_full: unknown variant `panic`"),
            "{text}"
        );
        assert!(
            text.contains("logsieve.toml:3: batch.max_lines: must be at least 1"),
            "the checks ran on the rest: {text}"
        );
        assert!(!text.contains("missing field"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let config = "[[sources]]\ntype = \"file\"\n\n[[sources]]\ntype = \"carrier-pigeon\"\n\n[[sinks]]\ntype = \"file\"\n";
        let text = load_text(config, "").err().unwrap().to_string();
        assert!(
            text.contains(
                "logsieve.toml:1: sources[0].include: a file source needs at least one glob"
            ),
            "{text}"
        );
        assert!(
            text.contains("logsieve.toml:5: sources[1].type: unknown source type `carrier-pigeon`"),
            "{text}"
        );
        assert!(
            text.contains("logsieve.toml:7: sinks[0].path: a file sink needs a path"),
            "{text}"
        );
    }

    #[test]
    fn bad_regex_and_unknown_label_are_reported_at_their_lines() {
        let rules = "[[rules]]\nname = \"a\"\npattern = 'ok'\nlabel = \"Error\"\n\n[[rules]]\nname = \"b\"\npattern = 'oops ('\nlabel = \"Eror\"\n";
        let err = load_text("[tiers.regex]\nrules = \"rules.toml\"\n", rules)
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("rules.toml:8: rules.pattern (rule `b`)"),
            "{text}"
        );
        assert!(text.contains("does not compile"), "{text}");
        assert!(
            text.contains("rules.toml:9: rules.label (rule `b`): `Eror` is not a known label"),
            "{text}"
        );
    }

    #[test]
    fn keys_of_lists_a_structs_keys_in_declaration_order() {
        assert_eq!(
            keys_of::<TopLevel>(),
            ["data_dir", "labels", "server", "batch", "tiers"]
        );
    }
}
