//! "Nothing lost", counted: files that change under the tailer — rotated, repointed, deleted,
//! truncated, replaced, compressed — while logsieve runs and while it is stopped, many files
//! under a low open-file limit, a 50 MB line, old and broken checkpoint files, and `kill -9` at
//! random moments during a rotating stream. Every test writes numbered lines (`line(i)`) and
//! counts them in the output by number: lost lines fail it, and so do repeated ones where the
//! guarantee is exactly once (a clean stop), or more of them than the guarantee allows (a
//! crash repeats what was delivered after the last checkpoint write).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// A folder `logs/` and a config following `logs/*.log` into `out.jsonl`.
fn logs_setup(extra: &str) -> Setup {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    setup.write_config("logs/*.log", extra);
    setup
}

fn run_to_end_ok(setup: &Setup) -> String {
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    stderr
}

#[test]
fn rotation_while_the_agent_is_stopped_loses_nothing() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..1000);
    run_to_end_ok(&setup);
    // While stopped: the file gets 1000 more lines, is rotated out of the glob, and a new
    // app.log starts.
    append_lines(&log, 1000..2000);
    fs::rename(&log, setup.path("logs/app.log.1")).unwrap();
    append_lines(&log, 2000..3000);
    let stderr = run_to_end_ok(&setup);
    assert!(stderr.contains("moved while not watched"), "{stderr}");
    Tally::of(&setup.out(), 3000).assert_each_once();
}

#[test]
fn a_symlink_repointed_while_the_agent_is_stopped_loses_nothing() {
    // Kubernetes' layout: /var/log/containers/<pod>.log -> /var/log/pods/<pod>/<n>.log
    let setup = Setup::new();
    fs::create_dir_all(setup.path("containers")).unwrap();
    fs::create_dir_all(setup.path("pods/app")).unwrap();
    let link = setup.path("containers/app.log");
    append_lines(&setup.path("pods/app/0.log"), 0..500);
    std::os::unix::fs::symlink(setup.path("pods/app/0.log"), &link).unwrap();
    setup.write_config("containers/*.log", "");
    run_to_end_ok(&setup);
    append_lines(&setup.path("pods/app/0.log"), 500..1000); // written, then the container restarts
    append_lines(&setup.path("pods/app/1.log"), 1000..1500);
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(setup.path("pods/app/1.log"), &link).unwrap();
    run_to_end_ok(&setup);
    Tally::of(&setup.out(), 1500).assert_each_once();
}

#[test]
fn a_new_file_with_the_same_first_line_is_read_from_its_start() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    let header = "# app 4.2 started";
    fs::write(&log, format!("{header}\n")).unwrap();
    append_lines(&log, 0..1000);
    run_to_end_ok(&setup);
    // While stopped the file is replaced by a new one with the same first line (on ext4 the
    // new file usually gets the old one's inode, too).
    let old_inode = fs::metadata(&log).unwrap().ino();
    fs::remove_file(&log).unwrap();
    fs::write(&log, format!("{header}\n")).unwrap();
    append_lines(&log, 1000..1500);
    eprintln!(
        "inode reused: {}",
        fs::metadata(&log).unwrap().ino() == old_inode
    );
    run_to_end_ok(&setup);
    // And while it runs: replaced again.
    let agent = setup.start(&[]);
    fs::remove_file(&log).unwrap();
    fs::write(&log, format!("{header}\n")).unwrap();
    append_lines(&log, 1500..2000);
    agent.wait_until(Duration::from_secs(30), "every line", || {
        line_count(&setup.out()) >= 2000 + 3
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    let messages = records(&setup.out())
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .filter(|m| m != header)
        .collect::<Vec<_>>();
    Tally::of_messages(messages.into_iter(), 2000).assert_each_once();
}

#[test]
fn a_deleted_file_still_written_to_is_read_until_it_stops_growing() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..100);
    let agent = setup.start(&[]);
    agent.wait_until(Duration::from_secs(20), "the first lines", || {
        line_count(&setup.out()) >= 100
    });
    // The writer keeps its handle and goes on writing after the file is deleted.
    let mut writer = fs::OpenOptions::new().append(true).open(&log).unwrap();
    fs::remove_file(&log).unwrap();
    for burst in 0..10 {
        use std::io::Write;
        for i in 100 + burst * 300..100 + (burst + 1) * 300 {
            writeln!(writer, "{}", line(i)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    agent.wait_until(
        Duration::from_secs(20),
        "the lines written after deletion",
        || line_count(&setup.out()) >= 3100,
    );
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    Tally::of(&setup.out(), 3100).assert_each_once();
}

#[test]
fn truncation_below_the_checkpoint_while_stopped_reads_the_new_content() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..1000);
    run_to_end_ok(&setup);
    // Truncated and written again, shorter than what was read.
    fs::write(&log, "").unwrap();
    append_lines(&log, 1000..1200);
    let stderr = run_to_end_ok(&setup);
    assert!(stderr.contains("reading it from the start"), "{stderr}");
    // Truncated and written again, longer than what was read.
    fs::write(&log, "").unwrap();
    append_lines(&log, 1200..3000);
    run_to_end_ok(&setup);
    Tally::of(&setup.out(), 3000).assert_each_once();
}

