//! The model tier with the real model (fetched by scripts/fetch-models.sh, which
//! scripts/test.sh runs first): embeddings against sentence-transformers' own vectors,
//! accuracy on the seed set, escalation, the template cache, a 1 MB line, and training.

mod common;

use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use logsieve::event::{Event, Origin, TierName};
use logsieve::tiers::model::embed::{EmbedOptions, Embedder};
use logsieve::tiers::model::ModelFiles;

fn model_files() -> ModelFiles {
    ModelFiles {
        onnxruntime: repo_path("models/onnxruntime/libonnxruntime.so"),
        model: repo_path("models/minilm/model.onnx"),
        tokenizer: repo_path("models/minilm/tokenizer.json"),
        checksums: repo_path("models/SHA256SUMS"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The lowest cosine between `model`'s embeddings of the fixture's sentences and
/// sentence-transformers' own (fp32) vectors, and its sentence.
fn lowest_cosine_to_reference(model: &str, batch: usize) -> (f32, String) {
    let reference: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(repo_path("tests/fixtures/embedding_reference.json")).unwrap(),
    )
    .unwrap();
    let sentences: Vec<&str> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let expected: Vec<Vec<f32>> = reference["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let mut files = model_files();
    files.model = repo_path(model);
    // In batches, length-sorting and runs of one token count are part of what is checked.
    let mut embedder = Embedder::load(&files, &EmbedOptions::new(2, batch, 256)).unwrap();
    let got = embedder.embed(&sentences).unwrap();
    let mut worst = (f32::MAX, String::new());
    for ((sentence, want), have) in sentences.iter().zip(&expected).zip(&got) {
        assert_eq!(have.len(), 384);
        let c = cosine(want, have);
        if c < worst.0 {
            worst = (c, sentence.to_string());
        }
    }
    eprintln!(
        "{model}, batches of {batch}: lowest cosine {:.6} for {:?}",
        worst.0, worst.1
    );
    worst
}

#[test]
fn embeddings_match_sentence_transformers_reference_vectors() {
    let (lowest, sentence) = lowest_cosine_to_reference("models/minilm/model.onnx", 16);
    assert!(
        lowest >= 0.999,
        "cosine {lowest:.6} < 0.999 for {sentence:?}"
    );
}

/// The int8 model (the default) stays near the fp32 vectors, alone and in batches: dynamic
/// quantisation takes one int8 scale per activation tensor, so a run holds lines of one token
/// count only. Batched with longer lines and their padding, "ok" drifted to 0.974, below the
/// 0.98 gate (BENCHMARKS.md §2); so did it with int8 feed-forward outputs, which the model
/// therefore keeps fp32 in runs of up to 8 tokens (scripts/minilm_int8.py).
#[test]
fn the_int8_model_stays_close_to_the_reference_vectors() {
    for batch in [1, 16] {
        let (lowest, sentence) = lowest_cosine_to_reference("models/minilm/model.int8.onnx", batch);
        assert!(
            lowest >= 0.98,
            "batches of {batch}: cosine {lowest:.6} < 0.98 for {sentence:?}"
        );
    }
}

/// Runs shared among sessions come back to the lines they belong to: each line's vector from
/// two sessions (the default) matches its vector from one. Lines of 40 lengths (three of
/// each, of different words), given out of length order, make ~40 runs for two sessions.
#[test]
fn two_sessions_give_each_line_its_own_vector() {
    let words = [
        "disk",
        "quota",
        "exceeded",
        "node",
        "retrying",
        "seconds",
        "user",
        "login",
        "failed",
        "payment",
        "gateway",
        "timeout",
        "cache",
        "evicted",
        "kernel",
        "panic",
        "backup",
        "completed",
        "invoice",
        "email",
        "queue",
        "stalled",
        "token",
        "expired",
        "shard",
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let lines: Vec<String> = (0..120)
        .map(|i| {
            let n = 1 + (i * 7) % 40;
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    words[(state >> 33) as usize % words.len()]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut files = model_files();
    files.model = repo_path("models/minilm/model.int8.onnx");
    let embed = |threads: usize| {
        let mut embedder = Embedder::load(&files, &EmbedOptions::new(threads, 32, 256)).unwrap();
        embedder.embed(&refs).unwrap()
    };
    let (one, two) = (embed(1), embed(2));
    assert_eq!(one.len(), refs.len());
    assert_eq!(two.len(), refs.len());
    for (i, (a, b)) in one.iter().zip(&two).enumerate() {
        let c = cosine(a, b);
        assert!(
            c >= 0.999,
            "line {i} {:?}: cosine {c} between one and two sessions",
            refs[i]
        );
    }
}

#[test]
fn a_missing_asset_is_one_clear_message() {
    let mut files = model_files();
    files.model = repo_path("models/minilm/nope.onnx");
    let err = Embedder::load(&files, &EmbedOptions::new(1, 16, 256))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope.onnx") && err.contains("scripts/fetch-models.sh"),
        "{err}"
    );
}

/// `logsieve classify` of a labelled CSV with the default config: the accuracy it prints on
/// the rows not routed to the LLM.
fn classify_accuracy(input: &std::path::Path) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let result = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args(["classify", "--input"])
        .arg(input)
        .arg("--output")
        .arg(dir.path().join("out.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    eprintln!("{stderr}");
    stderr
        .split("rows not routed to the LLM: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy line in:\n{stderr}"))
}

#[test]
fn classify_reaches_099_on_the_seed_synthetic_set() {
    let accuracy = classify_accuracy(&seed_path("synthetic_logs.csv"));
    assert!(accuracy >= 0.99, "accuracy {accuracy} < 0.99");
}

/// The shipped head on 140 lines of other systems' formats it was never trained on
/// (training/holdout_eval.csv; README: 0.857 with the int8 model, as with fp32; the lines it is
/// unsure of escalate).
#[test]
fn the_shipped_head_holds_its_accuracy_on_held_out_lines() {
    let accuracy = classify_accuracy(&repo_path("training/holdout_eval.csv"));
    assert!(
        accuracy >= 0.85,
        "accuracy {accuracy} < 0.85 on the held-out set"
    );
}

fn tiers_with(threshold: f32) -> logsieve::tiers::Tiers {
    // cargo runs tests from the package root, where the config's relative model paths lead.
    let root = repo_path(".");
    let mut plan = logsieve::config::load(Some(&root.join("config/logsieve.toml"))).unwrap();
    plan.tiers.model.as_mut().unwrap().threshold = threshold;
    logsieve::tiers::Tiers::build(&plan.tiers, &logsieve::metrics::Registry::default()).unwrap()
}

fn event(message: &str) -> Event {
    let origin = Origin::Row { row: 1 };
    Event::plain(
        Arc::from("2026-01-01T00:00:00.000Z"),
        "test",
        message.to_string(),
        origin,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_answers_a_known_template_with_the_models_label() {
    let tiers = tiers_with(0.5);
    let first = tiers.label(vec![event("Shard 12 data copy failed")]).await;
    assert_eq!(
        first[0].verdict.tier,
        TierName::Model,
        "{:?}",
        first[0].verdict
    );
    let second = tiers.label(vec![event("Shard 907 data copy failed")]).await;
    assert_eq!(second[0].verdict.tier, TierName::Cache);
    assert_eq!(second[0].verdict.label, first[0].verdict.label);
    assert_eq!(second[0].verdict.confidence, first[0].verdict.confidence);
}

/// The threshold is the line between the model's answer and the LLM's: the same line is the
/// model's just below its own confidence and escalates, keeping that confidence, just above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_escalates_exactly_when_its_confidence_is_below_the_threshold() {
    let line = "the weather in the valley was pleasant all week";
    let decided = tiers_with(0.0).label(vec![event(line)]).await;
    let v = &decided[0].verdict;
    assert_eq!(v.tier, TierName::Model, "{v:?}");
    let p = v.confidence.expect("the model gives its confidence");
    assert!(p > 0.0 && p < 1.0, "{p}");

    let above = tiers_with(p + 1e-4).label(vec![event(line)]).await;
    let escalated = &above[0].verdict;
    assert_eq!(&*escalated.label, "Unclassified");
    assert_eq!(escalated.tier, TierName::Fallback);
    assert_eq!(escalated.reason, Some("low_confidence"));
    assert_eq!(
        escalated.confidence,
        Some(p),
        "keeps the model's confidence"
    );

    let below = tiers_with(p - 1e-4).label(vec![event(line)]).await;
    assert_eq!(below[0].verdict.tier, TierName::Model);
    assert_eq!(below[0].verdict.label, v.label);
}

#[test]
fn a_batch_with_a_1mb_line_is_labelled_without_blowing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let mut text = String::from("Backup completed successfully.\n");
    text.push_str(&"Unauthorized access attempt detected ".repeat(1024 * 1024 / 37));
    text.push('\n');
    text.push_str("Memory usage at 93% on node worker-3\n");
    fs::write(&input, text).unwrap();
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports its peak RSS
    let mut child = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args(["classify", "--format", "jsonl", "--output", "-", "--input"])
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let out = reader.join().unwrap();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[1]["label"], "Security Alert",
        "{}",
        records[1]["tier"]
    );
    let peak_mib = usage.ru_maxrss / 1024;
    eprintln!("peak RSS {peak_mib} MiB");
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB with a 1 MB line");
}

fn train(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> String {
    let result = Command::new(BIN)
        .current_dir(repo_path("."))
        .env_remove("GROQ_API_KEY") // the default config asks Groq when a key is there
        .args(["train", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    String::from_utf8(result.stdout).unwrap()
}

#[test]
fn training_is_reproducible_byte_for_byte() {
    // A small labelled set of the seed's shape, so the test stays quick.
    let dir = tempfile::tempdir().unwrap();
    let seed = fs::read_to_string(seed_path("synthetic_logs.csv")).unwrap();
    let small: String = seed.lines().take(301).map(|l| format!("{l}\n")).collect();
    let data = dir.path().join("small.csv");
    fs::write(&data, small).unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let report = train(&data, &a, &[]);
    train(&data, &b, &[]);
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "same seed, same head"
    );
    assert!(
        report.contains("precision    recall  f1-score   support"),
        "{report}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("a.report.txt")).unwrap(),
        report
    );
    let c = dir.path().join("c.json");
    train(&data, &c, &["--seed", "7"]);
    assert_ne!(
        fs::read(&a).unwrap(),
        fs::read(&c).unwrap(),
        "another seed, another split"
    );
}

#[test]
fn like_seed_training_matches_or_beats_the_seed_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = train(
        &seed_path("synthetic_logs.csv"),
        &dir.path().join("head.json"),
        &["--like-seed"],
    );
    eprintln!("{report}");
    let number_after = |key: &str, nth: usize| -> f64 {
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split_whitespace()
            .filter_map(|w| w.parse::<f64>().ok())
            .nth(nth)
            .unwrap()
    };
    let accuracy = number_after("accuracy", 0);
    let macro_f1 = number_after("macro avg", 2);
    // The seed notebook: accuracy 0.99, macro F1 0.98 (DESIGN.md §2).
    assert!(accuracy >= 0.99, "accuracy {accuracy}\n{report}");
    assert!(macro_f1 >= 0.98, "macro F1 {macro_f1}\n{report}");
    assert!(report.contains("(like-seed mode)"));
    assert!(
        !report.contains("System Notification"),
        "like-seed leaves the regex labels out"
    );
}

/// The agent with the model tier (the fp32 model), batches of 16 and no template cache (every
/// batch has lines for the model), over `line(0..total)` in `app.log`: half of them decided by
/// the rules (`User … logged in`, `Backup …`), half by the model. Returns the file's size.
fn with_the_model(setup: &Setup, total: usize, ordered: bool) -> u64 {
    let text: String = (0..total).map(|i| line(i) + "\n").collect();
    fs::write(setup.path("app.log"), &text).unwrap();
    let config = setup.write_config("app.log", "read_from = \"beginning\"");
    let models = repo_path("models");
    let mut extra = format!(
        r#"
[batch]
max_lines = 16
[tiers.cache]
capacity = 0
[tiers.model]
onnxruntime = "{models}/onnxruntime/libonnxruntime.so"
model = "{models}/minilm/model.onnx"
tokenizer = "{models}/minilm/tokenizer.json"
checksums = "{models}/SHA256SUMS"
head = "{models}/head.json"
"#,
        models = models.display()
    );
    if ordered {
        extra.push_str("[tiers.llm]\nenabled = false\nordered = true\n");
    }
    let mut toml = fs::read_to_string(&config).unwrap();
    toml.push_str(&extra);
    fs::write(&config, toml).unwrap();
    text.len() as u64
}

/// [`with_the_model`] over [`TOTAL`] lines, run to the end of the file.
fn run_with_the_model(ordered: bool) -> (Setup, u64) {
    let setup = Setup::new();
    let size = with_the_model(&setup, TOTAL, ordered);
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    (setup, size)
}

const TOTAL: usize = 400;

#[test]
fn the_rules_lines_leave_before_the_model_runs_and_nothing_is_lost() {
    let (setup, size) = run_with_the_model(false);
    Tally::of(&setup.out(), TOTAL).assert_each_once();
    // Both deliveries of a batch hold its chunks: the checkpoint passes them once both are
    // written, and at the end it holds the whole file.
    assert_eq!(setup.checkpoint_offsets()[0].1, size);
    let out = records(&setup.out());
    let model = out.iter().filter(|r| r["tier"] == "model").count();
    assert!(model >= TOTAL / 4, "the model labelled {model} lines");
    // The rules' lines (even numbers) of the first batch come out before its model lines.
    let order: Vec<usize> = out
        .iter()
        .map(|r| sequence_of(r["message"].as_str().unwrap()).unwrap())
        .collect();
    let at = |i: usize| order.iter().position(|&s| s == i).unwrap();
    assert!(
        at(14) < at(1),
        "line 14 (rules) before line 1 (model): {order:?}"
    );
}

#[test]
fn ordered_keeps_every_batch_together_and_in_order() {
    let (setup, size) = run_with_the_model(true);
    Tally::of(&setup.out(), TOTAL).assert_each_once();
    assert_eq!(setup.checkpoint_offsets()[0].1, size);
    let order: Vec<usize> = records(&setup.out())
        .iter()
        .map(|r| sequence_of(r["message"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(order, (0..TOTAL).collect::<Vec<_>>());
}

/// Killed mid-stream while the rules' lines of a batch are out and its model lines are not:
/// the checkpoint at that moment covers only lines already in the output, and after a restart
/// every line is there (some twice: those written after the last checkpoint).
#[test]
fn kill_9_with_the_model_never_checkpoints_a_line_not_yet_written() {
    const LINES: usize = 12_000;
    let setup = Setup::new();
    with_the_model(&setup, 0, false);
    let agent = setup.start(&[]);
    // Appended 100 lines at a time, so that the agent reads many chunks and checkpoints some.
    let log = setup.path("app.log");
    let writer = std::thread::spawn(move || {
        let mut file = fs::OpenOptions::new().append(true).open(log).unwrap();
        for start in (0..LINES).step_by(100) {
            let text: String = (start..start + 100).map(|i| line(i) + "\n").collect();
            std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let checkpointed = || setup.checkpoint_offsets().first().map_or(0, |c| c.1);
    agent.wait_until(Duration::from_secs(60), "output and a checkpoint", || {
        line_count(&setup.out()) > 2_000 && checkpointed() > 0
    });
    agent.kill9();
    let checkpointed = checkpointed();
    eprintln!(
        "killed with {} lines out, checkpoint at byte {checkpointed}",
        line_count(&setup.out())
    );
    let written: std::collections::HashSet<usize> = records(&setup.out())
        .iter()
        .filter_map(|r| sequence_of(r["message"].as_str()?))
        .collect();
    assert!(written.len() < LINES, "killed mid-stream");
    let mut end = 0;
    for i in 0..LINES {
        end += line(i).len() as u64 + 1;
        if end > checkpointed {
            break;
        }
        assert!(
            written.contains(&i),
            "line {i} ends at byte {end}, within the checkpoint ({checkpointed}), but was not written"
        );
    }
    writer.join().unwrap();
    let (status, stderr) = setup.run_to_end();
    assert!(status.success(), "{stderr}");
    Tally::of(&setup.out(), LINES).assert_none_lost();
}
