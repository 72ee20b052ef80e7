//! End-to-end throughput of the regex path: `logsieve run --exit-on-eof` reads a generated log
//! file to its end, labels every line with the seed rules (`config/rules.toml`) and writes JSON
//! lines to a file sink. In the same run, on the same page-cached file, it is compared with two
//! baselines: `cat FILE > /dev/null` (the cost of reading) and `rg -c -e RULE... FILE` (the same
//! eight regexes, with no labelling and no output).
//!
//! Rows: cat, rg, logsieve pinned to one core (`taskset -c 0`; the runtime's threads and the
//! reader thread share it), logsieve on every core (these two: the median of interleaved
//! rounds, `LOGSIEVE_BENCH_ROUNDS`, 3, with the highest peak RSS of the rounds), logsieve with
//! batches of 512 lines (the default before 2026-11-30 evening), logsieve pinned on an input a
//! quarter the size, to check that peak memory stays flat as the input grows, and two such runs
//! at once on cores 0 and 1: what two cores give when nothing is shared, the ceiling for the
//! all-core / 1-core ratio. Wall time is the process's, startup included; peak RSS is the
//! child's `ru_maxrss` from `wait4`. Every logsieve run must write exactly one record per input
//! line, or the bench fails.
//!
//! Run on a quiet machine: `scripts/bench.sh` (installs ripgrep if missing), or
//! `LOGSIEVE_BENCH_MB=1024 cargo bench --bench pipeline`. The input size is `LOGSIEVE_BENCH_MB`
//! MiB (default 1024); generated inputs are cached in `target/bench-data/`. The report is
//! Markdown, for BENCHMARKS.md.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::*;
const MIB: u64 = 1024 * 1024;
const DEFAULT_MB: u64 = 1024;
/// `[batch] max_lines`: the default, and the smaller batches of one more row (the default
/// until 2026-11-30 evening).
const BATCH: usize = 2048;
const SMALL_BATCH: usize = 512;
/// Bump when the generator changes, so cached inputs are made again.
const GENERATOR_VERSION: u32 = 1;

fn main() {
    let mb = bench_mb();
    let data_dir = target_dir().join("bench-data");
    fs::create_dir_all(&data_dir).expect("create target/bench-data");
    let run_dir = data_dir.join("run");
    let full = Input::cached(&data_dir, mb);
    let quarter = Input::cached(&data_dir, (mb / 4).max(1));
    let patterns = rule_patterns();
    let pinned = program_exists("taskset");
    let rg = program_exists("rg");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    warm_up(&full.path);
    let cat = Row::new(
        "cat > /dev/null",
        &full,
        measure(&mut cat_command(&full.path), ""),
    );
    let rg_run = rg.then(|| run_rg(&full, &patterns));
    // The output goes to tmpfs where there is one, so that the figures are logsieve's and not
    // the disk's: 1 GiB in is ~2.5 GiB of JSON out, and writing that back to disk throttles the
    // writer. One more row writes to the disk, for comparison.
    let shm = Path::new("/dev/shm");
    let fast_dir = if shm.is_dir() {
        shm.join("logsieve-bench-run")
    } else {
        run_dir.clone()
    };
    // 1 core and every core, in interleaved rounds: this VM's speed drifts over minutes, and
    // their ratio is a goal (issue 12). Each row is its median run.
    let rounds = rounds();
    let (mut ones, mut alls) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        if pinned {
            ones.push(run_logsieve(
                "logsieve, 1 core",
                &full,
                Some(0),
                &fast_dir,
                BATCH,
            ));
        }
        alls.push(run_logsieve(
            &format!("logsieve, {cores} cores"),
            &full,
            None,
            &fast_dir,
            BATCH,
        ));
    }
    let per_round: Vec<f64> = ones
        .iter()
        .zip(&alls)
        .map(|(one, all)| all.mib_per_sec() / one.mib_per_sec())
        .collect();
    let one = pinned.then(|| median_row(ones));
    let all = median_row(alls);
    let all_small_batches = run_logsieve(
        &format!("logsieve, {cores} cores, batches of {SMALL_BATCH}"),
        &full,
        None,
        &fast_dir,
        SMALL_BATCH,
    );
    let small = pinned.then(|| {
        warm_up(&quarter.path);
        run_logsieve(
            "logsieve, 1 core, ¼ input",
            &quarter,
            Some(0),
            &fast_dir,
            BATCH,
        )
    });
    // What two cores give when nothing is shared: two independent runs at once, each pinned
    // to a core of its own. Against the row above it is the machine's own 2-core scaling, the
    // ceiling for the pipeline's 2 cores / 1 core.
    let side_by_side = (pinned && cores >= 2).then(|| {
        let name = "logsieve, 1 core, ¼ input, two at once (cores 0 and 1; the slower)";
        let (a, b) = std::thread::scope(|s| {
            let quarter = &quarter;
            let on = |core: usize| {
                let dir = fast_dir.join(format!("core-{core}"));
                s.spawn(move || run_logsieve(name, quarter, Some(core), &dir, BATCH))
            };
            let (a, b) = (on(0), on(1));
            (
                a.join().expect("core 0's run"),
                b.join().expect("core 1's run"),
            )
        });
        if a.measured.wall >= b.measured.wall {
            a
        } else {
            b
        }
    });
    let disk = (pinned && fast_dir != run_dir).then(|| {
        warm_up(&full.path);
        run_logsieve(
            "logsieve, 1 core, output on disk",
            &full,
            Some(0),
            &run_dir,
            BATCH,
        )
    });

    let report = Report {
        mb,
        cores,
        full: &full,
        patterns: &patterns,
        rg_matched: rg_run.as_ref().map(|(_, matched)| *matched),
        cat,
        rg: rg_run.map(|(row, _)| row),
        one,
        all,
        all_small_batches,
        small,
        side_by_side,
        disk,
        out_dir: fast_dir,
        rounds,
        per_round,
    };
    report.print();
    if !rg {
        println!(
            "\nrg (ripgrep) is not installed: its row was skipped (scripts/bench.sh installs it)."
        );
    }
    if !pinned {
        println!("\ntaskset is not installed: the 1-core rows were skipped.");
    }
}

