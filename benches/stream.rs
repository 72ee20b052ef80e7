//! Never-seen lines through the model tier: what the agent around the model costs, and whether
//! the model holds up the lines the rules decide.
//!
//! Every model-bound line here is a new template (a seed line the model labels, `complexity =
//! bert`, behind a tag of letters no two lines share), so the template cache cannot help: each
//! one is embedded. The rule-decided lines are the seed's `complexity = regex` lines.
//!
//! 1. **Throughput**, all lines never seen: lines/s of the embedder + head alone (in process,
//!    the model tier's default settings: int8, batches of 32, 2 threads, 256 tokens), of the whole tier
//!    chain in process (templates, cache misses, model; the better of two interleaved rounds
//!    each), and of `logsieve run --exit-on-eof` (file source → route + regex + cache + model
//!    → file sink), from start to the last record and after the first records to the last.
//! 2. **Latency** at a steady rate where 1 line in 4 is never seen, the model busy about half
//!    the time: p50/p99/max from a line's ingest to its record in the output, for the lines the
//!    rules decide and for the model's, next to the same stream with rule lines only and to
//!    the same stream with `ordered = true` (each batch leaves whole, after its model run, as
//!    every batch did before 2026-11-30), and the model's mean time per batch (from
//!    `/metrics`). The goal: the model holds up the rules' lines by no more than one batch's
//!    model time.
//!
//! Run: `cargo bench --bench stream` (after `scripts/fetch-models.sh`; reads the seed set from
//! `../shared/data/seed/synthetic_logs.csv`). The report is Markdown, for BENCHMARKS.md.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use logsieve::event::{Event, Origin};
use logsieve::tiers::model::embed::{EmbedOptions, Embedder};
use logsieve::tiers::model::logistic::Head;

mod common;
use common::*;

/// Lines of the throughput runs.
const LINES: usize = 2_000;
/// In the latency stream, one line in this many is never seen (the rest the rules decide).
const EVERY: usize = 4;
const LATENCY_SECONDS: usize = 20;
/// The model the tier runs by default.
const MODEL: &str = "model.int8.onnx";

fn main() {
    let work = repo_path("target/bench-data/stream");
    fs::create_dir_all(&work).expect("create target/bench-data/stream");
    let (model_lines, rule_lines) = seed_lines();
    println!("# logsieve: never-seen lines through the model tier\n");
    println!(
        "Machine: {}, {} cores, {} RAM; load average at start {}. `cargo bench --bench stream`.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total(),
        load_average()
    );

    let lines: Vec<String> = (0..LINES).map(|i| never_seen(&model_lines, i)).collect();
    println!(
        "## Throughput: {} lines, every one a new template\n",
        thousands(LINES as u64)
    );
    println!("| run | lines/s | × embedder + head |");
    println!("|---|--:|--:|");
    // Two interleaved rounds, the better of each: the first runs of a process warm up.
    let (mut alone, mut chain) = (0f64, 0f64);
    for _ in 0..2 {
        alone = alone.max(embedder_alone(&lines));
        chain = chain.max(chain_in_process(&lines));
    }
    println!("| embedder + head alone (in process) | {alone:.0} | 1.00× |");
    println!(
        "| tier chain in process (template, cache miss, model) | {chain:.0} | {:.2}× |",
        chain / alone
    );
    let (whole, steady) = agent_throughput(&work, &lines);
    println!(
        "| `logsieve run`, start to last record (model load included) | {whole:.0} | {:.2}× |",
        whole / alone
    );
    println!(
        "| `logsieve run`, after the first records (model loaded) | {steady:.0} | {:.2}× |",
        steady / alone
    );

    // The model busy about half the time: never-seen lines at half its rate alone.
    let rate = ((alone / 2.0) as usize * EVERY).max(EVERY * 10);
    println!("\n## Latency: {rate} lines/s for {LATENCY_SECONDS} s, 1 in {EVERY} never seen\n");
    println!("| stream | rule lines p50 ms | p99 | max | model lines p50 ms | p99 | model ms per batch (mean) | batches |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for (name, with_model, ordered) in [
        ("rule lines only", false, false),
        ("1 in 4 never seen", true, false),
        ("1 in 4 never seen, `ordered = true`", true, true),
    ] {
        latency(&work, &model_lines, &rule_lines, rate, with_model, ordered).print(name);
    }
}

