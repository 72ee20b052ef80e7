//! Model tier benchmark: what the MiniLM tier costs and what the template cache saves.
//!
//! Run: `cargo bench --bench model` (after `scripts/fetch-models.sh`; reads the seed set from
//! `../shared/data/seed/synthetic_logs.csv`). Prints Markdown tables for BENCHMARKS.md:
//! 1. the embedder + head alone: lines/s of the fp32 and int8 models, runs of one token count
//!    or padded mixed lengths (before 2026-11-30), batches of 32 and 1 line, 1 and 2 threads,
//!    256 and 128 tokens, one session per thread or one session of 2 intra-op threads (before
//!    2026-11-30 later), ONNX Runtime's threads spinning within a run or not,
//!    with the cosine of its vectors to fp32's and its peak RSS — each row in a fresh process,
//!    so peak RSS is its own;
//! 2. `logsieve classify` on the 2410-row synthetic set: cold processes (model load included)
//!    with the default config and with each model and batch size, and a warm cache (the same
//!    rows labelled again in one process), next to the seed's ~35 rows/s measured on this
//!    machine (DESIGN.md §5);
//! 3. a stream where 95% of lines repeat 200 templates: lines/s with the cache and without.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use logsieve::event::{Event, Origin};
use logsieve::tiers::model::embed::{EmbedOptions, Embedder};
use logsieve::tiers::Tiers;

mod common;

const SEED_ROWS_PER_SECOND: f64 = 35.0;

fn seed_csv() -> PathBuf {
    common::repo_path("../shared/data/seed/synthetic_logs.csv")
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

/// One way to run the embedder: a row of table 1.
#[derive(Clone, Copy)]
struct Variant {
    what: &'static str,
    model: &'static str,
    threads: usize,
    batch: usize,
    max_tokens: usize,
    spinning: bool,
    mixed_lengths: bool,
    session_per_thread: bool,
}

/// The default: what logsieve runs with the shipped config.
const DEFAULT: Variant = Variant {
    what: "int8 (the default)",
    model: "model.int8.onnx",
    threads: 2,
    batch: 32,
    max_tokens: 256,
    spinning: true,
    mixed_lengths: false,
    session_per_thread: true,
};

/// Child mode: embed and predict 512 lines; prints lines/s and writes the vectors (raw f32,
/// in line order) to `out` for the parent to compare.
fn embed_child(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let [model, threads, batch, max_tokens, spinning, mixed_lengths, session_per_thread, out] =
        parts[..]
    else {
        panic!(
            "model,threads,batch,max_tokens,spinning,mixed_lengths,session_per_thread,out: {spec}"
        )
    };
    let lines = model_lines(512);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut options = EmbedOptions::new(
        threads.parse().unwrap(),
        batch.parse().unwrap(),
        max_tokens.parse().unwrap(),
    );
    options.spinning = spinning == "true";
    options.mixed_lengths = mixed_lengths == "true";
    options.session_per_thread = session_per_thread == "true";
    let mut embedder = Embedder::load(&common::model_files(model), &options).expect("model");
    let head = logsieve::tiers::model::logistic::Head::load(&common::repo_path("models/head.json"))
        .expect("head");
    embedder.embed(&refs[..32]).expect("warm-up");
    let started = Instant::now();
    let mut vectors = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(128) {
        for v in embedder.embed(chunk).expect("embed") {
            head.predict(&v);
            vectors.push(v);
        }
    }
    println!("{}", vectors.len() as f64 / started.elapsed().as_secs_f64());
    let bytes: Vec<u8> = vectors
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(out, bytes).expect("vectors");
}

fn read_vectors(path: &std::path::Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    floats.chunks(384).map(<[f32]>::to_vec).collect()
}

/// Lowest and mean cosine between two lists of unit vectors.
fn cosines(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, f32) {
    let all: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum())
        .collect();
    if all.is_empty() || a.len() != b.len() {
        return (f32::NAN, f32::NAN);
    }
    let min = all.iter().copied().fold(f32::INFINITY, f32::min);
    (min, all.iter().sum::<f32>() / all.len() as f32)
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
        logsieve::config::load(Some(&common::repo_path("config/logsieve.toml"))).expect("config");
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
        embed_child(&spec);
        return;
    }
    std::env::set_current_dir(common::repo_path("")).expect("repo root");
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
    println!("- Command: `cargo bench --bench model`; model: all-MiniLM-L6-v2 (ONNX Runtime 1.31.1), seed's `bert` lines\n");

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

fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn embedder_table(exe: &std::path::Path) {
    println!("### 1. Embedder + head alone (512 `bert` lines of the seed, in calls of 128 lines, after a warm-up call)\n");
    println!("Each row is named for what it changes; × first and cosine are against the first row; lines/s is the median of interleaved rounds (`LOGSIEVE_BENCH_ROUNDS`, 3).\n");
    println!("| variant | model | threads | sessions | batch | lengths per run | tokens | spinning | lines/s | × first | cosine min | cosine mean | peak RSS MiB |");
    println!("|---|---|--:|---|--:|---|--:|---|--:|--:|--:|--:|--:|");
    let fp32 = Variant {
        what: "fp32",
        model: "model.onnx",
        ..DEFAULT
    };
    let variants = [
        Variant {
            what: "before (fp32, padded batches)",
            spinning: false,
            mixed_lengths: true,
            session_per_thread: false,
            ..fp32
        },
        fp32,
        Variant {
            what: "int8, padded batches",
            mixed_lengths: true,
            ..DEFAULT
        },
        DEFAULT,
        Variant {
            what: "int8, one session of 2 threads (the default until today)",
            session_per_thread: false,
            ..DEFAULT
        },
        Variant {
            what: "int8, batches of 1",
            batch: 1,
            ..DEFAULT
        },
        Variant {
            what: "int8, 1 thread",
            threads: 1,
            ..DEFAULT
        },
        Variant {
            what: "int8, 128 tokens",
            max_tokens: 128,
            ..DEFAULT
        },
    ];
    // Rounds of every variant in turn, each row its median rate: this VM's speed drifts by
    // ±20% over minutes, and a drift then weighs on every row alike.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rates = vec![Vec::new(); variants.len()];
    let mut rss = vec![0f64; variants.len()];
    for _ in 0..common::rounds() {
        for (i, v) in variants.iter().enumerate() {
            let out = dir.path().join(format!("{i}.f32"));
            let spec = format!(
                "{},{},{},{},{},{},{},{}",
                v.model,
                v.threads,
                v.batch,
                v.max_tokens,
                v.spinning,
                v.mixed_lengths,
                v.session_per_thread,
                out.display()
            );
            let (stdout, peak) =
                run_measured(Command::new(exe).env("LOGSIEVE_BENCH_EMBED_CHILD", spec));
            rates[i].push(stdout.trim().parse::<f64>().unwrap_or(f64::NAN));
            rss[i] = rss[i].max(peak);
        }
    }
    let base = read_vectors(&dir.path().join("0.f32"));
    let base_rate = median(&rates[0]);
    for (i, v) in variants.iter().enumerate() {
        let rate = median(&rates[i]);
        let (min, mean) = cosines(&base, &read_vectors(&dir.path().join(format!("{i}.f32"))));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {rate:.0} | {:.2}× | {min:.4} | {mean:.4} | {:.0} |",
            v.what,
            v.model,
            v.threads,
            if v.session_per_thread && v.threads > 1 { "one per thread" } else { "one" },
            v.batch,
            if v.mixed_lengths { "mixed, padded" } else { "one" },
            v.max_tokens,
            match (v.session_per_thread || v.threads == 1, v.spinning) {
                (true, _) => "n/a",
                (false, true) => "on",
                (false, false) => "off",
            },
            rate / base_rate,
            rss[i]
        );
    }
}

fn classify_table() {
    println!("\n### 2. `classify` on the 2410-row synthetic set\n");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_logsieve"));
    let dir = tempfile::tempdir().expect("temp dir");
    let one_row = dir.path().join("one-row.csv");
    std::fs::write(
        &one_row,
        "source,log_message\nModernCRM,User 123 logged in\n",
    )
    .expect("csv");
    // Seconds and peak RSS of one `logsieve classify` of `input` with `config`.
    let cold_classify = |config: &std::path::Path, input: &std::path::Path| {
        let started = Instant::now();
        let (_, rss) = run_measured(
            Command::new(&bin)
                .arg("classify")
                .arg("--config")
                .arg(config)
                .args(["--output", "/dev/null", "--input"])
                .arg(input),
        );
        (started.elapsed().as_secs_f64(), rss)
    };
    // The default config, and the same with another model, batch size or thread count (its
    // rules file named by its full path).
    let text = std::fs::read_to_string(common::repo_path("config/logsieve.toml")).expect("config");
    let rules = format!(
        "{:?}",
        common::repo_path("config/rules.toml").display().to_string()
    );
    let variant = |model: &str, batch: usize, threads: usize| {
        let edited: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("model = \"models/minilm/") {
                    format!("model = \"models/minilm/{model}\"")
                } else if l.starts_with("batch_size = ") {
                    format!("batch_size = {batch}")
                } else if l.starts_with("threads = ") {
                    format!("threads = {threads}")
                } else {
                    l.replace("\"rules.toml\"", &rules)
                }
            })
            .collect();
        let path = dir.path().join(format!("{model}-{batch}-{threads}.toml"));
        std::fs::write(&path, edited.join("\n")).expect("variant config");
        path
    };
    let configs = [
        (
            "the default config (int8)",
            common::repo_path("config/logsieve.toml"),
        ),
        ("fp32", variant("model.onnx", 32, 2)),
        ("int8, batches of 1", variant("model.int8.onnx", 1, 2)),
        ("int8, 1 thread", variant("model.int8.onnx", 32, 1)),
    ];
    println!("Cold rows: the median of interleaved rounds (`LOGSIEVE_BENCH_ROUNDS`, 3).\n");
    println!("| run | rows/s | × seed (35 rows/s) | peak RSS MiB |\n|---|--:|--:|--:|");
    let mut rates = vec![Vec::new(); configs.len()];
    let mut peaks = vec![0f64; configs.len()];
    let mut start_up = Vec::new();
    for _ in 0..common::rounds() {
        for (i, (_, config)) in configs.iter().enumerate() {
            let (seconds, rss) = cold_classify(config, &seed_csv());
            rates[i].push(2410.0 / seconds);
            peaks[i] = peaks[i].max(rss);
        }
        start_up.push(cold_classify(&configs[0].1, &one_row).0);
    }
    for (i, (name, _)) in configs.iter().enumerate() {
        let rate = median(&rates[i]);
        println!(
            "| cold process (`logsieve classify`, model load included), {name} | {rate:.0} | {:.0}× | {:.0} |",
            rate / SEED_ROWS_PER_SECOND,
            peaks[i]
        );
    }
    println!(
        "| cold process, the default config, a 1-row CSV (start-up, model load and exit) | {:.0} ms | | |",
        median(&start_up) * 1000.0
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let chain = tiers(100_000);
    let first = rt.block_on(label_rate(&chain, seed_events()));
    let warm = rt.block_on(label_rate(&chain, seed_events()));
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
