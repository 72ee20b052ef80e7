//! Model tier benchmark: what the MiniLM tier costs and what the template cache saves.
//!
//! Run: `cargo bench --bench model` (after `scripts/fetch-models.sh`; reads the seed set from
//! `../shared/data/seed/synthetic_logs.csv`). Prints Markdown tables for BENCHMARKS.md:
//! 1. the embedder + head alone: lines/s at batch 1/16/64 on 1 and 2 threads, peak RSS —
//!    each configuration in a fresh process, so peak RSS is its own;
//! 2. `logsieve classify` on the 2410-row synthetic set: a cold process (model load included)
//!    and a warm cache (the same rows labelled again in one process), next to the seed's
//!    ~35 rows/s measured on this machine (DESIGN.md §5);
//! 3. a stream where 95% of lines repeat 200 templates: lines/s with the cache and without.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use logsieve::event::{Event, Origin};
use logsieve::tiers::model::embed::Embedder;
use logsieve::tiers::model::ModelFiles;
use logsieve::tiers::Tiers;

const SEED_ROWS_PER_SECOND: f64 = 35.0;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seed_csv() -> PathBuf {
    repo().join("../shared/data/seed/synthetic_logs.csv")
}

/// The seed's model-tier lines (`complexity = bert`).
fn model_lines(n: usize) -> Vec<String> {
    let mut reader = csv::Reader::from_path(seed_csv()).expect("seed set");
    reader
        .records()
        .map(|r| r.expect("row"))
        .filter(|r| &r[4] == "bert")
        .map(|r| r[2].to_string())
        .take(n)
        .collect()
}

fn model_files() -> ModelFiles {
    let m = repo().join("models");
    ModelFiles {
        onnxruntime: m.join("onnxruntime/libonnxruntime.so"),
        model: m.join("minilm/model.onnx"),
        tokenizer: m.join("minilm/tokenizer.json"),
        checksums: m.join("SHA256SUMS"),
    }
}

/// Child mode: embed and predict `LINES` lines at one batch size and thread count.
fn embed_child(threads: usize, batch: usize) {
    let lines = model_lines(512);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut embedder = Embedder::load(&model_files(), threads, batch).expect("model");
    let head = logsieve::tiers::model::logistic::Head::load(&repo().join("models/head.json"))
        .expect("head");
    embedder.embed(&refs[..32]).expect("warm-up");
    let started = Instant::now();
    let mut labelled = 0;
    for chunk in refs.chunks(batch.max(1) * 4) {
        for v in embedder.embed(chunk).expect("embed") {
            head.predict(&v);
            labelled += 1;
        }
    }
    println!("{}", labelled as f64 / started.elapsed().as_secs_f64());
}

/// Runs `cmd` and returns (stdout, peak RSS in MiB). `wait4` alone reaps the child, so the
/// peak RSS it reports is the child's own.
fn run_measured(cmd: &mut Command) -> (String, f64) {
    #[allow(clippy::zombie_processes)] // reaped by wait4 below
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let out = reader.join().expect("join").unwrap_or_default();
    (out, usage.ru_maxrss as f64 / 1024.0)
}

fn tiers(capacity: usize) -> Tiers {
    let mut plan =
        logsieve::config::load(Some(&repo().join("config/logsieve.toml"))).expect("config");
    plan.tiers.cache.capacity = capacity;
    Tiers::build(&plan.tiers, &logsieve::metrics::Registry::default()).expect("tiers")
}

fn event(message: String, source: &str, row: usize) -> Event {
    let origin = Origin::Row { row: row as u64 };
    Event::plain(
        Arc::from("2026-01-01T00:00:00.000Z"),
        source,
        message,
        origin,
    )
}

async fn label_rate(tiers: &Tiers, events: Vec<Event>) -> f64 {
    let n = events.len();
    let started = Instant::now();
    logsieve::classify::label_all(tiers, events, 512).await;
    n as f64 / started.elapsed().as_secs_f64()
}

fn seed_events() -> Vec<Event> {
    let mut reader = csv::Reader::from_path(seed_csv()).expect("seed set");
    reader
        .records()
        .map(|r| r.expect("row"))
        .enumerate()
        .map(|(i, r)| event(r[2].to_string(), &r[1], i))
        .collect()
}