// ----- input -----

/// The seed's lines the model labels, and the ones its rules decide.
fn seed_lines() -> (Vec<String>, Vec<String>) {
    let path = repo_path("../shared/data/seed/synthetic_logs.csv");
    let mut reader = csv::Reader::from_path(&path).expect("the seed set");
    let (mut model, mut rules) = (Vec::new(), Vec::new());
    for row in reader.records() {
        let row = row.expect("a seed row");
        match &row[4] {
            "bert" => model.push(row[2].to_string()),
            "regex" => rules.push(row[2].to_string()),
            _ => {}
        }
    }
    (model, rules)
}

/// The `i`-th never-seen line: a seed model line behind a tag of letters that are neither
/// digits nor hex, so the template keeps it and no two lines share a template.
fn never_seen(model_lines: &[String], i: usize) -> String {
    const LETTERS: &[u8; 16] = b"ghjkmnpqrstvwxyz";
    let mut tag = String::new();
    let mut n = i;
    for _ in 0..5 {
        tag.push(LETTERS[n % 16] as char);
        n /= 16;
    }
    format!("[{tag}] {}", model_lines[i % model_lines.len()])
}

// ----- 1. throughput -----

/// Embedder + head on the lines in pipeline-sized calls (512), after a warm-up call.
fn embedder_alone(lines: &[String]) -> f64 {
    let mut embedder =
        Embedder::load(&model_files(MODEL), &EmbedOptions::new(2, 32, 256)).expect("the model");
    let head = Head::load(&repo_path("models/head.json")).expect("the head");
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    embedder.embed(&refs[..32]).expect("warm-up");
    let started = Instant::now();
    for chunk in refs.chunks(512) {
        for vector in embedder.embed(chunk).expect("embed") {
            head.predict(&vector);
        }
    }
    lines.len() as f64 / started.elapsed().as_secs_f64()
}

/// The tier chain the agent runs, in process, on batches of 512.
fn chain_in_process(lines: &[String]) -> f64 {
    let plan = logsieve::config::load(Some(&config(
        &repo_path("target/bench-data/stream"),
        Path::new("/dev/null"),
        None,
        false,
    )))
    .expect("the bench config");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let tiers =
            logsieve::tiers::Tiers::build(&plan.tiers, &logsieve::metrics::Registry::default())
                .expect("tiers");
        let timestamp: Arc<str> = Arc::from("2026-01-01T00:00:00.000Z");
        let events: Vec<Event> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let origin = Origin::Row { row: i as u64 };
                Event::plain(timestamp.clone(), "bench", line.clone(), origin)
            })
            .collect();
        let started = Instant::now();
        logsieve::classify::label_all(&tiers, events, 512).await;
        lines.len() as f64 / started.elapsed().as_secs_f64()
    })
}

/// `logsieve run --exit-on-eof` over the lines: (lines/s from start to the last record, from
/// the first record to the last).
fn agent_throughput(work: &Path, lines: &[String]) -> (f64, f64) {
    let dir = work.join("run");
    fresh_dir(&dir);
    let input = dir.join("in.log");
    fs::write(&input, lines.join("\n") + "\n").expect("write the input");
    let config = config(&dir, &input, None, false);
    let mut follower = Follower::new(dir.join("out.jsonl"));
    let started = SystemTime::now();
    let child = spawn_agent(&config, &dir, true);
    wait_following(child, &dir, |_| follower.poll());
    follower.poll();
    assert_eq!(follower.records.len(), lines.len(), "one record per line");
    let first = follower.records.first().expect("records").at;
    let last = follower.records.last().expect("records").at;
    let whole = last.duration_since(started).unwrap().as_secs_f64();
    // The lines that came out with the first are not counted: their time is before `first`.
    let after_first = follower.records.iter().filter(|s| s.at > first).count();
    let steady = last.duration_since(first).unwrap().as_secs_f64();
    (lines.len() as f64 / whole, after_first as f64 / steady)
}

// ----- 2. latency -----

struct Latency {
    rules: Vec<f64>,
    model: Vec<f64>,
    model_batch_ms: f64,
    batches: u64,
}

