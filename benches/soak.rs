//! The soak: `logsieve run` for a long time at a steady rate, with everything on — the rules,
//! the template cache, the model tier (MiniLM, for the lines no rule decides), and an LLM that
//! answers in 100 ms (the test suite's scripted server) for the routed lines — while the input
//! file is rotated every minute (renamed out of the glob, a new one created). It samples the
//! agent's resident memory every 5 s, and reports whether lines in = lines out (counted by
//! sequence number), and the latency from a line being written to its record being written
//! (p50/p99, per minute and overall).
//!
//! Not part of CI (it runs for 30 minutes). Run: `scripts/soak.sh` (which also plots the memory
//! into `BENCHMARKS-soak.png`), or `cargo bench --bench soak` with `LOGSIEVE_SOAK_SECS` (1800)
//! and `LOGSIEVE_SOAK_RATE` (20000 lines/s). The samples go to `target/soak/rss.csv`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
#[allow(dead_code)]
#[path = "../tests/common/scripted_llm.rs"]
mod scripted_llm;

use common::*;
use scripted_llm::{Reply, ScriptedLlm};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Lines the rules decide, lines the cache/model decide (a few shapes), a routed LegacyCRM
/// line every 200, and a never-seen shape every 2,000 (for the model itself).
fn line(seq: u64, written_us: u64) -> String {
    let tail = format!("seq={seq} t={written_us}");
    match seq % 2000 {
        0 => format!(
            "novel event {} in subsystem {} {tail}",
            words(seq),
            words(seq / 7)
        ),
        n if n % 200 == 100 => {
            let message = format!("Case escalation {} failed for ticket {tail}", seq % 97);
            serde_json::json!({"source": "LegacyCRM", "message": message}).to_string()
        }
        n => match n % 5 {
            0 => format!("User User{} logged in. {tail}", seq % 9973),
            1 => format!("Backup completed successfully. {tail}"),
            2 => format!(
                "GET /api/v2/orders/{} HTTP/1.1 status: 200 len: 1893 time: 0.26 {tail}",
                seq % 1000
            ),
            3 => format!("Disk usage on node-{} at 91% {tail}", seq % 17),
            _ => format!(
                "Connection to db-{} timed out after 30000 ms {tail}",
                seq % 5
            ),
        },
    }
}