#[test]
fn compressed_rotated_files_are_skipped_and_said_so() {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    append_lines(&setup.path("logs/app.log"), 0..100);
    append_lines(&setup.path("logs/app.log.1"), 100..200);
    let gz = Command::new("gzip")
        .arg("-k")
        .arg(setup.path("logs/app.log.1"))
        .status()
        .unwrap();
    assert!(gz.success());
    fs::rename(setup.path("logs/app.log.1"), setup.path("logs/app.log.2")).unwrap();
    setup.write_config("logs/app.log*", "");
    let stderr = run_to_end_ok(&setup);
    assert!(
        stderr.contains("skipping a gzip-compressed file") && stderr.contains("app.log.1.gz"),
        "{stderr}"
    );
    Tally::of(&setup.out(), 200).assert_each_once();
}

#[test]
fn a_thousand_files_under_a_low_open_file_limit_are_all_read() {
    const FILES: usize = 1000;
    const PER_FILE: usize = 20;
    let setup = logs_setup("");
    for f in 0..FILES {
        append_lines(
            &setup.path(&format!("logs/f{f:04}.log")),
            f * PER_FILE..(f + 1) * PER_FILE,
        );
    }
    // 128 descriptors in all: the agent may hold 64 log files open at once.
    let mut child = Command::new(BIN)
        .args(["run", "--exit-on-eof", "--config"])
        .arg(setup.path("logsieve.toml"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(setup.path("stderr.log")).unwrap())
        .with_open_file_limit(128)
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(120));
    let stderr = fs::read_to_string(setup.path("stderr.log")).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(
        stderr.contains("more files match than may be open at once"),
        "{stderr}"
    );
    Tally::of(&setup.out(), FILES * PER_FILE).assert_each_once();
}

