//! "Nothing lost" when the sink cannot take the lines: a full disk (the sink's folder on a
//! small tmpfs, in a mount namespace of the agent's own: `unshare -m`), a read-only folder, and
//! a reader that stops reading standard output for over a minute. In each: the agent keeps
//! running, holds its checkpoints back, says so in `/ready`, a metric and its log, keeps its
//! memory bounded, and delivers every line once the sink can write again.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// An agent started inside a mount namespace of its own, where `sink/` is a fresh tmpfs set
/// up by `prepare` (shell commands run before the agent, with `$SINK` the folder).
struct Namespaced {
    child: Child,
    setup: Setup,
}

impl Namespaced {
    fn start(setup: Setup, prepare: &str) -> Namespaced {
        let sink = setup.path("sink");
        let script = format!(
            "set -e; SINK='{}'; {prepare}; exec '{BIN}' run --config '{}'",
            sink.display(),
            setup.path("logsieve.toml").display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(setup.path("stderr.log")).unwrap())
            .spawn()
            .expect("unshare (util-linux)");
        Namespaced { child, setup }
    }

    /// A path inside the agent's mount namespace, as this process can reach it.
    fn inside(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.child.id()))
            .join(path.strip_prefix("/").unwrap())
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.setup.port)
    }

    fn metric(&self, series: &str) -> f64 {
        let text = reqwest::blocking::get(self.url("/metrics"))
            .and_then(|r| r.text())
            .unwrap_or_default();
        metric_value(&text, series)
    }

    fn ready(&self) -> (u16, String) {
        match reqwest::blocking::get(self.url("/ready")) {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.setup.path("stderr.log")).unwrap_or_default()
    }

    fn wait_until(&self, what: &str, done: impl FnMut() -> bool) {
        if !wait_for(Duration::from_secs(60), done) {
            panic!(
                "timed out waiting for {what}; the agent's log:\n{}",
                self.log()
            );
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait_timeout(&mut self.child, Duration::from_secs(60))
    }
}

/// `logs/*.log` holding `total` numbered lines, into `sink/out.jsonl`.
fn sink_setup(total: usize) -> Setup {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    fs::create_dir_all(setup.path("sink")).unwrap();
    append_lines(&setup.path("logs/app.log"), 0..total);
    let config = setup.write_config("logs/*.log", "");
    let text = fs::read_to_string(&config).unwrap().replace(
        &setup.out().display().to_string(),
        &setup.path("sink/out.jsonl").display().to_string(),
    );
    fs::write(&config, text).unwrap();
    setup
}

#[test]
fn a_full_disk_holds_the_lines_back_and_delivers_them_once_space_is_freed() {
    const TOTAL: usize = 5000; // ~1.3 MB of records
    let setup = sink_setup(TOTAL);
    let agent = Namespaced::start(
        setup,
        "mount -t tmpfs -o size=2m tmpfs \"$SINK\"; dd if=/dev/zero of=\"$SINK/filler\" bs=1024 count=1900 status=none",
    );
    let sink = agent.setup.path("sink/out.jsonl");
    let errors =
        "logsieve_sink_errors_total{sink=\"file:".to_string() + &sink.display().to_string() + "\"}";
    agent.wait_until("failed writes", || agent.metric(&errors) >= 2.0);
    let (status, why) = agent.ready();
    assert_eq!(status, 503, "not ready while the disk is full: {why}");
    assert!(why.contains("cannot write"), "{why}");
    assert!(agent.log().contains("No space left on device"));
    let written = line_count(&agent.inside(&sink));
    assert!(
        written < TOTAL,
        "the disk filled up after {written} records"
    );
    let checkpoint = agent.setup.checkpoint_offsets();
    let delivered_bytes: usize = (0..written).map(|i| line(i).len() + 1).sum();
    assert!(
        checkpoint
            .iter()
            .all(|(_, offset)| *offset as usize <= delivered_bytes),
        "the checkpoint {checkpoint:?} is not past what was written ({delivered_bytes} bytes)"
    );

    fs::remove_file(agent.inside(&agent.setup.path("sink/filler"))).unwrap();
    agent.wait_until("every line once space is freed", || {
        line_count(&agent.inside(&sink)) >= TOTAL
    });
    agent.wait_until("ready again", || agent.ready().0 == 200);
    Tally::of(&agent.inside(&sink), TOTAL).assert_each_once();
    assert!(agent.terminate().success());
}

