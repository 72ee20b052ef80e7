//! The file source end to end, through the real binary: rotation, restarts after SIGTERM and
//! `kill -9`, and bad input (invalid UTF-8, a 1 MB line, an empty file, a file deleted while
//! being read, a corrupt checkpoint file).

mod common;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use common::*;

fn append(path: &Path) -> BufWriter<File> {
    BufWriter::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

fn assert_each_exactly_once(counts: &HashMap<String, usize>, total: usize) {
    let missing: Vec<usize> = (0..total)
        .filter(|i| !counts.contains_key(&line(*i)))
        .collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} lines missing, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        repeated.is_empty(),
        "{} lines repeated, e.g. {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(counts.len(), total);
}

#[test]
fn rotation_by_rename_and_copytruncate_delivers_every_line_exactly_once() {
    const TOTAL: usize = 200_000;
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let log = setup.path("logs/app.log");
    File::create(&log).unwrap();
    setup.write_config("logs/app.log*", "");
    let agent = setup.start(&[]);

    // 5 renames and 3 copytruncates, spread over the stream.
    let rotations: HashMap<usize, (&str, usize)> = [
        (20_000, ("rename", 1)),
        (40_000, ("copytruncate", 2)),
        (60_000, ("rename", 3)),
        (80_000, ("copytruncate", 4)),
        (100_000, ("rename", 5)),
        (120_000, ("copytruncate", 6)),
        (140_000, ("rename", 7)),
        (160_000, ("rename", 8)),
    ]
    .into_iter()
    .collect();
    let mut writer = append(&log);
    for i in 0..TOTAL {
        writeln!(writer, "{}", line(i)).unwrap();
        if i % 1000 == 999 {
            writer.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some((kind, n)) = rotations.get(&(i + 1)) {
            writer.flush().unwrap();
            let rotated = setup.path(&format!("logs/app.log.{n}"));
            if *kind == "rename" {
                drop(writer);
                fs::rename(&log, &rotated).unwrap();
                writer = append(&log);
            } else {
                fs::copy(&log, &rotated).unwrap();
                writer.get_ref().set_len(0).unwrap();
            }
        }
    }
    writer.flush().unwrap();

    agent.wait_until(Duration::from_secs(120), "every line in the output", || {
        line_count(&setup.out()) >= TOTAL
    });
    std::thread::sleep(Duration::from_millis(1500)); // room for a late duplicate to show up
    let metrics = agent.metrics();
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "exit {status:?}\n{stderr}");
    assert_each_exactly_once(&message_counts(&setup.out()), TOTAL);
    assert!(metric_value(&metrics, "logsieve_file_truncations_total{source=\"test\"}") >= 3.0);
    assert!(metric_value(&metrics, "logsieve_file_rotations_total{source=\"test\"}") >= 5.0);
}

