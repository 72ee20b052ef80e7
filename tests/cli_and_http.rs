//! The seed's batch mode (`classify`), its web API (`POST /classify`), the HTTP endpoints, the
//! stdin source, and `validate`, through the real binary.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// What the default config (rules, then the model) gives `../shared/data/seed/test.csv`.
const SEED_TEST_WITH_MODEL: [(&str, &str); 10] = [
    ("Security Alert", "model"),
    ("User Action", "model"), // "User 12345 logged in." — the seed said Security Alert
    ("System Notification", "regex"),
    ("System Notification", "regex"),
    ("HTTP Status", "model"),
    ("Security Alert", "model"),
    ("Unclassified", "fallback"), // LegacyCRM: routed to the LLM, which is not configured
    ("Unclassified", "fallback"),
    ("Unclassified", "fallback"),
    ("Unclassified", "fallback"),
];

/// What the seed rules (and routing) alone imply for `../shared/data/seed/test.csv`.
const SEED_TEST_RULES_ONLY: [(&str, &str); 10] = [
    ("Unclassified", "none"),
    ("Unclassified", "none"), // "User 12345 logged in." — no seed rule matches (the seed said Security Alert)
    ("System Notification", "regex"),
    ("System Notification", "regex"),
    ("Unclassified", "none"),
    ("Unclassified", "none"),
    ("Unclassified", "fallback"), // LegacyCRM: routed to the LLM, which is not configured
    ("Unclassified", "fallback"),
    ("Unclassified", "fallback"),
    ("Unclassified", "fallback"),
];

fn check_labelled_seed_csv(csv_text: &str, expected: [(&str, &str); 10]) {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        ["source", "log_message", "target_label", "tier"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 10);
    for (row, (label, tier)) in rows.iter().zip(expected) {
        assert_eq!((&row[2], &row[3]), (label, tier), "{:?}", &row[1]);
    }
    assert_eq!(&rows[0][0], "ModernCRM");
}

#[test]
fn classify_labels_the_seed_test_csv_with_the_rules_and_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.csv");
    let result = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args(["classify", "--input"])
        .arg(seed_path("test.csv"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("classified 10 rows"), "{stderr}");
    check_labelled_seed_csv(&fs::read_to_string(&out).unwrap(), SEED_TEST_WITH_MODEL);
}

