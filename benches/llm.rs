//! The LLM tier's cost and its effect on the stream, through the real agent (`logsieve run`,
//! file source → route + regex (+ cache) → LLM tier → file sink), on a stream where 1% of the
//! lines are routed to the LLM (`LegacyCRM` lines from 40 templates with varying ids) and the
//! rest are decided by the rules or left `Unclassified` (the model tier is off: it is
//! benchmarked on its own in `benches/model.rs`).
//!
//! 1. **Throughput** over a whole file read at once: lines/s until every line the LLM does not
//!    answer is written, LLM requests per 10k lines and peak RSS — with no LLM, with an LLM
//!    answering in 100 ms (cache on and off), and with an LLM that never answers
//!    (`on_full = "fallback"`: the other lines must not wait for it; memory must stay flat).
//! 2. **Latency** at a steady 2,000 lines/s for 10 s (20 LLM lines/s): p50/p99 of the time from
//!    ingest to the record being written, for LLM lines and for the others, cache on and off.
//!
//! The 100 ms LLM is the scripted server of the test suite (`tests/common/scripted_llm.rs`), so
//! the figures measure logsieve, not a model. With `LOGSIEVE_BENCH_LLM_URL` set (e.g.
//! `LOGSIEVE_BENCH_LLM_URL=$(scripts/llm-server.sh start) cargo bench --bench llm`) the latency
//! table gets a row against that real server too (llama.cpp with SmolLM2-135M, grammar-constrained,
//! at 200 lines/s: it shares the two cores with the agent).
//!
//! Run: `cargo bench --bench llm`. The report is Markdown, for BENCHMARKS.md.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

mod common;
#[allow(dead_code)]
#[path = "../tests/common/scripted_llm.rs"]
mod scripted_llm;

use common::*;
use scripted_llm::{Reply, ScriptedLlm};

const LINES: usize = 4_000_000;
/// One line in this many goes to the LLM.
const EVERY: usize = 100;
const TEMPLATES: usize = 40;
/// Throughput runs of each configuration; the median is reported.
const ROUNDS: usize = 5;

fn main() {
    let work = repo_path("target/bench-data/llm");
    fs::create_dir_all(&work).expect("create target/bench-data/llm");
    let answering = ScriptedLlm::start(|_, _| {
        Reply::answer("<category>Workflow Error</category>").after(Duration::from_millis(100))
    });
    let stalled =
        ScriptedLlm::start(|_, _| Reply::answer("Workflow Error").after(Duration::from_secs(600)));

    println!("# logsieve LLM tier benchmark\n");
    println!(
        "Machine: {}, {} cores, {} RAM; load average at start {}. `cargo bench --bench llm`.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total(),
        load_average()
    );

    let input = work.join("input.log");
    write_input(&input, LINES, 1);
    println!(
        "## Throughput: {} lines read at once, 1 in {EVERY} routed to the LLM ({TEMPLATES} templates)\n",
        thousands(LINES as u64)
    );
    println!("| LLM | cache | lines/s (non-LLM lines) | × no LLM | LLM requests / 10k lines | LLM lines answered | peak RSS MiB |");
    println!("|---|---|--:|--:|--:|--:|--:|");
    // Rounds of every configuration in turn; each row is the round with the median rate, so
    // that a noisy moment on a shared machine weighs on all rows alike.
    let runs: [(&str, Option<&ScriptedLlm>, bool); 4] = [
        ("none (llm_disabled)", None, true),
        ("100 ms", Some(&answering), false),
        ("100 ms", Some(&answering), true),
        ("stalled (never answers)", Some(&stalled), true),
    ];
    let mut results: Vec<Vec<Throughput>> = runs.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (i, (_, server, cache)) in runs.iter().enumerate() {
            results[i].push(throughput(&work, &input, *server, *cache));
        }
    }
    let medians: Vec<Throughput> = results
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            r.swap_remove(r.len() / 2)
        })
        .collect();
    for ((name, _, cache), run) in runs.iter().zip(&medians) {
        run.print(name, if *cache { "on" } else { "off" }, medians[0].rate);
    }

    println!("\n## Latency: 2,000 lines/s for 10 s, 1 in {EVERY} to the LLM\n");
    println!(
        "| LLM | cache | LLM lines p50 ms | p99 ms | other lines p50 ms | p99 ms | LLM requests |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|");
    for (cache, name) in [(false, "off"), (true, "on")] {
        let url = answering.base_url();
        latency(&work, &url, "scripted", cache, 2000, 10).print("100 ms", name);
    }
    match std::env::var("LOGSIEVE_BENCH_LLM_URL") {
        Ok(url) => {
            for (cache, name) in [(false, "off"), (true, "on")] {
                latency(&work, &url, "smollm2", cache, 200, 10)
                    .print("llama.cpp SmolLM2-135M (200 lines/s)", name);
            }
        }
        Err(_) => println!(
            "\n(LOGSIEVE_BENCH_LLM_URL not set: no row against a real LLM server; see the top of benches/llm.rs.)"
        ),
    }
}