/// Writes lines `from..to` in bursts, pausing between them, so an agent reads as they come.
fn write_slowly(path: &Path, from: usize, to: usize) {
    let mut writer = append(path);
    for i in from..to {
        writeln!(writer, "{}", line(i)).unwrap();
        if i % 500 == 499 {
            writer.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    writer.flush().unwrap();
}

/// Byte offset of the start of line `i` in a file written by `write_slowly` from 0.
fn offsets_by_message(total: usize) -> HashMap<String, u64> {
    let mut offset = 0u64;
    (0..total)
        .map(|i| {
            let l = line(i);
            let start = offset;
            offset += l.len() as u64 + 1;
            (l, start)
        })
        .collect()
}

/// An agent following `app.log` while a thread writes `total` lines into it; returns once
/// `before` lines are in the output.
fn streaming(total: usize, before: usize) -> (Setup, Agent, std::thread::JoinHandle<()>) {
    let setup = Setup::new();
    let log = setup.path("app.log");
    File::create(&log).unwrap();
    setup.write_config("app.log", "");
    let agent = setup.start(&[]);
    let writer = std::thread::spawn(move || write_slowly(&log, 0, total));
    agent.wait_until(Duration::from_secs(60), "some output", || {
        line_count(&setup.out()) > before
    });
    (setup, agent, writer)
}

#[test]
fn kill_9_replays_only_what_was_delivered_after_the_last_checkpoint() {
    const TOTAL: usize = 150_000;
    let (setup, agent, writer) = streaming(TOTAL, 40_000);
    agent.kill9();
    let checkpoint = setup.checkpoint_offsets();
    assert_eq!(checkpoint.len(), 1, "{checkpoint:?}");
    let checkpointed = checkpoint[0].1;
    let before_kill = message_counts(&setup.out());
    assert!(
        checkpointed > 0,
        "a checkpoint was written within the first 40k lines"
    );

    let agent = setup.start(&[]);
    writer.join().unwrap();
    agent.wait_until(Duration::from_secs(60), "every line after restart", || {
        message_counts(&setup.out()).len() >= TOTAL
    });
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");

    let counts = message_counts(&setup.out());
    let offsets = offsets_by_message(TOTAL);
    assert_eq!(counts.len(), TOTAL, "every input line is in the output");
    let duplicated: Vec<&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(m, _)| m)
        .collect();
    // The documented bound: exactly the lines delivered after the last checkpoint write come
    // again; none at or before the checkpoint, none more than twice.
    for message in &duplicated {
        assert_eq!(counts[*message], 2, "{message}");
        assert!(
            offsets[*message] >= checkpointed,
            "{message} is before the checkpoint"
        );
    }
    let expected_duplicates = before_kill
        .keys()
        .filter(|m| offsets[*m] >= checkpointed)
        .count();
    assert_eq!(duplicated.len(), expected_duplicates);
    eprintln!(
        "kill -9 after {} lines: checkpoint at byte {checkpointed}, {} duplicates after restart",
        before_kill.len(),
        duplicated.len()
    );
}

#[test]
fn sigterm_drains_writes_checkpoints_and_a_restart_repeats_nothing() {
    const TOTAL: usize = 100_000;
    let (setup, agent, writer) = streaming(TOTAL, 20_000);
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}\n{stderr}");

    // The checkpoint is exactly the end of the last line written out.
    let written = message_counts(&setup.out());
    let offsets = offsets_by_message(TOTAL);
    let end_of_output = written
        .keys()
        .map(|m| offsets[m] + m.len() as u64 + 1)
        .max()
        .unwrap();
    assert_eq!(setup.checkpoint_offsets()[0].1, end_of_output, "{stderr}");

    let agent = setup.start(&[]);
    writer.join().unwrap();
    agent.wait_until(Duration::from_secs(60), "every line after restart", || {
        line_count(&setup.out()) >= TOTAL
    });
    std::thread::sleep(Duration::from_millis(500));
    let (status, stderr) = agent.terminate();
    assert!(status.success(), "{stderr}");
    assert_each_exactly_once(&message_counts(&setup.out()), TOTAL);
}

#[test]
fn invalid_utf8_a_1mb_line_and_an_empty_file_are_flagged_not_fatal() {
    let setup = Setup::new();
    fs::create_dir_all(setup.path("logs")).unwrap();
    let mut bad = Vec::new();
    bad.extend_from_slice(b"before\n");
    bad.extend_from_slice(b"broken \xff\xfe bytes\n");
    bad.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    bad.extend_from_slice(b"\nafter\n");
    fs::write(setup.path("logs/bad.log"), &bad).unwrap();
    File::create(setup.path("logs/empty.log")).unwrap();
    setup.write_config("logs/*.log", "");
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");

    let records = records(&setup.out());
    let messages: Vec<&str> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[0], "before");
    assert_eq!(records[1]["message"], "broken \u{fffd}\u{fffd} bytes");
    assert_eq!(records[1]["invalid_utf8"], true);
    assert_eq!(messages[2].len(), 100 * 1024, "cut at max_line_bytes");
    assert_eq!(records[2]["truncated"], true);
    assert_eq!(messages[3], "after");
    assert_eq!(records[3]["origin"]["offset"], (bad.len() - 6) as u64);
    assert!(records[3].get("truncated").is_none());
}