#[test]
fn a_read_only_folder_holds_the_lines_back_until_it_is_writable() {
    const TOTAL: usize = 2000;
    let setup = sink_setup(TOTAL);
    let agent = Namespaced::start(setup, "mount -t tmpfs -o ro,size=4m tmpfs \"$SINK\"");
    let sink = agent.setup.path("sink/out.jsonl");
    agent.wait_until("a refused write", || {
        agent.log().contains("Read-only file system")
    });
    assert_eq!(agent.ready().0, 503);
    let remount = Command::new("nsenter")
        .args([
            "-t",
            &agent.child.id().to_string(),
            "-m",
            "mount",
            "-o",
            "remount,rw",
        ])
        .arg(agent.setup.path("sink"))
        .status()
        .unwrap();
    assert!(remount.success());
    agent.wait_until("every line", || line_count(&agent.inside(&sink)) >= TOTAL);
    Tally::of(&agent.inside(&sink), TOTAL).assert_each_once();
    assert!(agent.terminate().success());
}

/// Standard output into a pipe nobody reads for 65 s: the sources stop reading, memory stays
/// bounded, `/ready` says why after a minute, `/health` answers 503 through a SIGTERM's drain,
/// and every line arrives once the reader reads again.
#[test]
fn a_stalled_stdout_reader_holds_the_stream_without_losing_or_growing() {
    const TOTAL: usize = 400_000; // ~30 MB: more than every queue holds
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    append_lines(&setup.path("logs/app.log"), 0..TOTAL);
    let config = setup.write_config("logs/*.log", "");
    let text = fs::read_to_string(&config).unwrap().replace(
        &format!("type = \"file\"\npath = \"{}\"", setup.out().display()),
        "type = \"stdout\"",
    );
    fs::write(&config, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(fs::File::create(setup.path("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", setup.port);
    let get = |p: &str| {
        reqwest::blocking::get(url(p))
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut peak = 0f64;
    while started.elapsed() < Duration::from_secs(65) {
        peak = peak.max(peak_rss_mib(pid));
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = fs::read_to_string(setup.path("stderr.log")).unwrap();
    assert!(log.contains("a write has not finished for 60 s"), "{log}");
    let ready = reqwest::blocking::get(url("/ready")).unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().unwrap().contains("has not finished a write"));
    let read_lines = reqwest::blocking::get(url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let read = metric_value(&read_lines, "logsieve_source_lines_total{source=\"test\"}");
    assert!(
        read < TOTAL as f64,
        "the source stopped reading ({read} of {TOTAL})"
    );

    // SIGTERM during the stall: the drain waits for the sink, /health says 503 meanwhile.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    wait_until(Duration::from_secs(10), "/health 503", || {
        get("/health") == 503
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    let log = fs::read_to_string(setup.path("stderr.log")).unwrap();
    assert!(status.success(), "{log}");
    // What was not read before the SIGTERM is read after a restart, from the checkpoint.
    let rest = Command::new(BIN)
        .args(["run", "--exit-on-eof", "--config"])
        .arg(&config)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(rest.status.success());
    out.extend_from_slice(&rest.stdout);
    fs::write(setup.out(), &out).unwrap();
    Tally::of(&setup.out(), TOTAL).assert_each_once();
    eprintln!("peak RSS while stalled: {peak:.0} MiB");
    assert!(
        peak < 150.0,
        "peak RSS {peak:.0} MiB while the sink stalled"
    );
}