/// 95% of lines from 200 templates (5 shapes × 40 zones; only the numbers vary), 5% one-offs.
fn repeating_stream(n: usize) -> Vec<Event> {
    const SHAPES: [&str; 5] = [
        "Shard {n} data copy failed in zone {z}",
        "Server {n} restarted without warning during data migration in zone {z}",
        "Multiple bad login attempts detected on user {n} account in zone {z}",
        "System component has failed: component ID Component{n} in zone {z}",
        "Email service affected by failed transmission for ticket {n} in zone {z}",
    ];
    const ZONES: [&str; 8] = [
        "amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath",
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let message = if r % 100 < 95 {
                let t = (r >> 8) % 200;
                let zone = format!(
                    "{}-{}",
                    ZONES[(t / 5 % 8) as usize],
                    ["north", "south", "east", "west", "core"][(t / 40) as usize]
                );
                SHAPES[(t % 5) as usize]
                    .replace("{n}", &(next() % 10_000).to_string())
                    .replace("{z}", &zone)
            } else {
                format!("one-off event {} in subsystem {}", next(), next() % 97)
            };
            event(message, "bench", i)
        })
        .collect()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`
    }
    if let Ok(spec) = std::env::var("LOGSIEVE_BENCH_EMBED_CHILD") {
        let (t, b) = spec.split_once(',').expect("threads,batch");
        embed_child(t.parse().unwrap(), b.parse().unwrap());
        return;
    }
    std::env::set_current_dir(repo()).expect("repo root");
    let exe = std::env::current_exe().expect("bench binary");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("## Model tier\n");
    println!(
        "- Machine: {cpu}, nproc {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("- Command: `cargo bench --bench model`; model: all-MiniLM-L6-v2 fp32 (ONNX Runtime 1.31.1), seed's `bert` lines\n");

    let only = std::env::var("LOGSIEVE_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "1" {
        embedder_table(&exe);
    }
    if only.is_empty() || only == "2" {
        classify_table();
    }
    if only.is_empty() || only == "3" {
        cache_table();
    }
}

fn embedder_table(exe: &std::path::Path) {
    println!("### 1. Embedder + head alone (512 lines, after a warm-up batch)\n");
    println!("| threads | batch | lines/s | peak RSS MiB |\n|--:|--:|--:|--:|");
    for threads in [1, 2] {
        for batch in [1, 16, 64] {
            let (out, rss) = run_measured(
                Command::new(exe).env("LOGSIEVE_BENCH_EMBED_CHILD", format!("{threads},{batch}")),
            );
            let rate: f64 = out.trim().parse().unwrap_or(f64::NAN);
            println!("| {threads} | {batch} | {rate:.0} | {rss:.0} |");
        }
    }
}

fn classify_table() {
    println!("\n### 2. `classify` on the 2410-row synthetic set\n");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_logsieve"));
    let started = Instant::now();
    let (_, rss) = run_measured(
        Command::new(&bin)
            .args(["classify", "--output", "/dev/null", "--input"])
            .arg(seed_csv()),
    );
    let cold = 2410.0 / started.elapsed().as_secs_f64();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let chain = tiers(100_000);
    let first = rt.block_on(label_rate(&chain, seed_events()));
    let warm = rt.block_on(label_rate(&chain, seed_events()));
    println!("| run | rows/s | × seed (35 rows/s) | peak RSS MiB |\n|---|--:|--:|--:|");
    println!("| cold process (`logsieve classify`, model load included) | {cold:.0} | {:.0}× | {rss:.0} |", cold / SEED_ROWS_PER_SECOND);
    println!(
        "| in process, cold cache | {first:.0} | {:.0}× | |",
        first / SEED_ROWS_PER_SECOND
    );
    println!(
        "| in process, warm cache | {warm:.0} | {:.0}× | |",
        warm / SEED_ROWS_PER_SECOND
    );
}

fn cache_table() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("\n### 3. 20,000 lines, 95% from 200 templates\n");
    let with_cache = rt.block_on(label_rate(&tiers(100_000), repeating_stream(20_000)));
    let without = rt.block_on(label_rate(&tiers(0), repeating_stream(20_000)));
    println!("| cache | lines/s |\n|---|--:|");
    println!("| on (100,000 templates) | {with_cache:.0} |");
    println!("| off (capacity 0) | {without:.0} |");
    println!("\nratio with / without: {:.1}×", with_cache / without);
}