#[test]
fn a_file_deleted_while_being_read_is_read_to_its_end() {
    const TOTAL: usize = 400_000; // ~30 MB: more than the queues can hold
    let setup = Setup::new();
    let log = setup.path("app.log");
    let mut writer = append(&log);
    for i in 0..TOTAL {
        writeln!(writer, "{}", line(i)).unwrap();
    }
    drop(writer);
    // A sink that cannot keep up (stdout to a pipe nobody reads yet) holds the reader back.
    let config = setup.write_config("app.log", "");
    let text = fs::read_to_string(&config).unwrap().replace(
        &format!("type = \"file\"\npath = \"{}\"", setup.out().display()),
        "type = \"stdout\"",
    );
    fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["run", "--exit-on-eof", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(File::create(setup.path("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let stderr_path = setup.path("stderr.log");
    wait_until(Duration::from_secs(20), "the agent to open app.log", || {
        fs::read_to_string(&stderr_path).is_ok_and(|log| log.contains("following file"))
    });
    fs::remove_file(&log).unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    let stderr = fs::read_to_string(setup.path("stderr.log")).unwrap();
    assert!(status.success(), "{stderr}");
    fs::write(setup.out(), &out).unwrap();
    assert_each_exactly_once(&message_counts(&setup.out()), TOTAL);
    assert!(
        stderr.contains("deleted"),
        "the deletion is logged:\n{stderr}"
    );
}

#[test]
fn a_corrupt_checkpoint_file_is_reported_moved_aside_and_reading_starts_over() {
    let setup = Setup::new();
    fs::write(setup.path("app.log"), "one\ntwo\n").unwrap();
    fs::create_dir_all(setup.data_dir()).unwrap();
    let checkpoint = setup.data_dir().join("test.checkpoints.json");
    fs::write(&checkpoint, "{\"version\":1,\"files\":[{\"fing").unwrap();
    setup.write_config("app.log", "");
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("test.checkpoints.json is not valid") && stderr.contains("moved it to"),
        "{stderr}"
    );
    let aside = fs::read_dir(setup.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(aside, "the corrupt file is kept for inspection");
    assert_eq!(message_counts(&setup.out()).len(), 2);
    assert!(
        setup.checkpoint_offsets()[0].1 == 8,
        "a fresh checkpoint was written"
    );
}

/// A config following `app.log` whose file sink is `/dev/full`: every write fails (ENOSPC).
fn sink_to_dev_full(setup: &Setup) {
    let config = setup.write_config("app.log", "");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace(&setup.out().display().to_string(), "/dev/full");
    fs::write(&config, text).unwrap();
}

#[test]
fn a_failing_sink_holds_the_checkpoint_back_and_counts_errors() {
    let setup = Setup::new();
    fs::write(setup.path("app.log"), "one\ntwo\n").unwrap();
    sink_to_dev_full(&setup);
    let agent = setup.start(&[]);
    agent.wait_until(Duration::from_secs(20), "a sink error", || {
        agent.metric("logsieve_sink_errors_total{sink=\"file:/dev/full\"}") >= 2.0
    });
    // Two checkpoint writes after the failures began: the checkpoint had every chance to move.
    let writes = || agent.metric("logsieve_checkpoint_writes_total{source=\"test\"}");
    let before = writes();
    agent.wait_until(
        Duration::from_secs(20),
        "two more checkpoint writes",
        || writes() >= before + 2.0,
    );
    assert_eq!(
        setup.checkpoint_offsets()[0].1,
        0,
        "nothing was acknowledged"
    );
    let ready = reqwest::blocking::get(agent.url("/ready")).unwrap();
    assert_eq!(ready.status(), 503, "not ready while the sink cannot write");
    assert!(ready
        .text()
        .unwrap()
        .contains("sink file:/dev/full cannot write"));
    assert_eq!(
        agent.metric("logsieve_sink_up{sink=\"file:/dev/full\"}"),
        0.0
    );
    agent.signal(libc::SIGTERM);
    agent.wait_until(Duration::from_secs(20), "the first signal taken", || {
        agent.stderr_text().contains("SIGTERM: draining")
    });
    let (status, stderr) = agent.terminate(); // the second signal: give up on the records
    assert_eq!(
        status.code(),
        Some(1),
        "undelivered records make a failed exit: {stderr}"
    );
    assert!(stderr.contains("2 records not delivered"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(
        setup.checkpoint_offsets()[0].1,
        0,
        "still unacknowledged after shutdown"
    );
}

/// `--exit-on-eof` with a sink that cannot write: the end of the input starts the same drain a
/// signal does, and that drain gives up after the grace period (30 s) instead of waiting
/// forever; the exit code says records were not delivered, the checkpoint did not move.
#[test]
fn a_failing_sink_holds_the_end_of_input_for_the_grace_period_at_most() {
    let setup = Setup::new();
    fs::write(setup.path("app.log"), "one\ntwo\n").unwrap();
    sink_to_dev_full(&setup);
    let started = std::time::Instant::now();
    let (status, stderr) = setup.run_to_end();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 records not delivered"), "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "gave up only after the grace period"
    );
    assert_eq!(setup.checkpoint_offsets()[0].1, 0, "nothing acknowledged");
}