// ----- what is run and measured -----

/// Wall time and peak resident memory of one finished child process.
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
}

/// One table row: a measurement on an input.
struct Row {
    name: String,
    bytes: u64,
    lines: u64,
    measured: Measured,
}

impl Row {
    fn new(name: &str, input: &Input, measured: Measured) -> Row {
        Row {
            name: name.to_string(),
            bytes: input.bytes,
            lines: input.lines,
            measured,
        }
    }

    fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / MIB as f64 / self.measured.wall.as_secs_f64()
    }

    fn lines_per_sec(&self) -> f64 {
        self.lines as f64 / self.measured.wall.as_secs_f64()
    }

    fn peak_rss_mib(&self) -> f64 {
        self.measured.peak_rss_kib as f64 / 1024.0
    }
}

/// Runs `cmd` to completion and measures it; panics (with `hint`) if it fails.
/// Whatever the child writes to a piped stdout is appended to `stdout`.
fn measure_capturing(cmd: &mut Command, hint: &str, stdout: &mut String) -> Measured {
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(stdout).expect("read the child's stdout");
    }
    let (status, peak_rss_kib) = wait_with_rusage(child);
    let wall = start.elapsed();
    assert!(status.success(), "{cmd:?} failed ({status}) {hint}");
    Measured { wall, peak_rss_kib }
}

fn measure(cmd: &mut Command, hint: &str) -> Measured {
    measure_capturing(cmd, hint, &mut String::new())
}

fn cat_command(path: &Path) -> Command {
    let mut cmd = Command::new("cat");
    cmd.arg(path).stdout(Stdio::null());
    cmd
}

/// Reads the file once, untimed, so that the measured runs find it in the page cache.
fn warm_up(path: &Path) {
    measure(&mut cat_command(path), "(warm-up)");
}

fn rg_command(path: &Path, patterns: &[String]) -> Command {
    let mut cmd = Command::new("rg");
    cmd.arg("-c");
    for pattern in patterns {
        cmd.arg("-e").arg(pattern);
    }
    cmd.arg(path).stdout(Stdio::piped());
    cmd
}

/// The rg row, and how many lines rg found matching a rule.
fn run_rg(input: &Input, patterns: &[String]) -> (Row, u64) {
    let mut out = String::new();
    let measured = measure_capturing(&mut rg_command(&input.path, patterns), "", &mut out);
    let matched = out.trim().parse().expect("rg -c prints a count");
    (Row::new("rg -c (8 rules)", input, measured), matched)
}

