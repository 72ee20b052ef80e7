//! Every kind of config mistake, one test each, through `logsieve validate`: the message names
//! the file, the line, the key, what is wrong and how to fix it, and the run is refused.

mod common;

use std::fs;
use std::process::Command;

use common::*;

/// Runs `validate` on `config` (with `rules` as `rules.toml` beside it) and checks that it is
/// refused with every `expected` text in its message.
fn refused(config: &str, rules: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("logs")).unwrap();
    fs::write(dir.path().join("rules.toml"), rules).unwrap();
    let config = config.replace("$DIR", &dir.path().display().to_string());
    fs::write(dir.path().join("logsieve.toml"), &config).unwrap();
    let out = Command::new(BIN)
        .arg("validate")
        .arg("--config")
        .arg(dir.path().join("logsieve.toml"))
        .env_remove("LOGSIEVE_KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("LOGSIEVE_DATA_DIR")
        .env_remove("LOGSIEVE_SERVER_ADDRESS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{config}");
    for text in expected {
        assert!(stderr.contains(text), "`{text}` missing from:\n{stderr}");
    }
    assert!(
        stderr.contains("logsieve.toml:") || stderr.contains("rules.toml:"),
        "names the file: {stderr}"
    );
}

macro_rules! refuses {
    ($($name:ident: $config:expr, $rules:expr => [$($expected:expr),+ $(,)?];)*) => {
        $(
            #[test]
            fn $name() {
                refused($config, $rules, &[$($expected),+]);
            }
        )*
    };
}

const FILE: &str = "[[sources]]\ntype = \"file\"\ninclude = [\"$DIR/logs/*.log\"]\n";