// ----- input -----

const LEGACY: [&str; 8] = [
    "Invoice generation aborted for order ID {n}: tax service returned no rate",
    "Case escalation for ticket {n} failed because the assigned agent is inactive",
    "Customer follow-up email {n} was not sent: SMTP relay refused the message",
    "The 'ReportGenerator{n}' module will be retired in version 4.{n}",
    "Lead conversion {n} stopped: required field 'region' missing",
    "API endpoint /v1/legacy/{n} is deprecated and will be removed next release",
    "Workflow step {n} timed out waiting for manager approval",
    "Support for the SOAP client {n} ends in the next major release",
];

const OTHER: [&str; 6] = [
    "User User{n} logged in.",
    "Backup completed successfully.",
    "nova.compute.manager [req-{n}] Instance {n} spawned successfully in 4.2 seconds",
    "GET /api/v2/orders/{n} HTTP/1.1 status: 200 len: 1893 time: 0.2675118",
    "worker-{n} heartbeat ok",
    "Disk cleanup completed successfully.",
];

/// The `i`-th line of the stream: a LegacyCRM JSON line every `EVERY` lines, else a plain line.
fn line(i: usize, run: usize) -> String {
    let n = (i * 7919 + run * 104_729) % 1_000_003;
    if i % EVERY == EVERY / 2 {
        // 40 templates: 8 shapes × 5 words that survive masking.
        let k = (i / EVERY) % TEMPLATES;
        let shape = LEGACY[k % LEGACY.len()].replace("{n}", &n.to_string());
        let word = ["billing", "sales", "support", "ops", "hr"][k / LEGACY.len()];
        let message = format!("[{word}] {shape}");
        serde_json::json!({"source": "LegacyCRM", "message": message}).to_string()
    } else {
        OTHER[i % OTHER.len()].replace("{n}", &n.to_string())
    }
}

/// What marks an LLM-bound line's record.
const LLM_MARK: &str = r#""source":"LegacyCRM""#;

fn write_input(path: &Path, lines: usize, run: usize) {
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&line(i, run));
        text.push('\n');
    }
    fs::write(path, text).expect("write the input");
}

// ----- the agent -----

fn write_config(dir: &Path, input: &Path, llm: Option<(&str, &str)>, cache: bool) -> PathBuf {
    let llm = match llm {
        None => String::new(),
        Some((url, model)) => format!(
            r#"[tiers.llm]
base_url = "{url}"
model = "{model}"
api_key_env = ""
constrain = "grammar"
queue_capacity = 1024
max_in_flight = 8
on_full = "fallback"
timeout_ms = 2000
deadline_ms = 2000
max_retries = 0
persist_cache = false
"#
        ),
    };
    let config = format!(
        r#"data_dir = {data}
[server]
enabled = false
[[sources]]
type = "file"
name = "bench"
include = [{input}]
read_from = "beginning"
glob_interval_ms = 100
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
labels = ["Workflow Error", "Deprecation Warning"]
[tiers.regex]
rules = {rules}
[tiers.cache]
capacity = {capacity}
{llm}
[[sinks]]
type = "file"
path = {out}
"#,
        data = toml_path(&dir.join("data")),
        input = toml_path(input),
        rules = toml_path(&repo_path("config/rules.toml")),
        capacity = if cache { 100_000 } else { 0 },
        out = toml_path(&dir.join("out.jsonl")),
    );
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).expect("write the bench config");
    path
}

/// One record as the follower saw it.
struct Seen {
    at: SystemTime,
    llm_line: bool,
    /// An LLM line the LLM (or its cache) answered.
    answered: bool,
    /// The record's ingest timestamp (latency runs only).
    ingest: Option<SystemTime>,
}

/// Follows the agent's output file, stamping each record with the time it appeared. It reads
/// records with substring searches, not a JSON parser, so that it takes little of the CPU the
/// agent is measured on.
struct Follower {
    tail: Tail,
    with_ingest: bool,
    records: Vec<Seen>,
    others: usize,
}

impl Follower {
    fn new(path: PathBuf, with_ingest: bool) -> Follower {
        Follower {
            tail: Tail::new(path),
            with_ingest,
            records: Vec::new(),
            others: 0,
        }
    }

