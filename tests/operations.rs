//! What running logsieve under a supervisor needs, through the real binary: `${VAR}` in the
//! config and rules, static fields per source, hot reload (SIGHUP and `POST /reload`) with lines
//! flowing — tiers swapped between batches, sinks changed by a drain and a new pipeline, a bad
//! config refused, a new pipeline that cannot start replaced by the old — and systemd's notify
//! protocol read off a datagram socket.

mod common;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The seed rules plus one that calls "Disk usage" lines Resource Usage (or not, `with_disk`).
fn rules(with_disk: bool) -> String {
    let mut rules = fs::read_to_string(repo_path("config/rules.toml")).unwrap();
    if with_disk {
        rules.push_str(
            "\n[[rules]]\nname = \"disk\"\npattern = 'Disk usage on'\nlabel = \"Resource Usage\"\n",
        );
    }
    rules
}

/// A config following `logs/*.log` into `sink` with the rules in `rules.toml` beside it.
fn write_config(setup: &Setup, sink: &str, extra_source: &str) {
    let config = format!(
        r#"data_dir = "{data}"
[server]
address = "127.0.0.1:{port}"
[[sources]]
type = "file"
name = "test"
include = ["{logs}/*.log"]
glob_interval_ms = 100
checkpoint_interval_ms = 200
{extra_source}
[tiers.regex]
rules = "rules.toml"
[[sinks]]
type = "file"
path = "{sink}"
"#,
        data = setup.data_dir().display(),
        port = setup.port,
        logs = setup.path("logs").display(),
        sink = setup.path(sink).display(),
    );
    fs::write(setup.path("logsieve.toml"), config).unwrap();
}

/// A writer appending `line(i)` for `range`, 500 lines every 20 ms.
fn stream(setup: &Setup, range: std::ops::Range<usize>) -> std::thread::JoinHandle<()> {
    let log = setup.path("logs/app.log");
    std::thread::spawn(move || {
        let mut i = range.start;
        while i < range.end {
            let next = (i + 500).min(range.end);
            append_lines(&log, i..next);
            i = next;
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

/// An agent following `logs/*.log` into `a.jsonl` with the seed rules, and a writer streaming
/// `total` lines there; returns once more than `through` lines reached the sink.
fn flowing_into_a(total: usize, through: usize) -> (Setup, Agent, std::thread::JoinHandle<()>) {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    fs::write(setup.path("rules.toml"), rules(false)).unwrap();
    write_config(&setup, "a.jsonl", "");
    let agent = setup.start(&[]);
    let writer = stream(&setup, 0..total);
    agent.wait_until(Duration::from_secs(30), "some lines", || {
        line_count(&setup.path("a.jsonl")) > through
    });
    (setup, agent, writer)
}

fn post_reload(agent: &Agent) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(agent.url("/reload"))
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

#[test]
fn environment_variables_and_static_fields_reach_every_record() {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    fs::write(setup.path("rules.toml"), rules(false)).unwrap();
    append_lines(&setup.path("logs/app.log"), 0..10);
    write_config(
        &setup,
        "${SINK_NAME:-out.jsonl}",
        "fields = { pod = \"${TEST_POD_NAME}\", zone = \"${TEST_ZONE:-eu-1}\", price = \"$$5\" }",
    );
    let out = Command::new(BIN)
        .args(["run", "--exit-on-eof", "--config"])
        .arg(setup.path("logsieve.toml"))
        .env("TEST_POD_NAME", "shop-7f9c")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = records(&setup.path("out.jsonl"));
    assert_eq!(all.len(), 10);
    for r in &all {
        assert_eq!(r["pod"], "shop-7f9c");
        assert_eq!(r["zone"], "eu-1");
        assert_eq!(r["price"], "$5");
    }
    // Unset and without a default: refused, with the file, line and variable.
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(setup.path("logsieve.toml"))
        .env_remove("TEST_POD_NAME")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "logsieve.toml:10: ${TEST_POD_NAME}: environment variable TEST_POD_NAME is not set"
        ),
        "{stderr}"
    );
}

/// SIGHUP with lines flowing: new rules label from the next batch; a bad config is refused and
/// the old one stays; `POST /reload` changes the sink by draining and starting again. Every
/// line arrives exactly once across the three.
#[test]
fn reloads_with_lines_flowing_lose_and_repeat_nothing() {
    const TOTAL: usize = 60_000;
    let (setup, agent, writer) = flowing_into_a(TOTAL, 5_000);

    // 1. The tiers only: a new rule takes the next batch; the pipeline keeps running.
    fs::write(setup.path("rules.toml"), rules(true)).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_until(Duration::from_secs(20), "the new rule in force", || {
        records(&setup.path("a.jsonl"))
            .iter()
            .any(|r| r["rule"] == "disk")
    });
    assert_eq!(
        agent.metric("logsieve_config_reloads_total{result=\"success\"}"),
        1.0
    );
    assert!(agent
        .stderr_text()
        .contains("the new tiers take the next batch"));

    // 2. A bad config: refused with file:line, the old one stays.
    let good = fs::read_to_string(setup.path("logsieve.toml")).unwrap();
    fs::write(
        setup.path("logsieve.toml"),
        format!("{good}\n[batch]\nmax_lines = \"many\"\n"),
    )
    .unwrap();
    let (status, text) = post_reload(&agent);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("logsieve.toml:"), "{text}");
    assert_eq!(
        agent.metric("logsieve_config_reloads_total{result=\"failure\"}"),
        1.0
    );
    assert_eq!(agent.metric("logsieve_config_last_reload_successful"), 0.0);

    // 3. The sink changes: the pipeline drains into a.jsonl and goes on into b.jsonl.
    fs::write(
        setup.path("logsieve.toml"),
        good.replace("a.jsonl", "b.jsonl"),
    )
    .unwrap();
    let (status, text) = post_reload(&agent);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("starts again"), "{text}");
    writer.join().unwrap();
    agent.wait_until(Duration::from_secs(60), "every line in a or b", || {
        line_count(&setup.path("a.jsonl")) + line_count(&setup.path("b.jsonl")) >= TOTAL
    });
    assert_eq!(agent.metric("logsieve_config_last_reload_successful"), 1.0);
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    let mut all = records(&setup.path("a.jsonl"));
    let in_b = records(&setup.path("b.jsonl"));
    assert!(!in_b.is_empty(), "the new sink took the rest");
    all.extend(in_b);
    let tally = Tally::of_messages(
        all.iter()
            .map(|r| r["message"].as_str().unwrap().to_string()),
        TOTAL,
    );
    tally.assert_each_once();
}

