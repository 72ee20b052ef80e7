//! `logsieve train`: fits the logistic-regression head (linfa-logistic, multinomial) on MiniLM
//! embeddings of a labelled CSV (`log_message`, `target_label`, optional `source`), the way the
//! seed notebook did — stratified, seeded 70/30 split, a classification report on the held-out
//! part — and writes the head as JSON with the report beside it.
//!
//! Which rows it learns from: by default every row whose label is not LLM-only (rows of sources
//! routed to the LLM, and labels seen only there, are left out), so the model also knows the
//! System Notification and User Action lines no rule matches. `--like-seed` also leaves out the
//! rows the regex rules label, exactly as the seed did, for a like-for-like report.
//! Same data and seed → the same head, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};

use crate::classify::clean_value;
use crate::config::Plan;
use crate::tiers::model::embed::{Embedder, DIM};
use crate::tiers::model::logistic::Head;
use crate::tiers::regex::RegexTier;

#[derive(Debug, clap::Args)]
pub struct TrainOptions {
    /// Labelled CSV (repeat for several), e.g. ../shared/data/seed/synthetic_logs.csv
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Where to write the head (the report goes beside it).
    #[arg(long, default_value = "models/head.json")]
    pub out: PathBuf,
    /// Leave out rows the regex rules label, as the seed did (like-for-like report).
    #[arg(long)]
    pub like_seed: bool,
    /// After the held-out report, fit again on every selected row (for the shipped model).
    #[arg(long)]
    pub all_rows: bool,
    /// Share of each label held out for the report.
    #[arg(long, default_value_t = 0.3)]
    pub test_size: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// L2 penalty (1/C in scikit-learn's terms; its default C = 1).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    #[arg(long, default_value_t = 300)]
    pub max_iterations: u64,
}

/// A labelled row.
struct Row {
    source: String,
    message: String,
    label: String,
}

pub fn train(plan: &Plan, options: &TrainOptions) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for path in &options.data {
        let more = read_rows(path)?;
        if let Some(row) = more.iter().find(|r| !plan.labels.allows(&r.label)) {
            anyhow::bail!(
                "{}: label `{}` is not in the config's labels; add it to `labels` first",
                path.display(),
                row.label
            );
        }
        rows.extend(more);
    }
    let data_names: Vec<String> = options
        .data
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        })
        .collect();
    let selected = select(plan, rows, options.like_seed);
    let labels: Vec<String> = selected
        .iter()
        .map(|r| r.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    anyhow::ensure!(
        labels.len() >= 2,
        "need at least two labels to train, found {labels:?}"
    );
    let targets: Vec<usize> = selected
        .iter()
        .map(|r| {
            labels
                .iter()
                .position(|l| *l == r.label)
                .expect("label listed")
        })
        .collect();

    let model = plan.tiers.model.as_ref().ok_or_else(|| {
        anyhow::anyhow!("the config has no [tiers.model] enabled; training needs its model files")
    })?;
    // One line per run: each line's own embedding, whatever else is in the data, so the same
    // data gives the same head with any batch size in the config.
    let mut one_per_run = model.embed_options();
    one_per_run.batch_size = 1;
    let mut embedder = Embedder::load(&model.files, &one_per_run)?;
    eprintln!("embedding {} rows with all-MiniLM-L6-v2 …", selected.len());
    let embeddings = embed_with_progress(&mut embedder, &selected)?;

    let (train_idx, test_idx) = stratified_split(&targets, options.test_size, options.seed);
    let head = fit(&embeddings, &targets, &train_idx, &labels, options)?;
    let predicted: Vec<usize> = test_idx
        .iter()
        .map(|&i| head.predict(&embeddings[i]).0)
        .collect();
    let truth: Vec<usize> = test_idx.iter().map(|&i| targets[i]).collect();
    let mut report = format!(
        "logsieve train — {} rows from {} ({} mode), {} train / {} held out (test size {}, seed {})\n\n",
        selected.len(),
        data_names.join(" + "),
        if options.like_seed { "like-seed" } else { "default" },
        train_idx.len(),
        test_idx.len(),
        options.test_size,
        options.seed
    );
    report.push_str(&classification_report(&labels, &truth, &predicted));

    let head = if options.all_rows {
        let all: Vec<usize> = (0..targets.len()).collect();
        report.push_str(&format!(
            "\nThe saved head was then fitted again on all {} rows (the report above is on the held-out split).\n",
            all.len()
        ));
        fit(&embeddings, &targets, &all, &labels, options)?
    } else {
        head
    };
    let head = Head {
        trained: serde_json::json!({
            "data": data_names,
            "mode": if options.like_seed { "like-seed" } else { "default" },
            "rows": if options.all_rows { targets.len() } else { train_idx.len() },
            "test_size": options.test_size,
            "seed": options.seed,
            "alpha": options.alpha,
        }),
        ..head
    };
    print!("{report}");
    if let Some(dir) = options.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut json = serde_json::to_string_pretty(&head)?;
    json.push('\n');
    std::fs::write(&options.out, json)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", options.out.display()))?;
    let report_path = report_path(&options.out);
    std::fs::write(&report_path, &report)?;
    eprintln!(
        "wrote {} and {}",
        options.out.display(),
        report_path.display()
    );
    Ok(())
}

