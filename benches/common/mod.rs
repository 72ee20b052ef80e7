//! Helpers the benchmarks share: reaping a child with its peak RSS, paths, and the machine
//! facts every report starts with.
#![allow(dead_code)] // each bench uses its own subset

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

pub const BIN: &str = env!("CARGO_BIN_EXE_logsieve");

/// A loopback port nobody listens on now (for the agent's HTTP server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

/// Reaps the child with `wait4`, which also reports its peak RSS (`ru_maxrss`, KiB on Linux).
/// (`Child::wait` would reap it too, but says nothing about memory.)
pub fn wait_with_rusage(child: Child) -> (ExitStatus, u64) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits in pid_t");
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both out-pointers point to live, writable locals of the right types.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let err = io::Error::last_os_error();
        assert_eq!(
            err.kind(),
            io::ErrorKind::Interrupted,
            "wait4({pid}): {err}"
        );
    }
    let peak_rss_kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    (ExitStatus::from_raw(status), peak_rss_kib)
}

/// A memory figure of a running process from `/proc/<pid>/status`, in KiB: `VmRSS` (resident
/// now) or `VmHWM` (peak so far). `None` once the process is gone.
pub fn proc_memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Rounds of interleaved measurements: `LOGSIEVE_BENCH_ROUNDS`, 3 when unset. This VM's speed
/// drifts by ±20% over minutes; rows measured in turn, round after round, share the drift.
pub fn rounds() -> usize {
    std::env::var("LOGSIEVE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// The nearest-rank `p` quantile (0 to 1) of values sorted ascending; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A path as a TOML basic string (Rust's escapes for `"` and `\` are TOML's too).
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn fresh_dir(dir: &Path) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("remove the old run folder");
    }
    fs::create_dir_all(dir).expect("create the run folder");
}

pub fn program_exists(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
}

pub fn cpu_model() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find_map(|l| l.strip_prefix("model name"));
    let model = model
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, m)| m.trim());
    model.unwrap_or("unknown CPU").to_string()
}

pub fn mem_total() -> String {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"));
    let kib = kib.and_then(|rest| {
        rest.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()
    });
    kib.map_or("unknown".to_string(), |k| {
        format!("{:.1} GiB", k / (1024.0 * 1024.0))
    })
}

/// The 1-minute load average: anything near nproc means the numbers are not a quiet machine's.
pub fn load_average() -> String {
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .next()
        .unwrap_or("unknown")
        .to_string()
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Follows a file another process appends lines to (the agent's output).
pub struct Tail {
    file: Option<File>,
    path: PathBuf,
    partial: Vec<u8>,
}

impl Tail {
    pub fn new(path: PathBuf) -> Tail {
        Tail {
            file: None,
            path,
            partial: Vec::new(),
        }
    }

    /// Calls `each` with every complete, non-empty line written since the last poll, and the
    /// time this poll saw it.
    pub fn poll(&mut self, mut each: impl FnMut(SystemTime, &[u8])) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let before = self.partial.len();
        file.read_to_end(&mut self.partial)
            .expect("read the followed file");
        if self.partial.len() == before {
            return;
        }
        let at = SystemTime::now();
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(end + 1);
        for line in self.partial.split(|&b| b == b'\n') {
            if !line.is_empty() {
                each(at, line);
            }
        }
        self.partial = rest;
    }
}

/// `logsieve run --config <config>` (with `--exit-on-eof` when asked), its log in
/// `dir/stderr.log`, without the environment that would change its config.
pub fn spawn_agent(config: &Path, dir: &Path, exit_on_eof: bool) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg("--config").arg(config);
    if exit_on_eof {
        cmd.arg("--exit-on-eof");
    }
    cmd.env("RUST_LOG", "info")
        .env_remove("LOGSIEVE_DATA_DIR")
        .env_remove("LOGSIEVE_SERVER_ADDRESS")
        .env_remove("GROQ_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("stderr.log")).expect("create stderr.log"))
        .spawn()
        .expect("start logsieve")
}

/// Appends `line(0..total)` to the file at `path`, `rate` lines/s in ticks of 10 ms, calling
/// `each_tick` after every tick (to follow the output meanwhile).
pub fn append_at_rate(
    path: &Path,
    rate: usize,
    total: usize,
    line: impl Fn(usize) -> String,
    mut each_tick: impl FnMut(),
) {
    let mut writer = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the input to append");
    let tick = Duration::from_millis(10);
    let started = Instant::now();
    let (mut written, mut ticks) = (0, 0u32);
    while written < total {
        ticks += 1;
        // Exact for any rate: by the end of tick k, k × rate / 100 lines.
        let due = (ticks as usize * rate / 100).min(total);
        let mut chunk = String::new();
        for i in written..due {
            chunk.push_str(&line(i));
            chunk.push('\n');
        }
        writer
            .write_all(chunk.as_bytes())
            .expect("append to the input");
        written = due;
        each_tick();
        if let Some(wait) = (started + tick * ticks).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// The model assets `scripts/fetch-models.sh` puts under `models/`, with `model` (a file of
/// `models/minilm/`) as the ONNX model.
pub fn model_files(model: &str) -> logsieve::tiers::model::ModelFiles {
    logsieve::tiers::model::ModelFiles {
        onnxruntime: repo_path("models/onnxruntime/libonnxruntime.so"),
        model: repo_path("models/minilm").join(model),
        tokenizer: repo_path("models/minilm/tokenizer.json"),
        checksums: repo_path("models/SHA256SUMS"),
    }
}

/// A `[tiers.model]` section naming [`model_files`] and the shipped head by their full paths.
pub fn model_section(model: &str) -> String {
    let files = model_files(model);
    format!(
        "[tiers.model]\nonnxruntime = {}\nmodel = {}\ntokenizer = {}\nchecksums = {}\nhead = {}\n",
        toml_path(&files.onnxruntime),
        toml_path(&files.model),
        toml_path(&files.tokenizer),
        toml_path(&files.checksums),
        toml_path(&repo_path("models/head.json")),
    )
}

/// Milliseconds from `from` to `to` (0 when `to` is earlier).
pub fn ms_between(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).unwrap_or_default().as_secs_f64() * 1000.0
}

/// The values split by `first` (those where it holds, then the others), each sorted, for
/// [`percentile`].
pub fn sorted_split(values: impl Iterator<Item = (bool, f64)>) -> (Vec<f64>, Vec<f64>) {
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for (first, value) in values {
        if first {
            yes.push(value);
        } else {
            no.push(value);
        }
    }
    yes.sort_by(f64::total_cmp);
    no.sort_by(f64::total_cmp);
    (yes, no)
}

/// Waits for an agent started with `--exit-on-eof` to exit, calling `each` with its pid every
/// 5 ms meanwhile, and asserts it exited 0 (its log is in `dir`).
pub fn wait_following(mut child: Child, dir: &Path, mut each: impl FnMut(u32)) {
    while child.try_wait().expect("try_wait").is_none() {
        each(child.id());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        child.wait().expect("wait").success(),
        "agent failed; see {}",
        dir.display()
    );
}

/// Calls `poll` every 2 ms until it says done or `limit` has passed.
pub fn poll_until(limit: Duration, mut poll: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !poll() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Stops a following agent as an operator would (SIGTERM: drain, then exit) and asserts it
/// exited 0 (its log is in `dir`).
pub fn stop_agent(mut child: Child, dir: &Path) {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().expect("wait for the agent");
    assert!(status.success(), "agent failed; see {}", dir.display());
}
