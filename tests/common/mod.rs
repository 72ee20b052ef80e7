//! Test harness: starts the real `logsieve` binary on a temporary folder, talks to its HTTP
//! server, stops it with real signals, and reads what its file sink wrote.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod kafka;
pub mod scripted_llm;

pub const BIN: &str = env!("CARGO_BIN_EXE_logsieve");

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn seed_path(file: &str) -> PathBuf {
    repo_path("../shared/data/seed").join(file)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder with a config whose file source follows `include` and whose file sink is `out.jsonl`.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn out(&self) -> PathBuf {
        self.path("out.jsonl")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// Writes `logsieve.toml`: one file source on `include` (relative to the folder), extra
    /// source keys, the seed rules, and a file sink.
    pub fn write_config(&self, include: &str, source_extra: &str) -> PathBuf {
        let rules = repo_path("config/rules.toml");
        let config = format!(
            r#"
data_dir = "{data}"
[server]
address = "127.0.0.1:{port}"
[[sources]]
type = "file"
name = "test"
include = ["{include}"]
glob_interval_ms = 100
checkpoint_interval_ms = 200
rotate_wait_ms = 1000
{source_extra}
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
[tiers.regex]
rules = "{rules}"
[[sinks]]
type = "file"
path = "{out}"
"#,
            data = self.data_dir().display(),
            port = self.port,
            include = self.path(include).display(),
            rules = rules.display(),
            out = self.out().display(),
        );
        let path = self.path("logsieve.toml");
        fs::write(&path, config).unwrap();
        path
    }

    /// Starts the agent without waiting for `/ready`.
    pub fn spawn(&self, extra_args: &[&str]) -> Agent {
        Agent::spawn(self, extra_args)
    }

    pub fn start(&self, extra_args: &[&str]) -> Agent {
        let agent = Agent::spawn(self, extra_args);
        agent.wait_ready();
        agent
    }

    /// `run --exit-on-eof`: runs until every file was read, and returns how it exited.
    pub fn run_to_end(&self) -> (ExitStatus, String) {
        Agent::spawn(self, &["--exit-on-eof"]).wait()
    }

    /// The delivered offset the checkpoint file records for each file.
    pub fn checkpoint_offsets(&self) -> Vec<(String, u64)> {
        self.checkpoint_offsets_of("test")
    }

    /// The same, for the source named `source`.
    pub fn checkpoint_offsets_of(&self, source: &str) -> Vec<(String, u64)> {
        let path = self.data_dir().join(format!("{source}.checkpoints.json"));
        let Ok(bytes) = fs::read(&path) else {
            return Vec::new();
        };
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["offset"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

pub struct Agent {
    pub child: Child,
    pub port: u16,
    pub stderr: PathBuf,
}

impl Agent {
    fn spawn(setup: &Setup, extra_args: &[&str]) -> Agent {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let stderr = setup.path(&format!(
            "stderr-{}.log",
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(setup.path("logsieve.toml"))
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start logsieve");
        Agent {
            child,
            port: setup.port,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(self.url("/ready")) {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("logsieve not ready; stderr:\n{}", self.stderr_text());
    }

    pub fn metrics(&self) -> String {
        match reqwest::blocking::get(self.url("/metrics")).and_then(|r| r.text()) {
            Ok(text) => text,
            Err(e) => panic!(
                "the agent does not answer on /metrics: {e}; {}; its log ends:\n{}",
                self.process_state(),
                self.log_tail()
            ),
        }
    }

    /// The value of one metric line (name with labels, exactly as exposed), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// As [`Agent::metric`], `None` while the server does not answer (a reload that starts the
    /// pipeline again stops and starts it too).
    pub fn metric_if_answering(&self, series: &str) -> Option<f64> {
        let text = reqwest::blocking::get(self.url("/metrics")).and_then(|r| r.text());
        text.ok().map(|text| metric_value(&text, series))
    }

    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait (bounded) for the exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        self.exit_status(Duration::from_secs(60))
    }

    /// Waits (bounded) for the agent to stop by itself.
    pub fn wait(mut self) -> (ExitStatus, String) {
        self.exit_status(Duration::from_secs(120))
    }

    fn exit_status(&mut self, limit: Duration) -> (ExitStatus, String) {
        match exit_within(&mut self.child, limit) {
            Some(status) => (status, self.stderr_text()),
            None => panic!(
                "logsieve did not exit within {limit:?}; its log ends:\n{}",
                self.log_tail()
            ),
        }
    }

    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// [`wait_until`], with the end of the agent's log in the panic message.
    pub fn wait_until(&self, limit: Duration, what: &str, done: impl FnMut() -> bool) {
        if !poll_until(limit, done) {
            panic!(
                "timed out after {limit:?} waiting for {what}; the agent's log ends:\n{}",
                self.log_tail()
            );
        }
    }

    /// Whether the agent's process still runs, or how it ended (without reaping it).
    pub fn process_state(&self) -> String {
        // SAFETY: waitid with WNOWAIT only reads the child's state into `info`.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) != 0
                || info.si_pid() == 0
            {
                return "its process is still running".into();
            }
            match info.si_code {
                libc::CLD_EXITED => format!("its process exited with code {}", info.si_status()),
                _ => format!("its process was killed by signal {}", info.si_status()),
            }
        }
    }

    /// The last 60 lines the agent logged.
    pub fn log_tail(&self) -> String {
        let log = self.stderr_text();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> ExitStatus {
    exit_within(child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("logsieve did not exit within {limit:?}");
    })
}

/// The child's exit status, if it exits within `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    poll_until(limit, || child.try_wait().unwrap().is_some()).then(|| child.wait().unwrap())
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Every record the file sink wrote (a torn last line, if any, is ignored).
pub fn records(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How many times each message was written.
pub fn message_counts(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in records(path) {
        *counts
            .entry(r["message"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// Number of complete lines in a file, cheaply.
pub fn line_count(path: &Path) -> usize {
    fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Polls until `done` holds, or panics after `limit` with `what`.
pub fn wait_until(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    if !poll_until(limit, done) {
        panic!("timed out after {limit:?} waiting for {what}");
    }
}

/// Polls `done` every 50 ms for up to `limit`; whether it came to hold.
pub fn wait_for(limit: Duration, done: impl FnMut() -> bool) -> bool {
    poll_until(limit, done)
}

/// Polls `done` every 50 ms for up to `limit`; whether it came to hold.
fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The i-th test line: unique, seed-like, and easy to find again.
pub fn line(i: usize) -> String {
    match i % 4 {
        0 => format!("line {i:07} User User{i} logged in."),
        1 => {
            format!("line {i:07} GET /v2/servers/detail HTTP/1.1 status: 200 len: 1893 time: 0.26")
        }
        2 => format!("line {i:07} Backup completed successfully."),
        _ => format!("line {i:07} Disk usage on node-{} at 91%", i % 7),
    }
}

/// The sequence number in `line(i)`'s text ("line 0001234 …"), if it is one.
pub fn sequence_of(message: &str) -> Option<usize> {
    message.strip_prefix("line ")?.get(..7)?.parse().ok()
}

/// How an output holds the lines `line(0..total)`: counted by sequence number.
#[derive(Debug)]
pub struct Tally {
    pub total: usize,
    /// Sequence numbers not in the output.
    pub missing: Vec<usize>,
    /// Sequence numbers there more than once, with how often.
    pub repeated: Vec<(usize, usize)>,
    /// Records whose message is no line of the run.
    pub foreign: usize,
}

impl Tally {
    /// Counts the records of a JSON-lines output (a torn last line is ignored).
    pub fn of(path: &Path, total: usize) -> Tally {
        Tally::of_messages(
            records(path)
                .iter()
                .map(|r| r["message"].as_str().unwrap_or_default().to_string()),
            total,
        )
    }

    pub fn of_messages(messages: impl Iterator<Item = String>, total: usize) -> Tally {
        let mut seen = vec![0usize; total];
        let mut foreign = 0;
        for message in messages {
            match sequence_of(&message).filter(|&i| i < total && message == line(i)) {
                Some(i) => seen[i] += 1,
                None => foreign += 1,
            }
        }
        Tally {
            total,
            missing: (0..total).filter(|&i| seen[i] == 0).collect(),
            repeated: (0..total)
                .filter(|&i| seen[i] > 1)
                .map(|i| (i, seen[i]))
                .collect(),
            foreign,
        }
    }

    pub fn assert_none_lost(&self) {
        assert!(
            self.missing.is_empty(),
            "{} of {} lines lost, first {:?}",
            self.missing.len(),
            self.total,
            &self.missing[..self.missing.len().min(10)]
        );
        assert_eq!(self.foreign, 0, "records that are no line of the run");
    }

    pub fn assert_each_once(&self) {
        self.assert_none_lost();
        assert!(
            self.repeated.is_empty(),
            "{} lines repeated, first {:?}",
            self.repeated.len(),
            &self.repeated[..self.repeated.len().min(10)]
        );
    }
}

/// Appends `line(i)` for every `i` of `range` to `path` (created when absent).
pub fn append_lines(path: &Path, range: std::ops::Range<usize>) {
    use std::io::Write;
    let mut writer = std::io::BufWriter::new(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    );
    for i in range {
        writeln!(writer, "{}", line(i)).unwrap();
    }
    writer.flush().unwrap();
}

/// The agent's peak resident memory so far (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