/// `models/head.json` → `models/head.report.txt`.
pub fn report_path(out: &Path) -> PathBuf {
    out.with_extension("report.txt")
}

fn read_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::Reader::from_path(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no `{name}` column (found: {}); training needs `log_message` and `target_label` (and optionally `source`)",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (message, label) = (column("log_message")?, column("target_label")?);
    let source = column("source").ok();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| anyhow::anyhow!("{} row {}: {e}", path.display(), i + 2))?;
        rows.push(Row {
            source: source
                .and_then(|s| record.get(s))
                .map(|s| clean_value(s).to_string())
                .unwrap_or_default(),
            message: clean_value(record.get(message).unwrap_or_default()).to_string(),
            label: clean_value(record.get(label).unwrap_or_default()).to_string(),
        });
    }
    Ok(rows)
}

/// The rows the head learns from (see the module doc).
fn select(plan: &Plan, rows: Vec<Row>, like_seed: bool) -> Vec<Row> {
    let routed: BTreeSet<&str> = plan.tiers.routed_sources().into_iter().collect();
    let llm_labels: BTreeSet<String> = rows
        .iter()
        .filter(|r| routed.contains(r.source.as_str()))
        .map(|r| r.label.clone())
        .collect();
    let other_labels: BTreeSet<String> = rows
        .iter()
        .filter(|r| !routed.contains(r.source.as_str()))
        .map(|r| r.label.clone())
        .collect();
    let llm_only: BTreeSet<&String> = llm_labels.difference(&other_labels).collect();
    let rules = RegexTier::new(&plan.tiers.regex);
    let before = rows.len();
    let selected: Vec<Row> = rows
        .into_iter()
        .filter(|r| !routed.contains(r.source.as_str()) && !llm_only.contains(&r.label))
        .filter(|r| !like_seed || rules.first_match(&r.message).is_none())
        .collect();
    eprintln!(
        "{} of {before} rows selected (left out: LLM-routed sources {routed:?}, LLM-only labels {llm_only:?}{})",
        selected.len(),
        if like_seed { ", rows the regex rules label" } else { "" }
    );
    selected
}

fn embed_with_progress(embedder: &mut Embedder, rows: &[Row]) -> anyhow::Result<Vec<Vec<f32>>> {
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} lines  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.message.as_str()).collect();
        out.extend(embedder.embed(&texts)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Ok(out)
}

/// Per label, a seeded shuffle; the first `test_size` share of each label is held out.
pub fn stratified_split(targets: &[usize], test_size: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &t) in targets.iter().enumerate() {
        by_label.entry(t).or_default().push(i);
    }
    let mut rng = SplitMix64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (_, mut idx) in by_label {
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let n_test = if idx.len() < 2 {
            0
        } else {
            ((idx.len() as f64 * test_size).round() as usize).clamp(1, idx.len() - 1)
        };
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// A tiny, stable PRNG: the split must not change when a dependency updates its generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn fit(
    embeddings: &[Vec<f32>],
    targets: &[usize],
    rows: &[usize],
    labels: &[String],
    options: &TrainOptions,
) -> anyhow::Result<Head> {
    let mut x = Array2::<f64>::zeros((rows.len(), DIM));
    for (r, &i) in rows.iter().enumerate() {
        for (c, &v) in embeddings[i].iter().enumerate() {
            x[[r, c]] = v as f64;
        }
    }
    let y = Array1::from_iter(rows.iter().map(|&i| targets[i]));
    let dataset = Dataset::new(x, y);
    let fitted = MultiLogisticRegression::default()
        .alpha(options.alpha)
        .max_iterations(options.max_iterations)
        .fit(&dataset)
        .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
    // params: features × classes, columns in the order of `classes()`.
    let mut weights = vec![vec![0f32; DIM]; labels.len()];
    let mut bias = vec![0f32; labels.len()];
    let mut seen = vec![false; labels.len()];
    for (col, &class) in fitted.classes().iter().enumerate() {
        for (f, w) in weights[class].iter_mut().enumerate() {
            *w = fitted.params()[[f, col]] as f32;
        }
        bias[class] = fitted.intercept()[col] as f32;
        seen[class] = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        anyhow::bail!("label `{}` has no training rows", labels[missing]);
    }
    Ok(Head {
        embedding_model: "all-MiniLM-L6-v2".into(),
        labels: labels.to_vec(),
        weights,
        bias,
        trained: serde_json::Value::Null,
    })
}