/// Words no template masks, different for every `n`.
fn words(n: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "zu", "mi", "ro", "te", "la", "vo", "ne", "shi", "pa", "do", "ge", "fu", "yo", "bi",
        "wa",
    ];
    (0..4)
        .map(|i| SYLLABLES[((n >> (4 * i)) & 15) as usize])
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench --bench soak -- --list` and test harness probes
    }
    let seconds = env_or("LOGSIEVE_SOAK_SECS", 1800);
    let rate = env_or("LOGSIEVE_SOAK_RATE", 20_000);
    let work = repo_path("target/soak");
    fresh_dir(&work);
    fs::create_dir_all(work.join("logs")).unwrap();
    let llm = ScriptedLlm::start(|_, _| {
        Reply::answer("<category>Workflow Error</category>").after(Duration::from_millis(100))
    });
    let config = write_config(&work, &llm.base_url());
    let mut agent = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(repo_path("."))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(File::create(work.join("agent.log")).unwrap())
        .spawn()
        .expect("start logsieve");
    let pid = agent.id();
    println!(
        "# soak: {seconds} s at {rate} lines/s, rotation every 60 s; {} ({} cores, {}), load {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total(),
        load_average()
    );

    let started = Instant::now();
    let writer = {
        let logs = work.join("logs");
        std::thread::spawn(move || write_stream(&logs, rate, Duration::from_secs(seconds), started))
    };
    let mut follower = Follower::new(work.join("out.jsonl"), started);
    let mut rss = BufWriter::new(File::create(work.join("rss.csv")).unwrap());
    writeln!(rss, "seconds,rss_mib").unwrap();
    let mut next_sample = Duration::ZERO;
    let mut peak = 0f64;
    let mut minute_latencies: Vec<f64> = Vec::new();
    while !writer.is_finished() {
        follower.poll(&mut minute_latencies);
        let now = started.elapsed();
        if now >= next_sample {
            let rss_mib = proc_memory_kib(pid, "VmRSS").map_or(0.0, |kib| kib as f64 / 1024.0);
            peak = peak.max(rss_mib);
            writeln!(rss, "{},{rss_mib:.1}", now.as_secs()).unwrap();
            rss.flush().unwrap();
            next_sample += Duration::from_secs(5);
            if now.as_secs() % 60 < 5 && now.as_secs() >= 60 {
                report_minute(now, &mut minute_latencies, rss_mib, follower.seen.len());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let written = writer.join().unwrap();
    // Let the agent catch up, then stop it.
    let deadline = Instant::now() + Duration::from_secs(120);
    while follower.unique() < written as usize && Instant::now() < deadline {
        follower.poll(&mut minute_latencies);
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    follower.poll(&mut minute_latencies);
    let mut all = follower.latencies.clone();
    all.sort_by(f64::total_cmp);
    let duplicates = follower.seen.values().filter(|&&n| n > 1).count();
    println!();
    println!("| | |\n|---|---|");
    println!("| lines written | {} |", thousands(written));
    println!(
        "| distinct lines out | {} |",
        thousands(follower.unique() as u64)
    );
    println!("| lines repeated | {duplicates} |");
    println!(
        "| latency p50 / p99 / max (write → record written) | {:.0} / {:.0} / {:.0} ms |",
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0.0)
    );
    println!("| peak RSS (5 s samples) | {peak:.0} MiB |");
    println!("| LLM requests | {} |", llm.requests());
    println!("| agent exit | {status} |");
    println!("\nmemory samples: {}", work.join("rss.csv").display());
}

fn report_minute(now: Duration, latencies: &mut Vec<f64>, rss_mib: f64, seen: usize) {
    latencies.sort_by(f64::total_cmp);
    println!(
        "minute {:>2}: {} lines out, p50 {:.0} ms, p99 {:.0} ms, RSS {rss_mib:.0} MiB",
        now.as_secs() / 60,
        thousands(seen as u64),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99)
    );
    latencies.clear();
}

/// Writes `rate` lines/s into `logs/app.log` for `length`, renaming it to `app.log.<n>` (out
/// of the glob) every minute. Returns how many lines it wrote.
fn write_stream(logs: &Path, rate: u64, length: Duration, started: Instant) -> u64 {
    let path = logs.join("app.log");
    let mut file = BufWriter::new(File::create(&path).unwrap());
    let mut seq = 0u64;
    let mut rotations = 0;
    let tick = Duration::from_millis(10);
    let mut next = Instant::now();
    while started.elapsed() < length {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while seq < due {
            let written_us = started.elapsed().as_micros() as u64;
            writeln!(file, "{}", line(seq, written_us)).unwrap();
            seq += 1;
        }
        file.flush().unwrap();
        if started.elapsed().as_secs() / 60 > rotations {
            rotations += 1;
            fs::rename(&path, logs.join(format!("app.log.{rotations}"))).unwrap();
            file = BufWriter::new(File::create(&path).unwrap());
        }
        next += tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    file.flush().unwrap();
    seq
}

fn write_config(dir: &Path, llm_url: &str) -> PathBuf {
    let config = format!(
        r#"data_dir = {data}
[server]
enabled = false
[[sources]]
type = "file"
name = "soak"
include = [{input}]
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
labels = ["Workflow Error", "Deprecation Warning"]
[tiers.regex]
rules = {rules}
[tiers.cache]
capacity = 100000
[tiers.model]
enabled = true
[tiers.llm]
base_url = "{llm_url}"
model = "scripted"
api_key_env = ""
on_full = "fallback"
persist_cache = false
[[sinks]]
type = "file"
path = {out}
"#,
        data = toml_path(&dir.join("data")),
        input = toml_path(&dir.join("logs/*.log")),
        rules = toml_path(&repo_path("config/rules.toml")),
        out = toml_path(&dir.join("out.jsonl")),
    );
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).unwrap();
    path
}

/// Tails the agent's output: counts each sequence number and the latency of each record.
struct Follower {
    path: PathBuf,
    file: Option<File>,
    partial: Vec<u8>,
    started: Instant,
    seen: HashMap<u64, u32>,
    latencies: Vec<f64>,
}

impl Follower {
    fn new(path: PathBuf, started: Instant) -> Follower {
        Follower {
            path,
            file: None,
            partial: Vec::new(),
            started,
            seen: HashMap::new(),
            latencies: Vec::new(),
        }
    }

    fn unique(&self) -> usize {
        self.seen.len()
    }

    fn poll(&mut self, minute: &mut Vec<f64>) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        file.read_to_end(&mut self.partial).unwrap();
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let now_us = self.started.elapsed().as_micros() as f64;
        let rest = self.partial.split_off(end + 1);
        for record in self
            .partial
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let text = String::from_utf8_lossy(record);
            let (Some(seq), Some(t)) = (field(&text, "seq="), field(&text, " t=")) else {
                continue;
            };
            *self.seen.entry(seq).or_insert(0) += 1;
            let ms = (now_us - t as f64) / 1000.0;
            self.latencies.push(ms);
            minute.push(ms);
        }
        self.partial = rest;
    }
}

/// The number after `key` in a record's text.
fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}