refuses! {
    toml_syntax: "[server\naddress = 1", "" =>
        ["logsieve.toml:1: (file):", "fix the TOML at that line"];
    unknown_key: "[batch]\nmax_line = 5", "" =>
        ["logsieve.toml:2: batch.max_line: unknown field `max_line`", "expected one of `max_lines`, `max_bytes`, `max_wait_ms`"];
    wrong_type: "[batch]\nmax_wait_ms = \"soon\"", "" =>
        ["logsieve.toml:2: batch.max_wait_ms: invalid type: string \"soon\", expected u64"];
    unknown_value: "[tiers.llm]\non_full = \"panic\"", "" =>
        ["logsieve.toml:2: tiers.llm.on_full: unknown variant `panic`", "use one of the values listed"];
    missing_required_key: "[[tiers.route]]\nsource = \"A\"", "" =>
        ["logsieve.toml:1: tiers.route: missing field `to`", "add it"];
    bad_address: "[server]\naddress = \"localhost\"", "" =>
        ["logsieve.toml:2: server.address: `localhost` is not an IP:port address", "127.0.0.1:9598"];
    zero_batch: "[batch]\nmax_lines = 0", "" =>
        ["logsieve.toml:2: batch.max_lines: must be at least 1"];
    zero_batch_bytes: "[batch]\nmax_bytes = 0", "" =>
        ["logsieve.toml:2: batch.max_bytes: must be at least 1", "1048576"];
    source_without_type: "[[sources]]\nname = \"x\"", "" =>
        ["logsieve.toml:1: sources[0].type: a source needs a type", "\"file\", \"stdin\""];
    unknown_source_type: "[[sources]]\ntype = \"syslog\"", "" =>
        ["logsieve.toml:2: sources[0].type: unknown source type `syslog`"];
    unknown_key_in_a_source: "[[sources]]\ntype = \"stdin\"\nbogus = 1", "" =>
        ["logsieve.toml:3: sources[0].bogus: unknown field `bogus`", "`max_line_bytes`"];
    two_stdin_sources: "[[sources]]\ntype = \"stdin\"\n[[sources]]\ntype = \"stdin\"", "" =>
        ["logsieve.toml:3: sources[1]: another source already holds standard input", "keep one"];
    tiny_max_line_bytes: "[[sources]]\ntype = \"stdin\"\nmax_line_bytes = 4", "" =>
        ["logsieve.toml:3: sources[0].max_line_bytes: 4 is too small"];
    file_source_without_globs: "[[sources]]\ntype = \"file\"", "" =>
        ["logsieve.toml:1: sources[0].include: a file source needs at least one glob"];
    not_a_glob: "[[sources]]\ntype = \"file\"\ninclude = [\"$DIR/logs/[.log\"]", "" =>
        ["logsieve.toml:3: sources[0].include:", "is not a glob"];
    missing_folder: "[[sources]]\ntype = \"file\"\ninclude = [\"/nonexistent-dir/*.log\"]", "" =>
        ["logsieve.toml:3: sources[0].include: folder /nonexistent-dir does not exist"];
    bad_exclude_glob: &format!("{FILE}exclude = [\"a/[b\"]"), "" =>
        ["logsieve.toml:4: sources[0].exclude: `a/[b` is not a glob"];
    two_sources_one_checkpoint_file: &format!("{FILE}name = \"a\"\n{FILE}name = \"a\""), "" =>
        ["sources[1]: another source already holds the checkpoint file a.checkpoints.json"];
    zero_open_files: &format!("{FILE}max_open_files = 0"), "" =>
        ["logsieve.toml:4: sources[0].max_open_files: must be at least 1"];
    kafka_source_without_brokers_or_topics: "[[sources]]\ntype = \"kafka\"", "" =>
        ["sources[0].bootstrap_servers: a Kafka source or sink needs bootstrap_servers", "sources[0].topics: a Kafka source needs at least one topic"];
    kafka_brokers_not_host_port: "[[sources]]\ntype = \"kafka\"\nbootstrap_servers = \"kafka\"\ntopics = [\"t\"]", "" =>
        ["logsieve.toml:3: sources[0].bootstrap_servers: `kafka` is not a list of host:port"];
    kafka_sink_no_batches_in_flight: "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopic = \"t\"\nbatches_in_flight = 0", "" =>
        ["logsieve.toml:5: sinks[0].batches_in_flight: must be at least 1", "use 1 to wait for each batch"];
    kafka_empty_topic: "[[sources]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopics = [\" \"]", "" =>
        ["logsieve.toml:4: sources[0].topics: a topic is empty"];
    kafka_source_from: "[[sources]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopics = [\"t\"]\nsource_from = \"header:\"", "" =>
        ["logsieve.toml:5: sources[0].source_from: `header:` is not a place to take the source from"];
    kafka_zero_commit_interval: "[[sources]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopics = [\"t\"]\ncommit_interval_ms = 0", "" =>
        ["logsieve.toml:5: sources[0].commit_interval_ms: must be at least 1"];
    kafka_offset_reset: "[[sources]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopics = [\"t\"]\nauto_offset_reset = \"sometime\"", "" =>
        ["logsieve.toml:5: sources[0].auto_offset_reset: unknown variant `sometime`"];
    file_sink_without_path: "[[sinks]]\ntype = \"file\"", "" =>
        ["logsieve.toml:1: sinks[0].path: a file sink needs a path"];
    file_sink_folder_missing: "[[sinks]]\ntype = \"file\"\npath = \"/nonexistent-dir/out.jsonl\"", "" =>
        ["logsieve.toml:3: sinks[0].path: folder /nonexistent-dir does not exist"];
    two_sinks_one_file: "[[sinks]]\ntype = \"file\"\npath = \"$DIR/o\"\n[[sinks]]\ntype = \"file\"\npath = \"$DIR/o\"", "" =>
        ["sinks[1]: another sink already holds the file"];
    two_stdout_sinks: "[[sinks]]\ntype = \"stdout\"\n[[sinks]]\ntype = \"stdout\"", "" =>
        ["sinks[1]: another sink already holds standard output"];
    unknown_sink_type: "[[sinks]]\ntype = \"s3\"", "" =>
        ["logsieve.toml:2: sinks[0].type: unknown sink type `s3`", "use one of \"stdout\", \"file\""];
    kafka_sink_without_topic: "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"", "" =>
        ["logsieve.toml:1: sinks[0].topic: a Kafka sink needs a topic"];
    kafka_sink_codec: "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopic = \"t\"\ncompression = \"brotli\"", "" =>
        ["logsieve.toml:5: sinks[0].compression: unknown variant `brotli`"];
    kafka_sink_acks: "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"k:9092\"\ntopic = \"t\"\nacks = \"2\"", "" =>
        ["logsieve.toml:5: sinks[0].acks: unknown variant `2`"];
    sinks_not_tables: "sinks = [\"stdout\"]", "" =>
        ["logsieve.toml:1: sinks: is not a list of tables"];
    route_source_and_message: "[[tiers.route]]\nsource = \"A\"\nmessage = \"^a\"\nto = \"llm\"", "" =>
        ["logsieve.toml:2: tiers.route[0].source: a route takes `source` or `message`, not both"];
    route_neither: "[[tiers.route]]\nto = \"llm\"", "" =>
        ["tiers.route[0].source: a route needs `source` or `message`"];
    route_empty_source: "[[tiers.route]]\nsource = \"\"\nto = \"llm\"", "" =>
        ["logsieve.toml:2: tiers.route[0].source: is empty"];
    route_bad_regex: "[[tiers.route]]\nmessage = \"(\"\nto = \"llm\"", "" =>
        ["logsieve.toml:2: tiers.route[0].message: `(` does not compile"];
    route_unknown_label: "[[tiers.route]]\nsource = \"A\"\nto = \"llm\"\nlabels = [\"Errror\"]", "" =>
        ["logsieve.toml:4: tiers.route[0].labels: `Errror` is not a known label"];
    rules_file_missing: "[tiers.regex]\nrules = \"nope.toml\"", "" =>
        ["logsieve.toml:2: tiers.regex.rules: cannot read", "relative to the config file's folder"];
    rule_name_twice: "[tiers.regex]\nrules = \"rules.toml\"", "[[rules]]\nname = \"a\"\npattern = 'x'\nlabel = \"Error\"\n[[rules]]\nname = \"a\"\npattern = 'y'\nlabel = \"Error\"\n" =>
        ["rules.toml:6: rules.name: `a` is used twice"];
    rule_bad_pattern: "[tiers.regex]\nrules = \"rules.toml\"", "[[rules]]\nname = \"a\"\npattern = 'x('\nlabel = \"Error\"\n" =>
        ["rules.toml:3: rules.pattern (rule `a`): `x(` does not compile"];
    rule_unknown_label: "[tiers.regex]\nrules = \"rules.toml\"", "[[rules]]\nname = \"a\"\npattern = 'x'\nlabel = \"Eror\"\n" =>
        ["rules.toml:4: rules.label (rule `a`): `Eror` is not a known label"];
    rule_unknown_key: "[tiers.regex]\nrules = \"rules.toml\"", "[[rules]]\nname = \"a\"\npatern = 'x'\nlabel = \"Error\"\n" =>
        ["rules.toml:3: rules[0].patern: unknown field `patern`"];
    model_threshold: "[tiers.model]\nthreshold = 1.5", "" =>
        ["logsieve.toml:2: tiers.model.threshold: 1.5 is not a probability"];
    model_max_tokens: "[tiers.model]\nmax_tokens = 512", "" =>
        ["logsieve.toml:2: tiers.model.max_tokens: 512 is outside 8..=256", "e.g. 256"];
    model_assets_missing: "[tiers.model]\nmodel = \"/nonexistent/model.onnx\"", "" =>
        ["logsieve.toml:2: tiers.model.model: /nonexistent/model.onnx does not exist", "scripts/fetch-models.sh"];
    llm_url: "[tiers.llm]\napi_key_env = \"\"\nbase_url = \"groq.com\"", "" =>
        ["logsieve.toml:3: tiers.llm.base_url: `groq.com` is not an http(s) URL"];
    llm_zero_queue: "[tiers.llm]\napi_key_env = \"\"\nqueue_capacity = 0", "" =>
        ["logsieve.toml:3: tiers.llm.queue_capacity: must be at least 1"];
    llm_prompt_without_message: "[tiers.llm]\napi_key_env = \"\"\nprompt = \"Classify.\"", "" =>
        ["logsieve.toml:3: tiers.llm.prompt: does not contain {message}"];
}

#[test]
fn an_llm_override_that_is_not_a_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("logsieve.toml"), "").unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(dir.path().join("logsieve.toml"))
        .env("LOGSIEVE_LLM_TIMEOUT_MS", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("environment: LOGSIEVE_LLM_TIMEOUT_MS: `soon` is not a TOML value"),
        "{stderr}"
    );
}

#[test]
fn a_config_file_that_cannot_be_read_is_named() {
    let out = Command::new(BIN)
        .args(["validate", "--config", "/nonexistent/logsieve.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/nonexistent/logsieve.toml: (file): cannot read it"),
        "{stderr}"
    );
}