impl Latency {
    fn print(&self, name: &str) {
        let max = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            percentile(&self.rules, 0.5),
            percentile(&self.rules, 0.99),
            max(&self.rules),
            percentile(&self.model, 0.5),
            percentile(&self.model, 0.99),
            self.model_batch_ms,
            self.batches
        );
    }
}

/// Appends `rate` lines/s for [`LATENCY_SECONDS`] while the agent follows the file (1 in
/// [`EVERY`] never seen, or none); per record, the time from its ingest timestamp to its
/// appearance in the output.
fn latency(
    work: &Path,
    model_lines: &[String],
    rule_lines: &[String],
    rate: usize,
    with_model: bool,
    ordered: bool,
) -> Latency {
    let dir = work.join("run");
    fresh_dir(&dir);
    let input = dir.join("in.log");
    File::create(&input).expect("create the input");
    let port = free_port();
    let config = config(&dir, &input, Some(port), ordered);
    let child = spawn_agent(&config, &dir, false);
    let mut follower = Follower::new(dir.join("out.jsonl"));
    std::thread::sleep(Duration::from_secs(2)); // the model loads, the agent finds the file
    let total = rate * LATENCY_SECONDS;
    let line = |i: usize| {
        if with_model && i.is_multiple_of(EVERY) {
            never_seen(model_lines, i + 100_000)
        } else {
            rule_lines[i % rule_lines.len()].clone()
        }
    };
    append_at_rate(&input, rate, total, line, || follower.poll());
    poll_until(Duration::from_secs(120), || {
        follower.poll();
        follower.records.len() >= total
    });
    let metrics = scrape(port);
    stop_agent(child, &dir);
    follower.poll();
    assert_eq!(follower.records.len(), total, "one record per line");
    let (rules, model) = sorted_split(
        follower
            .records
            .iter()
            .map(|seen| (seen.by_rule, ms_between(seen.ingest, seen.at))),
    );
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(r#"tier="model""#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let batches = metric("logsieve_tier_duration_seconds_count") as u64;
    let seconds = metric("logsieve_tier_duration_seconds_sum");
    Latency {
        rules,
        model,
        model_batch_ms: if batches > 0 {
            seconds * 1000.0 / batches as f64
        } else {
            f64::NAN
        },
        batches,
    }
}

/// `GET /metrics` from the agent on `port`.
fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// One record as the follower saw it.
struct Seen {
    at: SystemTime,
    ingest: SystemTime,
    by_rule: bool,
}

/// Follows the agent's output file, stamping each record with the time it appeared.
struct Follower {
    tail: Tail,
    records: Vec<Seen>,
}

impl Follower {
    fn new(path: PathBuf) -> Follower {
        Follower {
            tail: Tail::new(path),
            records: Vec::new(),
        }
    }

    fn poll(&mut self) {
        let records = &mut self.records;
        self.tail.poll(|at, line| {
            let record: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            let ingest = record["timestamp"].as_str().expect("timestamp");
            records.push(Seen {
                at,
                ingest: humantime::parse_rfc3339(ingest).expect("RFC 3339"),
                by_rule: record["tier"] == "regex",
            });
        });
    }
}

// ----- the agent -----

/// File source → route + regex + cache + model (int8, the shipped head) → file sink; the
/// server on `port` when given; with `ordered`, each batch leaves whole and in order.
fn config(dir: &Path, input: &Path, port: Option<u16>, ordered: bool) -> PathBuf {
    let server = match port {
        Some(port) => format!("address = \"127.0.0.1:{port}\""),
        None => "enabled = false".into(),
    };
    let config = format!(
        r#"data_dir = {data}
[server]
{server}
[[sources]]
type = "file"
name = "bench"
include = [{input}]
read_from = "beginning"
glob_interval_ms = 100
[tiers.regex]
rules = {rules}
{model}
[tiers.llm]
enabled = false
ordered = {ordered}
[[sinks]]
type = "file"
path = {out}
"#,
        data = toml_path(&dir.join("data")),
        input = toml_path(input),
        rules = toml_path(&repo_path("config/rules.toml")),
        model = model_section(MODEL),
        out = toml_path(&dir.join("out.jsonl")),
    );
    fs::create_dir_all(dir).expect("create the run folder");
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).expect("write the bench config");
    path
}