/// A reload whose pipeline cannot start — its server's port is taken — does not stop the
/// agent: the error is logged, the reload counts as failed, the parts it had built (a Kafka
/// sink's client) go away, and the config that was running starts again. Every line arrives
/// exactly once, all in the old sink.
#[test]
fn a_reload_that_cannot_start_brings_back_the_running_config() {
    const TOTAL: usize = 20_000;
    let (setup, agent, writer) = flowing_into_a(TOTAL, 2_000);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let good = fs::read_to_string(setup.path("logsieve.toml")).unwrap();
    // Its Kafka sink is opened (a client with threads of its own) before the port is found
    // taken; nothing of it may outlive the failed start.
    let kafka_sink =
        "[[sinks]]\ntype = \"kafka\"\nbootstrap_servers = \"127.0.0.1:1\"\ntopic = \"x\"\n";
    fs::write(
        setup.path("logsieve.toml"),
        good.replace("a.jsonl", "b.jsonl")
            .replace(&format!(":{}", setup.port), &format!(":{taken_port}"))
            + kafka_sink,
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    let failed = || {
        agent.metric_if_answering("logsieve_config_reloads_total{result=\"failure\"}") == Some(1.0)
    };
    agent.wait_until(
        Duration::from_secs(30),
        "the reload counted as failed",
        failed,
    );
    assert_eq!(agent.metric("logsieve_config_last_reload_successful"), 0.0);
    let log = agent.stderr_text();
    assert!(log.contains("the reloaded config cannot start"), "{log}");
    assert!(
        log.contains(&format!("cannot listen on 127.0.0.1:{taken_port}")),
        "{log}"
    );
    let kafka_threads = || {
        let tasks = fs::read_dir(format!("/proc/{}/task", agent.child.id())).unwrap();
        tasks
            .filter_map(|t| fs::read_to_string(t.unwrap().path().join("comm")).ok())
            .filter(|name| name.starts_with("rdk:"))
            .count()
    };
    agent.wait_until(
        Duration::from_secs(20),
        "the unstarted Kafka sink's client gone",
        || kafka_threads() == 0,
    );

    writer.join().unwrap();
    agent.wait_until(Duration::from_secs(60), "every line in a.jsonl", || {
        line_count(&setup.path("a.jsonl")) >= TOTAL
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(
        line_count(&setup.path("b.jsonl")),
        0,
        "the new sink never ran"
    );
    Tally::of(&setup.path("a.jsonl"), TOTAL).assert_each_once();
    drop(taken);
}

/// `Type=notify`: READY=1 once running, RELOADING=1 … READY=1 around a reload, STOPPING=1 at
/// the drain, WATCHDOG=1 while the unit's watchdog is on; nothing else changes.
#[test]
fn systemd_hears_ready_reloading_stopping_and_the_watchdog() {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    fs::write(setup.path("rules.toml"), rules(false)).unwrap();
    write_config(&setup, "out.jsonl", "");
    let socket_path = setup.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(setup.path("logsieve.toml"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(fs::File::create(setup.path("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut heard: Vec<String> = Vec::new();
    let listen = |until: &dyn Fn(&[String]) -> bool, heard: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 512];
        while !until(heard) && Instant::now() < deadline {
            if let Ok(n) = socket.recv(&mut buf) {
                heard.extend(
                    String::from_utf8_lossy(&buf[..n])
                        .lines()
                        .map(str::to_string),
                );
            }
        }
    };
    fn has(what: &'static str) -> impl Fn(&[String]) -> bool {
        move |h: &[String]| h.iter().any(|m| m == what)
    }
    listen(&has("READY=1"), &mut heard);
    listen(
        &|h: &[String]| h.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2,
        &mut heard,
    );
    unsafe { libc::kill(pid, libc::SIGHUP) };
    listen(
        &|h: &[String]| h.iter().filter(|m| *m == "READY=1").count() >= 2,
        &mut heard,
    );
    unsafe { libc::kill(pid, libc::SIGTERM) };
    listen(&has("STOPPING=1"), &mut heard);
    let status = wait_timeout(&mut child, Duration::from_secs(30));
    assert!(status.success());
    let order: Vec<&str> = heard
        .iter()
        .map(String::as_str)
        .filter(|m| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(m))
        .collect();
    assert_eq!(
        order,
        ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
        "{heard:?}"
    );
    assert!(
        heard.iter().any(|m| m.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 comes with MONOTONIC_USEC: {heard:?}"
    );
    assert!(heard.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2);
}