/// logsieve, pinned to `core` (`taskset -c`) or free on every core.
fn logsieve_command(config: &Path, core: Option<usize>) -> Command {
    let mut cmd = if let Some(core) = core {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", &core.to_string(), BIN]);
        taskset
    } else {
        Command::new(BIN)
    };
    cmd.arg("run")
        .arg("--config")
        .arg(config)
        .arg("--exit-on-eof")
        .env("RUST_LOG", "info")
        .env_remove("LOGSIEVE_DATA_DIR")
        .env_remove("LOGSIEVE_SERVER_ADDRESS")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Runs logsieve over the whole input in a fresh `run_dir`, checks that it wrote one record
/// per input line, and removes its output. On failure `run_dir` is kept for inspection.
fn run_logsieve(
    name: &str,
    input: &Input,
    core: Option<usize>,
    run_dir: &Path,
    batch: usize,
) -> Row {
    fresh_dir(run_dir);
    let config = write_config(run_dir, &input.path, batch);
    let out = run_dir.join("out.jsonl");
    let log = run_dir.join("logsieve.log");
    let mut cmd = logsieve_command(&config, core);
    cmd.stderr(File::create(&log).expect("create logsieve.log"));
    let measured = measure(&mut cmd, &format!("see {}", log.display()));
    let written = count_lines(&out);
    assert_eq!(
        written,
        input.lines,
        "{name}: logsieve wrote {written} records for {} input lines (run folder kept: {})",
        input.lines,
        run_dir.display()
    );
    fs::remove_dir_all(run_dir).expect("remove the run folder");
    Row::new(name, input, measured)
}

/// The bench config: one file source on `input`, the seed rules, one file sink.
fn write_config(dir: &Path, input: &Path, batch: usize) -> PathBuf {
    let port = free_port();
    let config = format!(
        r#"data_dir = {data}
[server]
address = "127.0.0.1:{port}"
[[sources]]
type = "file"
name = "bench"
include = [{input}]
read_from = "beginning"
[batch]
max_lines = {batch}
max_wait_ms = 20
[[tiers.route]]
source = "LegacyCRM"
to = "llm"
[tiers.regex]
rules = {rules}
[[sinks]]
type = "file"
path = {out}
"#,
        data = toml_path(&dir.join("data")),
        input = toml_path(input),
        rules = toml_path(&repo_path("config/rules.toml")),
        out = toml_path(&dir.join("out.jsonl")),
    );
    let path = dir.join("logsieve.toml");
    fs::write(&path, config).expect("write the bench config");
    path
}

/// The seed rules' patterns, in order, from `config/rules.toml`.
fn rule_patterns() -> Vec<String> {
    let path = repo_path("config/rules.toml");
    let text = fs::read_to_string(&path).expect("read config/rules.toml");
    let doc: toml::Table = text.parse().expect("config/rules.toml is valid TOML");
    let rules = doc.get("rules").and_then(|r| r.as_array());
    rules
        .expect("config/rules.toml has [[rules]]")
        .iter()
        .map(|rule| {
            let pattern = rule.get("pattern").and_then(|p| p.as_str());
            pattern.expect("every rule has a pattern").to_string()
        })
        .collect()
}

// ----- inputs -----

/// A generated log file and its size.
struct Input {
    path: PathBuf,
    bytes: u64,
    lines: u64,
}

impl Input {
    /// The `mb` MiB input in `dir`, generated on first use (to a temporary name, then renamed, so
    /// an interrupted generation leaves nothing behind that looks finished).
    fn cached(dir: &Path, mb: u64) -> Input {
        let path = dir.join(format!("logs-v{GENERATOR_VERSION}-{mb}MiB.log"));
        if !path.exists() {
            eprintln!("generating {} ...", path.display());
            let tmp = path.with_extension("log.partial");
            generate(&tmp, mb * MIB).expect("write the generated input");
            fs::rename(&tmp, &path).expect("rename the generated input");
        }
        let bytes = fs::metadata(&path).expect("stat the input").len();
        let lines = count_lines(&path);
        Input { path, bytes, lines }
    }
}

/// Writes whole lines until at least `bytes` were written.
fn generate(path: &Path, bytes: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut logs = LogGen::new(0x5eed_1095_1e7e_2025);
    let mut written = 0;
    while written < bytes {
        let line = logs.line();
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()
}

fn count_lines(path: &Path) -> u64 {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0;
    loop {
        let n = file.read(&mut buf).expect("read while counting lines");
        if n == 0 {
            return lines;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// xorshift64*: small, fast and deterministic, so every run generates the same input.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n` for test data.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const TENANT: &str = "54fadb412c4e40cdbaed9335e4c35a9e";
const USER_ID: &str = "113d3a99c3da401fbd62cc2caa5b96d2";
/// 2025-06-01T00:00:00Z, in days since 1970-01-01.
const START_DAY: u64 = 20_240;

/// Realistic log lines: OpenStack API and resource lines, app errors, security alerts, lines the
/// seed rules match (~15%) and JSON lines, some from the `LegacyCRM` source that skips the rules.
/// About 120 bytes a line on average.
struct LogGen {
    rng: XorShift,
    clock_ms: u64,
}

impl LogGen {
    fn new(seed: u64) -> LogGen {
        LogGen {
            rng: XorShift(seed),
            clock_ms: 0,
        }
    }

    /// The next line, newline included.
    fn line(&mut self) -> String {
        self.clock_ms += self.rng.below(3);
        let ts = self.timestamp();
        match self.rng.below(100) {
            0..=11 => format!("{ts} INFO {}\n", self.http()),
            12..=14 => format!("{ts} INFO {}\n", self.claims()),
            15..=26 => format!("{ts} WARN {}\n", self.resource()),
            27..=56 => format!("{ts} ERROR {}\n", self.app_error()),
            57..=76 => format!("{ts} WARN {}\n", self.security()),
            77..=91 => format!("{ts} INFO {}\n", self.rule_match()),
            _ => format!("{}\n", self.json(&ts)),
        }
    }

    fn timestamp(&self) -> String {
        let (secs, ms) = (self.clock_ms / 1000, self.clock_ms % 1000);
        let (y, m, d) = civil_from_days(START_DAY + secs / 86_400);
        let (h, min, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        format!("{y}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.rng.next(), self.rng.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        )
    }

    fn ip(&mut self) -> String {
        let r = self.rng.next();
        format!(
            "{}.{}.{}.{}",
            10 + r % 190,
            r >> 8 & 0xff,
            r >> 16 & 0xff,
            r >> 24 & 0xff
        )
    }

    fn http(&mut self) -> String {
        let req = self.uuid();
        let method = self.rng.pick(&["GET", "GET", "GET", "POST", "DELETE"]);
        let path = self
            .rng
            .pick(&["servers/detail", "servers", "flavors/detail", "os-keypairs"]);
        let status = self
            .rng
            .pick(&["200", "200", "200", "202", "204", "404", "500"]);
        format!(
            "nova.osapi_compute.wsgi.server [req-{req} {USER_ID} {TENANT} - - -] 10.11.10.{host} \
             \"{method} /v2/{TENANT}/{path} HTTP/1.1\" status: {status} len: {len} time: 0.{t:07}",
            host = 1 + self.rng.below(20),
            len = 200 + self.rng.below(2000),
            t = self.rng.below(10_000_000),
        )
    }

    fn claims(&mut self) -> String {
        let (req, instance) = (self.uuid(), self.uuid());
        format!(
            "nova.compute.claims [req-{req} {USER_ID} {TENANT} - - -] [instance: {instance}] \
             Total memory: 64172 MB, used: {}.00 MB",
            512 * (1 + self.rng.below(64))
        )
    }

    fn resource(&mut self) -> String {
        let (pct, node) = (50 + self.rng.below(50), self.rng.below(40));
        match self.rng.below(3) {
            0 => format!("Memory usage at {pct}% on node worker-{node}"),
            1 => format!("CPU usage at {pct}% on host app-{node} (load average 7.{node})"),
            _ => format!("Disk usage at {pct}% on volume /var/lib/data{node}"),
        }
    }

    fn app_error(&mut self) -> String {
        let n = self.rng.below(10_000);
        match self.rng.below(6) {
            0 => format!(
                "Payment gateway unreachable: connection reset by peer (attempt {}/5)",
                n % 5 + 1
            ),
            1 => format!("Shard {} replication task ended in failure", n % 64),
            2 => "Email service experiencing issues with sending".to_string(),
            3 => format!("Critical system unit error: unit ID Component{}", n % 100),
            4 => format!(
                "Database connection pool exhausted after {}s (pool=db-main, size=20)",
                n % 60
            ),
            _ => format!("Failed to process order {n}: upstream timeout after 3000ms"),
        }
    }

    fn security(&mut self) -> String {
        let (user, ip) = (self.rng.below(10_000), self.ip());
        match self.rng.below(4) {
            0 => format!("Multiple failed login attempts detected for user {user} from {ip}"),
            1 => format!("IP {ip} blocked due to potential attack"),
            2 => format!("Admin access escalation detected for user {user}"),
            _ => "Unauthorized access to data was attempted".to_string(),
        }
    }

    /// A message one of the eight seed rules matches.
    fn rule_match(&mut self) -> String {
        let (n, user) = (self.rng.below(10_000), self.rng.below(1000));
        match self.rng.below(8) {
            0 => format!("User User{user} logged {}.", self.rng.pick(&["in", "out"])),
            1 => format!(
                "Backup {} at {}.",
                self.rng.pick(&["started", "ended"]),
                self.timestamp()
            ),
            2 => "Backup completed successfully.".to_string(),
            3 => format!("System updated to version {}.{}.{}.", n % 7, n % 13, n % 31),
            4 => format!("File data_{n}.csv uploaded successfully by user User{user}."),
            5 => "Disk cleanup completed successfully.".to_string(),
            6 => format!("System reboot initiated by user User{user}."),
            _ => format!("Account with ID {n} created by User{user}."),
        }
    }

    fn json(&mut self, ts: &str) -> String {
        let n = self.rng.below(10_000);
        let (source, message) = match self.rng.below(4) {
            0 => (
                "LegacyCRM",
                format!(
                    "Case escalation for ticket ID {n} failed because the assigned support agent \
                     is no longer active."
                ),
            ),
            1 => (
                "LegacyCRM",
                "The 'BulkEmailSender' feature is no longer supported. Use 'EmailCampaignManager' \
                 for improved functionality."
                    .to_string(),
            ),
            2 => (
                "BillingSystem",
                format!(
                    "Invoice generation process aborted for order ID {n} due to invalid tax \
                     calculation module."
                ),
            ),
            _ => (
                "AnalyticsEngine",
                format!("Database replica lag exceeded {}s; failing over", n % 90),
            ),
        };
        format!(
            r#"{{"ts":"{ts}","source":"{source}","message":"{message}","pod":"pod-{:04x}"}}"#,
            n
        )
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

// ----- the report -----

struct Report<'a> {
    mb: u64,
    cores: usize,
    full: &'a Input,
    patterns: &'a [String],
    rg_matched: Option<u64>,
    cat: Row,
    rg: Option<Row>,
    one: Option<Row>,
    all: Row,
    /// All cores, `[batch] max_lines = SMALL_BATCH`.
    all_small_batches: Row,
    small: Option<Row>,
    /// Two ¼-input 1-core runs at once, on cores 0 and 1: the slower of them.
    side_by_side: Option<Row>,
    /// The 1-core run with its output on disk rather than tmpfs.
    disk: Option<Row>,
    out_dir: PathBuf,
    /// Rounds of the 1-core and all-core runs, and each round's all-core / 1-core ratio.
    rounds: usize,
    per_round: Vec<f64>,
}

impl Report<'_> {
    fn print(&self) {
        self.print_setup();
        self.print_table();
        self.print_ratios();
        self.print_memory();
    }

    fn print_setup(&self) {
        let full = self.full;
        println!("\n## Regex path: end-to-end throughput\n");
        println!(
            "- Machine: {}, nproc {}, {} RAM; load average {} at start",
            cpu_model(),
            self.cores,
            mem_total(),
            load_average()
        );
        println!(
            "- Command: `LOGSIEVE_BENCH_MB={} cargo bench --bench pipeline` \
             (or `scripts/bench.sh`)",
            self.mb
        );
        println!(
            "- Input: `{}`, {:.0} MiB, {} lines, {:.1} bytes/line{}",
            shown(&full.path),
            full.bytes as f64 / MIB as f64,
            thousands(full.lines),
            full.bytes as f64 / full.lines as f64,
            self.rg_matched.map_or(String::new(), |m| format!(
                ", {:.1}% match a rule",
                100.0 * m as f64 / full.lines as f64
            )),
        );
        println!(
            "- logsieve: `[taskset -c 0] {} run --config CONFIG --exit-on-eof` \
             (file source → route + regex tiers, {} seed rules → file sink in `{}`; \
             batch {BATCH} lines / 20 ms, or {SMALL_BATCH} where said)",
            shown(Path::new(BIN)),
            self.patterns.len(),
            self.out_dir.display()
        );
        println!(
            "- rg: `{}`",
            shell_line(&rg_command(&full.path, self.patterns))
        );
        println!(
            "- Per process: wall time (startup included) and peak RSS (`ru_maxrss`); \
             the input is in the page cache. rg memory-maps the file, so its RSS counts the \
             pages it touched.\n"
        );
    }

    fn print_table(&self) {
        println!("| run | MiB/s | lines/s | wall s | peak RSS MiB |");
        println!("|---|--:|--:|--:|--:|");
        let rows = [
            Some(&self.cat),
            self.rg.as_ref(),
            self.one.as_ref(),
            Some(&self.all),
            Some(&self.all_small_batches),
            self.small.as_ref(),
            self.side_by_side.as_ref(),
            self.disk.as_ref(),
        ];
        for row in rows.into_iter().flatten() {
            println!(
                "| {} | {:.1} | {} | {:.3} | {:.1} |",
                row.name,
                row.mib_per_sec(),
                thousands(row.lines_per_sec() as u64),
                row.measured.wall.as_secs_f64(),
                row.peak_rss_mib()
            );
        }
    }

    fn print_ratios(&self) {
        let runs = [
            self.one.as_ref(),
            Some(&self.all),
            Some(&self.all_small_batches),
        ];
        let runs: Vec<&Row> = runs.into_iter().flatten().collect();
        let header: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        println!("\n| throughput ratio | {} |", header.join(" | "));
        println!("|---|{}", "--:|".repeat(runs.len()));
        let baselines = [Some(&self.cat), self.rg.as_ref()];
        for base in baselines.into_iter().flatten() {
            let ratios: Vec<String> = runs
                .iter()
                .map(|r| format!("{:.3}×", r.mib_per_sec() / base.mib_per_sec()))
                .collect();
            println!("| logsieve / {} | {} |", base.name, ratios.join(" | "));
        }
        if let Some(one) = &self.one {
            let each: Vec<String> = self.per_round.iter().map(|r| format!("{r:.2}×")).collect();
            println!(
                "\n{} / 1 core: **{:.2}×** (medians of {} interleaved rounds; each round: {})",
                self.all.name,
                self.all.mib_per_sec() / one.mib_per_sec(),
                self.rounds,
                each.join(", ")
            );
        }
        if let (Some(alone), Some(two)) = (&self.small, &self.side_by_side) {
            println!(
                "Two 1-core runs at once, each on a core of its own: each at **{:.2}×** one \
                 alone (¼ input), so this machine's two cores give {:.2}× one when nothing is \
                 shared: the ceiling for the line above.",
                two.mib_per_sec() / alone.mib_per_sec(),
                2.0 * two.mib_per_sec() / alone.mib_per_sec()
            );
        }
    }

    fn print_memory(&self) {
        let (Some(small), Some(one)) = (&self.small, &self.one) else {
            return;
        };
        println!(
            "\n| peak RSS, logsieve 1 core | {:.0} MiB input | {:.0} MiB input |",
            small.bytes as f64 / MIB as f64,
            one.bytes as f64 / MIB as f64
        );
        println!("|---|--:|--:|");
        println!(
            "| MiB | {:.1} | {:.1} |",
            small.peak_rss_mib(),
            one.peak_rss_mib()
        );
    }
}

// ----- small helpers -----

/// The run of median wall time, named for the rounds and carrying the highest peak RSS of
/// them all.
fn median_row(mut rows: Vec<Row>) -> Row {
    let n = rows.len();
    let peak = rows
        .iter()
        .map(|r| r.measured.peak_rss_kib)
        .max()
        .unwrap_or(0);
    rows.sort_by_key(|r| r.measured.wall);
    let mut row = rows.swap_remove(n / 2);
    row.measured.peak_rss_kib = peak;
    if n > 1 {
        row.name = format!("{} (median of {n})", row.name);
    }
    row
}

fn bench_mb() -> u64 {
    match std::env::var("LOGSIEVE_BENCH_MB") {
        Ok(v) => v.parse().ok().filter(|&mb| mb > 0).unwrap_or_else(|| {
            panic!("LOGSIEVE_BENCH_MB={v:?}: expected a positive number of MiB")
        }),
        Err(_) => DEFAULT_MB,
    }
}

/// Cargo's target folder: the binary is `<target>/<profile>/logsieve`.
fn target_dir() -> PathBuf {
    let bin = Path::new(BIN);
    let target = bin.parent().and_then(Path::parent);
    target
        .expect("the binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// A path relative to the repository when it is inside it.
fn shown(path: &Path) -> String {
    let rel = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path);
    rel.display().to_string()
}

/// A command as it would be typed in a shell, arguments single-quoted where needed.
fn shell_line(cmd: &Command) -> String {
    let quote = |s: &str| {
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let program = quote(&cmd.get_program().to_string_lossy());
    let args = cmd
        .get_args()
        .map(|a| shown(Path::new(a)))
        .map(|a| quote(&a));
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}
