//! The LLM tier: fault injection against a scripted chat server (429 with Retry-After, 500s, a
//! hang past the timeout, garbage, `<think>` answers, a wrong label, a refused connection, the
//! circuit breaker), the template cache and the learning loop, backpressure through the real
//! agent, and the contract against a real local LLM server (scripts/llm-server.sh).

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::scripted_llm::{Reply, ScriptedLlm};
use common::*;
use logsieve::event::{Event, Origin, Record};

/// A config with the seed rules, a template cache, no model, the LegacyCRM route (and a route
/// for messages starting `legacy `), and `[tiers.llm]` on `base_url` plus `llm_extra`.
fn write_config(dir: &Path, base_url: &str, llm_extra: &str, rest: &str) -> std::path::PathBuf {
    // Defaults for these tests, unless `llm_extra` sets the key.
    let defaults: String = [
        "model = \"scripted\"",
        "api_key_env = \"\"",
        "persist_cache = false",
        "backoff_ms = 20",
    ]
    .iter()
    .filter(|d| {
        let key = d.split(' ').next().unwrap();
        !llm_extra
            .lines()
            .any(|l| l.starts_with(&format!("{key} =")))
    })
    .map(|d| format!("{d}\n"))
    .collect();
    let config = format!(
        r#"
data_dir = "{data}"
[server]
enabled = false
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
labels = ["Workflow Error", "Deprecation Warning"]
[[tiers.route]]
message = "^legacy "
to = "llm"
labels = ["Workflow Error", "Deprecation Warning"]
[tiers.regex]
rules = "{rules}"
[tiers.cache]
capacity = 1000
[tiers.llm]
base_url = "{base_url}"
{defaults}{llm_extra}
{rest}
"#,
        data = dir.join("data").display(),
        rules = repo_path("config/rules.toml").display(),
    );
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).unwrap();
    path
}

/// The tiers of a config, on their own runtime (the LLM tier's dispatcher runs there).
struct Chain {
    runtime: tokio::runtime::Runtime,
    tiers: logsieve::tiers::Tiers,
}