/// Per-label precision, recall, F1 and support, then accuracy, macro and weighted averages —
/// the layout of scikit-learn's `classification_report`.
pub fn classification_report(labels: &[String], truth: &[usize], predicted: &[usize]) -> String {
    let width = labels.iter().map(|l| l.len()).max().unwrap_or(0).max(12);
    let mut out = format!(
        "{:>width$}  precision    recall  f1-score   support\n\n",
        ""
    );
    let (mut macro_p, mut macro_r, mut macro_f) = (0.0, 0.0, 0.0);
    let (mut weighted_p, mut weighted_r, mut weighted_f) = (0.0, 0.0, 0.0);
    let total = truth.len();
    for (k, label) in labels.iter().enumerate() {
        let tp = truth
            .iter()
            .zip(predicted)
            .filter(|(t, p)| **t == k && **p == k)
            .count() as f64;
        let predicted_k = predicted.iter().filter(|p| **p == k).count() as f64;
        let support = truth.iter().filter(|t| **t == k).count();
        let precision = if predicted_k > 0.0 {
            tp / predicted_k
        } else {
            0.0
        };
        let recall = if support > 0 {
            tp / support as f64
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{label:>width$}  {precision:9.2} {recall:9.2} {f1:9.2} {support:9}"
        );
        macro_p += precision;
        macro_r += recall;
        macro_f += f1;
        let w = support as f64;
        weighted_p += precision * w;
        weighted_r += recall * w;
        weighted_f += f1 * w;
    }
    let n = labels.len() as f64;
    let correct = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    let accuracy = correct as f64 / total.max(1) as f64;
    let t = total.max(1) as f64;
    let _ = writeln!(
        out,
        "\n{:>width$}  {:9} {:9} {accuracy:9.2} {total:9}",
        "accuracy", "", ""
    );
    let _ = writeln!(
        out,
        "{:>width$}  {:9.2} {:9.2} {:9.2} {total:9}",
        "macro avg",
        macro_p / n,
        macro_r / n,
        macro_f / n
    );
    let _ = writeln!(
        out,
        "{:>width$}  {:9.2} {:9.2} {:9.2} {total:9}",
        "weighted avg",
        weighted_p / t,
        weighted_r / t,
        weighted_f / t
    );
    let _ = writeln!(out, "\naccuracy {accuracy:.4} ({correct}/{total})");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_seeded_and_disjoint() {
        let targets: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, test) = stratified_split(&targets, 0.3, 42);
        assert_eq!(test.len(), 30);
        assert_eq!(test.iter().filter(|&&i| targets[i] == 1).count(), 6);
        assert_eq!(train.len() + test.len(), 100);
        assert!(train.iter().all(|i| !test.contains(i)));
        assert_eq!(
            stratified_split(&targets, 0.3, 42),
            (train.clone(), test.clone())
        );
        assert_ne!(stratified_split(&targets, 0.3, 7).1, test);
    }

    #[test]
    fn report_has_sklearn_layout_and_numbers() {
        let labels = vec!["A".to_string(), "B".to_string()];
        let report = classification_report(&labels, &[0, 0, 1, 1], &[0, 1, 1, 1]);
        assert!(report.contains("precision    recall  f1-score   support"));
        // A: p=1.00 r=0.50 f1=0.67; B: p=0.67 r=1.00 f1=0.80
        assert!(
            report.contains("           A       1.00      0.50      0.67         2"),
            "{report}"
        );
        assert!(report.contains("accuracy 0.7500 (3/4)"), "{report}");
    }
}