#[test]
fn classify_jsonl_reads_text_and_json_lines_from_stdin() {
    let mut child = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args([
            "classify", "--format", "jsonl", "--input", "-", "--output", "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Backup completed successfully.\n{\"source\":\"LegacyCRM\",\"log_message\":\"Invoice run aborted\"}\n")
        .unwrap();
    let result = child.wait_with_output().unwrap();
    assert!(result.status.success());
    let records: Vec<serde_json::Value> = String::from_utf8(result.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["label"], "System Notification");
    assert_eq!(records[0]["rule"], "backup_completed");
    assert_eq!(records[1]["source"], "LegacyCRM");
    assert_eq!(records[1]["reason"], "llm_disabled");
}

fn classification_server(max_body_bytes: usize) -> (Setup, Agent) {
    let setup = Setup::new();
    let config = format!(
        "[server]\naddress = \"127.0.0.1:{}\"\nmax_body_bytes = {max_body_bytes}\n[[tiers.route]]\nsource = \"LegacyCRM\"\nto = \"llm\"\n[tiers.regex]\nrules = \"{}\"\n",
        setup.port,
        repo_path("config/rules.toml").display()
    );
    fs::write(setup.path("logsieve.toml"), config).unwrap();
    let agent = setup.start(&[]);
    (setup, agent)
}

#[test]
fn post_classify_takes_the_seed_upload_and_rejects_what_is_not_a_seed_csv() {
    let (_setup, agent) = classification_server(4096);
    let client = reqwest::blocking::Client::new();
    let seed_csv = fs::read(seed_path("test.csv")).unwrap();

    // The seed's FastAPI form: multipart, field `file`.
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(seed_csv.clone())
            .file_name("test.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let response = client
        .post(agent.url("/classify"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    check_labelled_seed_csv(&response.text().unwrap(), SEED_TEST_RULES_ONLY);

    // A raw text/csv body works the same.
    let response = client
        .post(agent.url("/classify"))
        .header("content-type", "text/csv")
        .body(seed_csv)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    check_labelled_seed_csv(&response.text().unwrap(), SEED_TEST_RULES_ONLY);

    // JSON in, JSON records out.
    let response = client
        .post(agent.url("/classify"))
        .json(&serde_json::json!([{"source": "ModernCRM", "log_message": "Backup completed successfully."}]))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let records: serde_json::Value = response.json().unwrap();
    assert_eq!(records[0]["label"], "System Notification");
    assert_eq!(records[0]["tier"], "regex");

    // No log_message column: 400 naming it.
    let response = client
        .post(agent.url("/classify"))
        .header("content-type", "text/csv")
        .body("source,message\nModernCRM,hello\n")
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("no `log_message` column"));

    // Not a CSV at all.
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(vec![0x89, b'P', b'N', b'G', 0, 0xff])
            .file_name("x.png"),
    );
    let response = client
        .post(agent.url("/classify"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("not UTF-8"));

    // Larger than server.max_body_bytes: 413.
    let big = format!("source,log_message\n{}", "a,b\n".repeat(2_000));
    let response = client
        .post(agent.url("/classify"))
        .header("content-type", "text/csv")
        .body(big.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(big.into_bytes()).file_name("big.csv"),
    );
    let response = client
        .post(agent.url("/classify"))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    // A body declared far too large is refused before it is sent.
    let mut stream =
        std::net::TcpStream::connect(agent.url("").trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /classify HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ncontent-length: 1000000000000\r\n\r\nsource,log_message\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // What was labelled shows in the metrics.
    let metrics = agent.metrics();
    assert!(
        metric_value(
            &metrics,
            "logsieve_records_total{label=\"System Notification\",tier=\"regex\"}"
        ) >= 5.0,
        "{metrics}"
    );
    assert_eq!(
        reqwest::blocking::get(agent.url("/health"))
            .unwrap()
            .status(),
        200
    );
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn stdin_source_labels_lines_and_exits_at_eof() {
    let setup = Setup::new();
    let config = format!(
        "data_dir = \"{}\"\n[server]\nenabled = false\n[[sources]]\ntype = \"stdin\"\n[tiers.regex]\nrules = \"{}\"\n[[sinks]]\ntype = \"stdout\"\n",
        setup.data_dir().display(),
        repo_path("config/rules.toml").display()
    );
    fs::write(setup.path("logsieve.toml"), config).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(setup.path("logsieve.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..1000 {
        writeln!(stdin, "{}", line(i)).unwrap();
    }
    write!(stdin, "no newline at the end").unwrap();
    drop(stdin);
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8(result.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1001);
    assert_eq!(records[2]["label"], "System Notification"); // "... Backup completed successfully."
    assert_eq!(records[1000]["message"], "no newline at the end");
    assert_eq!(records[1000]["origin"]["line"], 1001);
}

#[test]
fn metrics_and_health_are_served() {
    let setup = Setup::new();
    fs::write(
        setup.path("app.log"),
        "Backup completed successfully.\nsomething else\n",
    )
    .unwrap();
    setup.write_config("app.log", "");
    let agent = setup.start(&[]);
    agent.wait_until(
        Duration::from_secs(10),
        "two records and a checkpoint",
        || {
            line_count(&setup.out()) >= 2
                && agent.metric("logsieve_checkpoint_writes_total{source=\"test\"}") >= 1.0
        },
    );
    let metrics = agent.metrics();
    for name in [
        "logsieve_source_lines_total{source=\"test\"} 2",
        "logsieve_source_bytes_total{source=\"test\"} 46",
        "logsieve_records_total{label=\"System Notification\",tier=\"regex\"} 1",
        "logsieve_records_total{label=\"Unclassified\",tier=\"none\"} 1",
        "logsieve_sink_records_total{sink=\"file:",
        "logsieve_batch_size_lines_bucket",
        "logsieve_tier_duration_seconds_bucket{tier=\"regex\"",
        "logsieve_file_open_files{source=\"test\"} 1",
        "logsieve_checkpoint_writes_total{source=\"test\"}",
    ] {
        assert!(metrics.contains(name), "missing {name}\n{metrics}");
    }
    assert_eq!(
        reqwest::blocking::get(agent.url("/health"))
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::blocking::get(agent.url("/ready"))
            .unwrap()
            .status(),
        200
    );
    let (status, _) = agent.terminate();
    assert!(status.success());
}

fn validate(config: &str, rules: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("rules.toml"), rules).unwrap();
    fs::write(dir.path().join("logsieve.toml"), config).unwrap();
    let result = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(dir.path().join("logsieve.toml"))
        .output()
        .unwrap();
    (
        result.status.success(),
        String::from_utf8_lossy(&result.stdout).to_string(),
        String::from_utf8_lossy(&result.stderr).to_string(),
    )
}

#[test]
fn validate_accepts_the_default_config_and_prints_the_plan() {
    let result = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args(["validate", "--config", "config/logsieve.toml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout.contains("tier regex: 8 rules"), "{stdout}");
    assert!(stdout.contains("source: file samples/*.log"), "{stdout}");
}

#[test]
fn validate_names_a_bad_regex_and_an_unknown_key() {
    let rules = "[[rules]]\nname = \"broken\"\npattern = 'User (\\d+'\nlabel = \"User Action\"\n";
    let (ok, _, stderr) = validate("[tiers.regex]\nrules = \"rules.toml\"\n", rules);
    assert!(!ok);
    assert!(
        stderr.contains("rules.toml:3: rules.pattern (rule `broken`)"),
        "{stderr}"
    );
    assert!(stderr.contains("does not compile"), "{stderr}");

    let (ok, _, stderr) = validate("[batch]\nmax_line = 10\n", "");
    assert!(!ok);
    assert!(
        stderr.contains("logsieve.toml:2: batch.max_line: unknown field `max_line`"),
        "{stderr}"
    );
    assert!(stderr.contains("correct its spelling"), "{stderr}");

    let (ok, _, stderr) = validate(
        "[[sources]]\ntype = \"file\"\ninclude = [\"/nonexistent-dir/*.log\"]\n",
        "",
    );
    assert!(!ok);
    assert!(
        stderr.contains("folder /nonexistent-dir does not exist"),
        "{stderr}"
    );
}

#[test]
fn the_committed_configuration_reference_is_what_the_code_says() {
    let result = Command::new(BIN).arg("config-reference").output().unwrap();
    assert!(result.status.success());
    let generated = String::from_utf8(result.stdout).unwrap();
    let committed = fs::read_to_string(repo_path("docs/configuration.md")).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md is stale: run `cargo run --release -- config-reference > docs/configuration.md`"
    );
}

/// A config with no `[tiers.*]` section labels nothing: `validate` and the agent say so.
#[test]
fn a_config_without_tiers_is_called_out_by_validate_and_at_start() {
    let config = "[server]\nenabled = false\n[[sources]]\ntype = \"stdin\"\n";
    let (ok, stdout, stderr) = validate(config, "");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("tier regex: 0 rules"), "{stdout}");
    assert!(stdout.contains("tier model: off"), "{stdout}");
    assert!(
        stdout.contains("tier llm: off (no [tiers.llm])"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: no tier labels anything"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logsieve.toml");
    fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"disk full\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("no tier labels anything"), "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["tier"], "none");
}