impl Chain {
    fn load(config: &Path) -> Chain {
        let plan = logsieve::config::load(Some(config)).unwrap_or_else(|e| panic!("{e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tiers = runtime
            .block_on(async {
                logsieve::tiers::Tiers::build(&plan.tiers, &logsieve::metrics::Registry::default())
            })
            .unwrap();
        Chain { runtime, tiers }
    }

    /// Labels `(source, message)` lines, waiting for the LLM, as `classify` does.
    fn label(&self, lines: &[(&str, &str)]) -> Vec<Record> {
        let events = lines
            .iter()
            .enumerate()
            .map(|(i, (source, message))| {
                let origin = Origin::Row { row: i as u64 + 1 };
                let timestamp = Arc::from("2026-11-25T00:00:00Z");
                Event::plain(timestamp, source, message.to_string(), origin)
            })
            .collect();
        self.runtime.block_on(self.tiers.label(events))
    }
}

/// (label, tier, reason) of a record.
fn verdict(r: &Record) -> (String, &'static str, Option<&'static str>) {
    (
        r.verdict.label.to_string(),
        r.verdict.tier.as_str(),
        r.verdict.reason,
    )
}

fn llm(label: &str) -> (String, &'static str, Option<&'static str>) {
    (label.to_string(), "llm", None)
}

fn fell_back(reason: &'static str) -> (String, &'static str, Option<&'static str>) {
    ("Unclassified".to_string(), "fallback", Some(reason))
}

#[test]
fn answers_are_read_through_think_tags_and_bad_ones_fall_back_with_a_reason() {
    let server = ScriptedLlm::start(|_, prompt| {
        if prompt.contains("thinking") {
            Reply::answer("<think>Error? no.</think>\n<category>Workflow Error</category>")
        } else if prompt.contains("terse") {
            Reply::answer(" deprecation warning. ")
        } else if prompt.contains("garbage") {
            Reply::answer("%%%\u{1}??")
        } else if prompt.contains("wrong") {
            Reply::answer("<category>Security Alert</category>")
        } else if prompt.contains("broken") {
            Reply::raw("this is not json")
        } else {
            Reply::answer("<category>Unclassified</category>")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("LOGSIEVE_TEST_LLM_KEY_1", "sk-test-not-logged");
    let config = write_config(
        dir.path(),
        &server.base_url(),
        "api_key_env = \"LOGSIEVE_TEST_LLM_KEY_1\"",
        "",
    );
    let chain = Chain::load(&config);
    let records = chain.label(&[
        ("LegacyCRM", "thinking case failed"),
        ("LegacyCRM", "terse case retired"),
        ("LegacyCRM", "garbage case"),
        ("LegacyCRM", "wrong case"),
        ("LegacyCRM", "broken case"),
        ("LegacyCRM", "unknown case"),
        ("ModernCRM", "Backup completed successfully."),
        ("ModernCRM", "legacy billing module deprecated"),
    ]);
    let got: Vec<_> = records.iter().map(verdict).collect();
    assert_eq!(
        got,
        vec![
            llm("Workflow Error"),
            llm("Deprecation Warning"),
            fell_back("llm_unparseable"),
            fell_back("llm_unparseable"),
            fell_back("llm_rejected"),
            llm("Unclassified"),
            ("System Notification".to_string(), "regex", None),
            llm("Unclassified"),
        ]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 7, "the regex line never reaches the LLM");
    for request in &seen {
        assert!(
            request
                .prompt()
                .contains("one of these categories: Workflow Error, Deprecation Warning."),
            "the route's labels are offered: {}",
            request.prompt()
        );
        assert!(!request.prompt().contains("HTTP Status"));
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer sk-test-not-logged")
        );
        assert_eq!(request.body["model"], "scripted");
    }
}

#[test]
fn a_429_waits_for_retry_after_and_one_past_the_deadline_falls_back() {
    let server = ScriptedLlm::start(|n, prompt| {
        if prompt.contains("patient") && n == 0 {
            Reply::status(429).header("retry-after", "1")
        } else if prompt.contains("hurried") {
            Reply::status(429).header("retry-after", "30")
        } else {
            Reply::answer("Workflow Error")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.base_url(), "deadline_ms = 3000", "");
    let chain = Chain::load(&config);

    let started = Instant::now();
    let records = chain.label(&[("LegacyCRM", "patient case failed")]);
    assert_eq!(verdict(&records[0]), llm("Workflow Error"));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(server.requests(), 2);

    let started = Instant::now();
    let records = chain.label(&[("LegacyCRM", "hurried case failed")]);
    assert_eq!(verdict(&records[0]), fell_back("llm_rate_limited"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a Retry-After beyond the deadline is not waited for"
    );
}

#[test]
fn server_errors_are_retried_then_fall_back_and_a_hang_is_cut_by_the_deadline() {
    let server = ScriptedLlm::start(|_, prompt| {
        if prompt.contains("hanging") {
            Reply::answer("Workflow Error").after(Duration::from_secs(20))
        } else {
            Reply::status(503)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &server.base_url(),
        "max_retries = 2\ntimeout_ms = 300\ndeadline_ms = 800",
        "",
    );
    let chain = Chain::load(&config);

    let records = chain.label(&[("LegacyCRM", "failing case")]);
    assert_eq!(verdict(&records[0]), fell_back("llm_unavailable"));
    assert_eq!(server.requests(), 3, "one try and two retries");

    let started = Instant::now();
    let records = chain.label(&[("LegacyCRM", "hanging case")]);
    assert_eq!(verdict(&records[0]), fell_back("llm_timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deadline bounds a hung request: {:?}",
        started.elapsed()
    );
}

/// What a broken server sends back: an HTML error page with 200, an empty body, 10 MB, and
/// a body that starts and never ends. Each line falls back with its reason, in bounded time
/// and memory.
#[test]
fn html_empty_huge_and_never_ending_answers_fall_back() {
    let server = ScriptedLlm::start(|_, prompt| {
        if prompt.contains("html") {
            Reply::raw("<html><body><h1>502 Bad Gateway</h1></body></html>")
                .header("content-type", "text/html")
        } else if prompt.contains("empty") {
            Reply::raw("")
        } else if prompt.contains("huge") {
            Reply::answer(&"Workflow Error ".repeat(700_000))
        } else {
            Reply::stalled_body()
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &server.base_url(),
        "max_retries = 1\ntimeout_ms = 500\ndeadline_ms = 1500",
        "",
    );
    let chain = Chain::load(&config);
    let started = Instant::now();
    let records = chain.label(&[
        ("LegacyCRM", "html case"),
        ("LegacyCRM", "empty case"),
        ("LegacyCRM", "huge case"),
        ("LegacyCRM", "endless case"),
    ]);
    let got: Vec<_> = records.iter().map(verdict).collect();
    assert_eq!(
        got,
        vec![
            fell_back("llm_rejected"),
            fell_back("llm_rejected"),
            fell_back("llm_rejected"),
            fell_back("llm_timeout"),
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_breaker_opens_after_failures_falls_back_at_once_and_closes_after_a_probe() {
    // The first two requests fail, everything after succeeds.
    let server = ScriptedLlm::start(|n, _| {
        if n < 2 {
            Reply::status(500)
        } else {
            Reply::answer("Deprecation Warning")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &server.base_url(),
        "max_retries = 0\nbreaker_failures = 2\nbreaker_open_ms = 500\nmax_in_flight = 1",
        "",
    );
    let chain = Chain::load(&config);

    let records = chain.label(&[("LegacyCRM", "alpha failed"), ("LegacyCRM", "beta failed")]);
    assert!(records
        .iter()
        .all(|r| verdict(r) == fell_back("llm_unavailable")));
    let records = chain.label(&[("LegacyCRM", "gamma failed")]);
    assert_eq!(verdict(&records[0]), fell_back("llm_circuit_open"));
    assert_eq!(server.requests(), 2, "an open breaker sends nothing");

    std::thread::sleep(Duration::from_millis(600));
    let records = chain.label(&[("LegacyCRM", "delta failed")]);
    assert_eq!(
        verdict(&records[0]),
        llm("Deprecation Warning"),
        "the probe"
    );
    let records = chain.label(&[("LegacyCRM", "epsilon failed")]);
    assert_eq!(
        verdict(&records[0]),
        llm("Deprecation Warning"),
        "closed again"
    );
    assert_eq!(server.requests(), 4);
}

#[test]
fn a_refused_line_does_not_open_the_breaker_but_a_refused_key_does() {
    let server = ScriptedLlm::start(|_, prompt| {
        if prompt.contains("oversized") {
            Reply::status(400)
        } else if prompt.contains("badkey") {
            Reply::status(401)
        } else {
            Reply::answer("Workflow Error")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &server.base_url(),
        "max_retries = 0\nbreaker_failures = 2\nbreaker_open_ms = 60000\nmax_in_flight = 1",
        "",
    );
    let chain = Chain::load(&config);
    let records = chain.label(&[
        ("LegacyCRM", "oversized one"),
        ("LegacyCRM", "oversized two"),
        ("LegacyCRM", "oversized three"),
    ]);
    assert!(records
        .iter()
        .all(|r| verdict(r) == fell_back("llm_rejected")));
    let records = chain.label(&[("LegacyCRM", "fine case failed")]);
    assert_eq!(
        verdict(&records[0]),
        llm("Workflow Error"),
        "three refused lines leave the breaker closed"
    );
    let records = chain.label(&[("LegacyCRM", "badkey one"), ("LegacyCRM", "badkey two")]);
    assert!(records
        .iter()
        .all(|r| verdict(r) == fell_back("llm_unauthorized")));
    let records = chain.label(&[("LegacyCRM", "another fine case")]);
    assert_eq!(
        verdict(&records[0]),
        fell_back("llm_circuit_open"),
        "a refused key is every line's problem: the breaker opens"
    );
}

#[test]
fn a_refused_connection_falls_back_and_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/v1", free_port());
    let config = write_config(dir.path(), &url, "max_retries = 1", "");
    let chain = Chain::load(&config);
    let records = chain.label(&[
        ("LegacyCRM", "one failed"),
        ("LegacyCRM", "two failed"),
        ("ModernCRM", "Backup completed successfully."),
    ]);
    assert_eq!(records.len(), 3);
    assert_eq!(verdict(&records[0]), fell_back("llm_unavailable"));
    assert_eq!(verdict(&records[1]), fell_back("llm_unavailable"));
    assert_eq!(records[2].verdict.label.as_ref(), "System Notification");
}

#[test]
fn a_template_is_asked_once_remembered_across_restarts_and_learned_from() {
    let server = ScriptedLlm::start(|_, prompt| {
        if prompt.contains("Invoice") {
            Reply::answer("<category>Workflow Error</category>")
        } else {
            Reply::answer("<category>Deprecation Warning</category>")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let verdicts = dir.path().join("verdicts.csv");
    let config = write_config(
        dir.path(),
        &server.base_url(),
        &format!(
            "persist_cache = true\nverdicts_out = \"{}\"",
            verdicts.display()
        ),
        "",
    );
    let messages: Vec<String> = (0..20)
        .map(|i| format!("Invoice generation aborted for order ID {}", 8900 + i))
        .collect();
    let mut lines: Vec<(&str, &str)> = messages.iter().map(|m| ("LegacyCRM", m.as_str())).collect();
    lines.push((
        "LegacyCRM",
        "The 'Foo' module will be retired in version 4.0",
    ));
    {
        let chain = Chain::load(&config);
        let records = chain.label(&lines);
        assert!(records[..20]
            .iter()
            .all(|r| &*r.verdict.label == "Workflow Error"));
        assert_eq!(&*records[20].verdict.label, "Deprecation Warning");
        assert_eq!(
            server.requests(),
            2,
            "20 lines of one template: one request"
        );
        let again = chain.label(&[("LegacyCRM", "Invoice generation aborted for order ID 1")]);
        assert_eq!(verdict(&again[0]), ("Workflow Error".into(), "cache", None));
        assert_eq!(server.requests(), 2);
    }
    // A restart reads the persisted verdicts: nothing is asked again.
    let chain = Chain::load(&config);
    let records = chain.label(&[("LegacyCRM", "Invoice generation aborted for order ID 77")]);
    assert_eq!(
        verdict(&records[0]),
        ("Workflow Error".into(), "cache", None)
    );
    assert_eq!(server.requests(), 2);

    let mut reader = csv::Reader::from_path(&verdicts).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["source", "log_message", "target_label"]
    );
    let mut rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "one row per template: {rows:?}");
    // Rows are appended as answers arrive; the two requests run concurrently.
    rows.sort_by(|a, b| b[2].cmp(&a[2]));
    assert_eq!(rows[0][0], "LegacyCRM");
    assert_eq!(rows[0][2], "Workflow Error");
    assert_eq!(rows[1][2], "Deprecation Warning");
}

/// `n` lines for the agent; every `every`-th is bound for the LLM (a distinct template each).
fn mixed_lines(n: usize, every: usize) -> (String, usize) {
    let mut text = String::new();
    let mut to_llm = 0;
    for i in 0..n {
        if i % every == every / 2 {
            to_llm += 1;
            // Letters, not digits: each of these is its own template.
            let word: String = format!("{i:x}")
                .chars()
                .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
                .collect();
            text.push_str(&format!("legacy case {word} escalation failed\n"));
        } else {
            text.push_str(&line(i));
            text.push('\n');
        }
    }
    (text, to_llm)
}

/// A folder for the agent: `in/app.log` holding `text`, the scripted server's URL in
/// `[tiers.llm]` with `llm_extra`, a file sink `out.jsonl`.
fn agent_setup(text: &str, base_url: &str, llm_extra: &str) -> Setup {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("in")).unwrap();
    fs::write(setup.path("in/app.log"), text).unwrap();
    let config = format!(
        r#"
[[sources]]
type = "file"
name = "app"
include = ["{include}"]
glob_interval_ms = 100
checkpoint_interval_ms = 200
[[sinks]]
type = "file"
path = "{out}"
"#,
        include = setup.path("in/*.log").display(),
        out = setup.out().display(),
    );
    let path = write_config(setup.dir.path(), base_url, llm_extra, &config);
    // The agent serves HTTP for the harness (readiness, metrics).
    let text = fs::read_to_string(&path).unwrap().replace(
        "[server]\nenabled = false",
        &format!("[server]\naddress = \"127.0.0.1:{}\"", setup.port),
    );
    fs::write(&path, text).unwrap();
    setup
}

#[test]
fn dead_llm_falls_back_without_stalling() {
    // The LLM takes every request and never answers in time.
    let server =
        ScriptedLlm::start(|_, _| Reply::answer("Workflow Error").after(Duration::from_secs(60)));
    let (text, to_llm) = mixed_lines(2000, 100);
    let setup = agent_setup(
        &text,
        &server.base_url(),
        "queue_capacity = 4\nmax_in_flight = 2\ntimeout_ms = 2000\ndeadline_ms = 2000\nmax_retries = 0",
    );
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    let counts = message_counts(&setup.out());
    assert_eq!(counts.len(), 2000, "{stderr}");
    assert!(counts.values().all(|&n| n == 1), "no duplicates");

    let records = records(&setup.out());
    let reason = |r: &serde_json::Value| r["reason"].as_str().unwrap_or("").to_string();
    let llm_bound: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["message"].as_str().unwrap().starts_with("legacy "))
        .collect();
    assert_eq!(llm_bound.len(), to_llm);
    let timed_out = llm_bound
        .iter()
        .filter(|r| reason(r) == "llm_timeout")
        .count();
    let queue_full = llm_bound
        .iter()
        .filter(|r| reason(r) == "llm_queue_full")
        .count();
    assert_eq!(timed_out + queue_full, to_llm);
    assert!(
        (1..=4).contains(&timed_out),
        "at most the queue's 4 wait: {timed_out}"
    );
    // The lines that waited for the LLM left last: nothing else waited for them.
    let first_timeout = records
        .iter()
        .position(|r| reason(r) == "llm_timeout")
        .unwrap();
    assert!(
        records[first_timeout..]
            .iter()
            .all(|r| reason(r) == "llm_timeout"),
        "only LLM lines after the first LLM timeout"
    );
    assert!(
        stderr.contains("LLM tier:"),
        "a summary at shutdown: {stderr}"
    );
}

#[test]
fn block_stops_reading_while_the_llm_is_busy_and_loses_nothing() {
    let server = ScriptedLlm::start(|_, _| {
        Reply::answer("<category>Workflow Error</category>").after(Duration::from_millis(600))
    });
    let (text, to_llm) = mixed_lines(400, 40);
    assert_eq!(to_llm, 10);
    let setup = agent_setup(
        &text,
        &server.base_url(),
        "queue_capacity = 2\nmax_in_flight = 1\non_full = \"block\"",
    );
    let agent = setup.start(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    let early = line_count(&setup.out());
    assert!(
        early < 400,
        "ten serial 600 ms answers take 6 s; reading waits meanwhile ({early} written)"
    );
    assert!(
        agent.metric("logsieve_llm_queue_lines") <= 2.0,
        "the queue stays bounded"
    );
    agent.wait_until(Duration::from_secs(30), "every line written", || {
        line_count(&setup.out()) >= 400
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    let counts = message_counts(&setup.out());
    assert_eq!(counts.len(), 400);
    assert!(counts.values().all(|&n| n == 1));
    let answered = records(&setup.out())
        .iter()
        .filter(|r| r["tier"] == "llm" && r["label"] == "Workflow Error")
        .count();
    assert_eq!(answered, to_llm);
}

#[test]
fn validate_tells_whether_the_llm_is_on_and_never_prints_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:9/v1",
        "api_key_env = \"LOGSIEVE_TEST_KEY_V\"",
        "",
    );
    let run = |key: Option<&str>| {
        let mut command = std::process::Command::new(BIN);
        command.arg("validate").arg("--config").arg(&config);
        command.env_remove("LOGSIEVE_TEST_KEY_V");
        if let Some(key) = key {
            command.env("LOGSIEVE_TEST_KEY_V", key);
        }
        command.env("LOGSIEVE_LLM_MODEL", "from-env");
        let out = command.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let without = run(None);
    assert!(
        without.contains("tier llm: off (LOGSIEVE_TEST_KEY_V is not set)"),
        "{without}"
    );
    let with = run(Some("sk-very-secret"));
    assert!(
        with.contains("tier llm: http://127.0.0.1:9/v1 model from-env"),
        "{with}"
    );
    assert!(!with.contains("sk-very-secret"));

    let bad = std::process::Command::new(BIN)
        .arg("validate")
        .arg("--config")
        .arg(&config)
        .env("LOGSIEVE_LLM_QUEUE_CAPACITY", "many")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(text.contains("LOGSIEVE_LLM_QUEUE_CAPACITY"), "{text}");
}

/// The seed's LegacyCRM rows against a real llama.cpp server (scripts/llm-server.sh, started
/// by scripts/test.sh, which sets LOGSIEVE_TEST_LLM_URL). A 135M model answers poorly: this
/// checks the contract — an answer from the allowed set, through the grammar — not its wisdom.
#[test]
fn legacy_crm_lines_get_a_label_from_the_allowed_set_from_a_real_llm() {
    let url = std::env::var("LOGSIEVE_TEST_LLM_URL").expect(
        "LOGSIEVE_TEST_LLM_URL is not set: run ./scripts/test.sh, which starts the local LLM server (scripts/llm-server.sh)",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &url,
        "model = \"smollm2\"\nconstrain = \"grammar\"\nmax_in_flight = 1\ntimeout_ms = 30000\ndeadline_ms = 60000",
        "",
    );
    let out = dir.path().join("out.csv");
    let result = std::process::Command::new(BIN)
        .args(["classify", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(seed_path("test.csv"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let legacy: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "LegacyCRM").collect();
    assert_eq!(legacy.len(), 4);
    for row in legacy {
        assert_eq!(&row[3], "llm", "answered by the LLM: {row:?}\n{stderr}");
        assert!(
            ["Workflow Error", "Deprecation Warning", "Unclassified"].contains(&&row[2]),
            "{row:?}"
        );
    }
}