#[test]
fn a_file_that_grows_by_one_50_mb_line_is_cut_and_memory_stays_small() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..10);
    {
        use std::io::Write;
        let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
    }
    append_lines(&log, 10..20);
    let (status, peak_mib) = run_measured(
        Command::new(BIN)
            .args(["run", "--exit-on-eof", "--config"])
            .arg(setup.path("logsieve.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(status.success());
    let all = records(&setup.out());
    assert_eq!(all.len(), 21);
    assert_eq!(all[10]["truncated"], true);
    assert_eq!(all[10]["message"].as_str().unwrap().len(), 100 * 1024);
    let numbered = all
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string());
    let tally = Tally::of_messages(numbered.filter(|m| !m.starts_with('x')), 20);
    tally.assert_each_once();
    eprintln!("peak RSS with a 50 MB line: {peak_mib:.0} MiB");
    assert!(peak_mib < 100.0, "peak RSS {peak_mib:.0} MiB");
}

#[test]
fn a_version_1_checkpoint_file_is_resumed_and_a_newer_one_is_moved_aside() {
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    append_lines(&log, 0..100);
    // What logsieve 0.1 wrote after delivering the first 40 lines.
    let delivered: usize = (0..40).map(|i| line(i).len() + 1).sum();
    let first = format!("{}\n", line(0));
    let fingerprint = xxhash_of(first.as_bytes());
    fs::create_dir_all(setup.data_dir()).unwrap();
    let checkpoint = setup.data_dir().join("test.checkpoints.json");
    fs::write(
        &checkpoint,
        format!(
            r#"{{"version":1,"files":[{{"fingerprint":"xxh3:{fingerprint:016x}","path":"{}","offset":{delivered},"seen":1}}]}}"#,
            log.display()
        ),
    )
    .unwrap();
    run_to_end_ok(&setup);
    let tally = Tally::of(&setup.out(), 100);
    assert_eq!(
        tally.missing,
        (0..40).collect::<Vec<_>>(),
        "resumed after line 39"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(written["version"], 2, "written back as version 2");

    fs::write(&checkpoint, r#"{"version":9,"files":[]}"#).unwrap();
    let stderr = run_to_end_ok(&setup);
    assert!(
        stderr.contains("written by a newer logsieve (version 9") && stderr.contains("moved it to"),
        "{stderr}"
    );
}

/// kill -9 twenty times at random moments while a writer appends and rotates (rename to
/// `app.log.<n>`, out of the glob, then a new `app.log`): nothing is lost, and what is repeated
/// is what each crash had delivered after its last checkpoint write.
#[test]
fn kill_9_at_random_moments_during_rotation_loses_nothing() {
    const TOTAL: usize = 120_000;
    const PER_FILE: usize = 8_000;
    let setup = logs_setup("");
    let log = setup.path("logs/app.log");
    fs::File::create(&log).unwrap();
    let writer = {
        let (dir, log) = (setup.path("logs"), log.clone());
        std::thread::spawn(move || {
            // ~10k lines/s, a rotation every ~0.8 s.
            for start in (0..TOTAL).step_by(1000) {
                append_lines(&log, start..start + 1000);
                if (start + 1000) % PER_FILE == 0 {
                    fs::rename(&log, dir.join(format!("app.log.{}", start / PER_FILE))).unwrap();
                    fs::File::create(&log).unwrap();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut kills = 0;
    let mut rng = 0x2545f4914f6cdd1du64;
    while kills < 20 && !writer.is_finished() {
        let agent = setup.spawn(&[]);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 450));
        agent.kill9();
        kills += 1;
    }
    // Restarted at once, as a supervisor would; the writer goes on meanwhile.
    let agent = setup.start(&[]);
    writer.join().unwrap();
    agent.wait_until(Duration::from_secs(60), "every line", || {
        Tally::of(&setup.out(), TOTAL).missing.is_empty()
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    let tally = Tally::of(&setup.out(), TOTAL);
    tally.assert_none_lost();
    let repeats: usize = tally.repeated.iter().map(|(_, n)| n - 1).sum();
    eprintln!("{kills} kills: 0 of {TOTAL} lines lost, {repeats} repeated records");
    // Each crash repeats at most what was delivered in its last checkpoint interval (200 ms,
    // ~2k lines here) and the batches in flight: far below 5k per crash.
    assert!(
        repeats <= kills * 5_000,
        "{repeats} repeated records for {kills} kills"
    );
}

/// Runs a command to its end; its exit status and peak resident memory in MiB.
fn run_measured(command: &mut Command) -> (std::process::ExitStatus, f64) {
    let child = command.spawn().unwrap();
    let pid = child.id() as i32;
    std::mem::forget(child); // reaped by wait4 below
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it and the status for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    use std::os::unix::process::ExitStatusExt;
    (
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

fn xxhash_of(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

trait OpenFileLimit {
    /// Runs the command with at most `n` open file descriptors (soft and hard limit), as
    /// `LimitNOFILE=n` or `ulimit -n n` would.
    fn with_open_file_limit(&mut self, n: u64) -> &mut Self;
}

impl OpenFileLimit for Command {
    fn with_open_file_limit(&mut self, n: u64) -> &mut Self {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            self.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}