    fn poll(&mut self) {
        let (with_ingest, records, others) =
            (self.with_ingest, &mut self.records, &mut self.others);
        self.tail.poll(|at, line| {
            let has = |needle: &str| memchr::memmem::find(line, needle.as_bytes()).is_some();
            let llm_line = has(LLM_MARK);
            let answered = llm_line && (has(r#""tier":"llm""#) || has(r#""tier":"cache""#));
            let ingest = with_ingest.then(|| {
                let record: serde_json::Value = serde_json::from_slice(line).expect("JSON");
                humantime::parse_rfc3339(record["timestamp"].as_str().expect("timestamp"))
                    .expect("RFC 3339")
            });
            *others += usize::from(!llm_line);
            records.push(Seen {
                at,
                llm_line,
                answered,
                ingest,
            });
        });
    }
}

struct Throughput {
    rate: f64,
    requests: usize,
    answered: usize,
    rss_mib: f64,
}

impl Throughput {
    fn print(&self, name: &str, cache: &str, base: f64) {
        println!(
            "| {name} | {cache} | {} | {:.2}× | {:.1} | {} | {:.1} |",
            thousands(self.rate as u64),
            self.rate / base,
            self.requests as f64 * 10_000.0 / LINES as f64,
            self.answered,
            self.rss_mib
        );
    }
}

/// Runs the agent to the end of `input`; the rate counts the lines the LLM does not answer,
/// from the start of the process to the moment the last of them was written.
fn throughput(work: &Path, input: &Path, llm: Option<&ScriptedLlm>, cache: bool) -> Throughput {
    let dir = work.join("run");
    fresh_dir(&dir);
    let url = llm.map(|s| s.base_url());
    let config = write_config(&dir, input, url.as_deref().map(|u| (u, "scripted")), cache);
    let before = llm.map_or(0, |s| s.requests());
    let mut follower = Follower::new(dir.join("out.jsonl"), false);
    let expected_other = LINES - LINES / EVERY;
    let started = SystemTime::now();
    let child = spawn_agent(&config, &dir, true);
    let (mut other_done, mut rss_kib) = (None, 0);
    wait_following(child, &dir, |pid| {
        rss_kib = proc_memory_kib(pid, "VmHWM").unwrap_or(rss_kib);
        follower.poll();
        if other_done.is_none() && follower.others == expected_other {
            other_done = follower.records.last().map(|s| s.at);
        }
    });
    follower.poll();
    assert_eq!(follower.records.len(), LINES, "one record per line");
    let last_other = || {
        follower
            .records
            .iter()
            .filter(|s| !s.llm_line)
            .map(|s| s.at)
            .max()
    };
    let other_done = other_done.or_else(last_other).expect("records");
    let seconds = other_done.duration_since(started).unwrap().as_secs_f64();
    Throughput {
        rate: expected_other as f64 / seconds,
        requests: llm.map_or(0, |s| s.requests() - before),
        answered: follower.records.iter().filter(|s| s.answered).count(),
        rss_mib: rss_kib as f64 / 1024.0,
    }
}

struct Latency {
    llm: Vec<f64>,
    other: Vec<f64>,
    requests: String,
}

impl Latency {
    fn print(&self, name: &str, cache: &str) {
        println!(
            "| {name} | {cache} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            percentile(&self.llm, 0.5),
            percentile(&self.llm, 0.99),
            percentile(&self.other, 0.5),
            percentile(&self.other, 0.99),
            self.requests
        );
    }
}

/// Appends `rate` lines/s for `seconds` while the agent follows the file; per record, the time
/// from its ingest timestamp to its appearance in the output.
fn latency(
    work: &Path,
    url: &str,
    model: &str,
    cache: bool,
    rate: usize,
    seconds: usize,
) -> Latency {
    let dir = work.join("run");
    fresh_dir(&dir);
    let input = dir.join("in.log");
    File::create(&input).expect("create the input");
    let config = write_config(&dir, &input, Some((url, model)), cache);
    let child = spawn_agent(&config, &dir, false);
    let mut follower = Follower::new(dir.join("out.jsonl"), true);
    std::thread::sleep(Duration::from_millis(500)); // the agent finds the file
    let total = rate * seconds;
    append_at_rate(&input, rate, total, |i| line(i, 2), || follower.poll());
    poll_until(Duration::from_secs(60), || {
        follower.poll();
        follower.records.len() >= total
    });
    stop_agent(child, &dir);
    follower.poll();
    assert_eq!(follower.records.len(), total, "one record per line");
    let stderr = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let requests = stderr
        .lines()
        .filter(|l| l.contains("lines asked"))
        .find_map(|l| {
            l.split_once("; ")
                .and_then(|(_, r)| r.split_once(" requests"))
        })
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| "?".into());
    let (llm, other) = sorted_split(follower.records.iter().map(|seen| {
        let ingest = seen.ingest.expect("ingest time");
        (seen.llm_line, ms_between(ingest, seen.at))
    }));
    Latency {
        llm,
        other,
        requests,
    }
}
