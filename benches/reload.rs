//! Config reloads, through the real agent (file source → rules → file sink):
//!
//! 1. **Reload latency**: lines flowing at ~5k/s, the rules file changed and SIGHUP sent; the
//!    time until the first record labelled by the new rule is written (10 reloads, p50/max).
//! 2. **Throughput during reloads**: a 12M-line file read at once, with no reload and with a
//!    SIGHUP every second (each one swapping in other rules), as a ratio in the same run.
//!
//! Run: `cargo bench --bench reload`. The report is Markdown, for BENCHMARKS.md.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::*;

const LINES: usize = 12_000_000;

fn rules(generation: usize) -> String {
    let mut rules = fs::read_to_string(repo_path("config/rules.toml")).unwrap();
    rules.push_str(&format!(
        "\n[[rules]]\nname = \"disk_{generation}\"\npattern = 'Disk usage on'\nlabel = \"Resource Usage\"\n"
    ));
    rules
}

fn line(i: usize) -> String {
    match i % 3 {
        0 => format!("User User{i} logged in."),
        1 => format!("Disk usage on node-{} at 91%", i % 17),
        _ => format!("worker-{} heartbeat ok", i % 5),
    }
}

/// `logsieve run --config CONFIG [extra]`, quiet.
fn start_agent(config: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .arg("run")
        .args(extra)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn write_config(dir: &Path) -> PathBuf {
    let config = format!(
        r#"data_dir = {data}
[server]
enabled = false
[[sources]]
type = "file"
name = "bench"
include = [{input}]
glob_interval_ms = 100
[tiers.regex]
rules = "rules.toml"
[[sinks]]
type = "file"
path = {out}
"#,
        data = toml_path(&dir.join("data")),
        input = toml_path(&dir.join("logs/*.log")),
        out = toml_path(&dir.join("out.jsonl")),
    );
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).unwrap();
    fs::write(dir.join("rules.toml"), rules(0)).unwrap();
    path
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "# reload bench: {} ({} cores, {}), load {}\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total(),
        load_average()
    );
    latency();
    throughput();
}

fn latency() {
    let dir = repo_path("target/bench-reload/latency");
    fresh_dir(&dir);
    fs::create_dir_all(dir.join("logs")).unwrap();
    let config = write_config(&dir);
    let log = dir.join("logs/app.log");
    fs::write(&log, "").unwrap();
    let mut agent = start_agent(&config, &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut chunk = String::new();
                for _ in 0..5 {
                    chunk.push_str(&line(i));
                    chunk.push('\n');
                    i += 1;
                }
                f.write_all(chunk.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let out = dir.join("out.jsonl");
    let mut seen = 0usize;
    let mut latencies = Vec::new();
    for generation in 1..=10 {
        fs::write(dir.join("rules.toml"), rules(generation)).unwrap();
        let marker = format!("\"rule\":\"disk_{generation}\"");
        let sent = Instant::now();
        unsafe { libc::kill(agent.id() as i32, libc::SIGHUP) };
        loop {
            let mut text = String::new();
            let mut file = fs::File::open(&out).unwrap();
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(seen as u64)).unwrap();
            file.read_to_string(&mut text).unwrap();
            if text.contains(&marker) {
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            seen += text.rfind('\n').map_or(0, |i| i + 1);
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "reload {generation} never took"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    agent.wait().unwrap();
    latencies.sort_by(f64::total_cmp);
    println!(
        "## Reload latency: SIGHUP → first record by the new rule (10 reloads, ~5k lines/s)\n"
    );
    println!("| p50 | max |\n|--:|--:|");
    println!(
        "| {:.0} ms | {:.0} ms |\n",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

fn throughput() {
    let dir = repo_path("target/bench-reload/throughput");
    println!("## Throughput: {LINES} lines read at once, median of 3\n");
    println!("| run | lines/s | × no reload | reloads |\n|---|--:|--:|--:|");
    let mut base = 0.0;
    for (name, every) in [
        ("no reload", None),
        ("SIGHUP every second", Some(Duration::from_secs(1))),
    ] {
        let mut rates = Vec::new();
        let mut reloads = 0;
        for _ in 0..3 {
            fresh_dir(&dir);
            fs::create_dir_all(dir.join("logs")).unwrap();
            let config = write_config(&dir);
            let mut text = String::with_capacity(LINES * 30);
            for i in 0..LINES {
                text.push_str(&line(i));
                text.push('\n');
            }
            fs::write(dir.join("logs/app.log"), text).unwrap();
            let started = Instant::now();
            let mut agent = start_agent(&config, &["--exit-on-eof"]);
            let mut generation = 0;
            let mut next = started + every.unwrap_or(Duration::MAX / 4);
            while agent.try_wait().unwrap().is_none() {
                if let Some(every) = every.filter(|_| Instant::now() >= next) {
                    generation += 1;
                    fs::write(dir.join("rules.toml"), rules(generation)).unwrap();
                    unsafe { libc::kill(agent.id() as i32, libc::SIGHUP) };
                    next += every;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(line_count(&dir.join("out.jsonl")), LINES, "every line out");
            rates.push(LINES as f64 / seconds);
            reloads = generation;
        }
        rates.sort_by(f64::total_cmp);
        let rate = rates[1];
        if base == 0.0 {
            base = rate;
        }
        println!(
            "| {name} | {} | {:.2}× | {reloads} |",
            thousands(rate as u64),
            rate / base
        );
    }
    println!();
}

fn line_count(path: &Path) -> usize {
    fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}
