//! Sentence embeddings: all-MiniLM-L6-v2 through ONNX Runtime (`ort`, loaded dynamically from
//! the library `scripts/fetch-models.sh` unpacks) and the model's own tokenizer (`tokenizers`).
//! An embedding is the mean of `last_hidden_state` over the attention mask, L2-normalised —
//! what sentence-transformers does for this model. Texts are truncated at `max_tokens` (at most
//! the model's 256), sorted by token count and run in batches of up to `batch_size` texts of
//! *one* token count, so nothing is padded: padding costs compute (unsorted batches padded to
//! ~4× the real tokens and ran ~4× slower), and with the int8 model, whose activations are
//! quantised with one scale per run, a short line batched with long ones drifts (cosine 0.974
//! to fp32 for "ok", against 0.985 alone or among lines of its length). The int8 model itself
//! switches on the run's token count (scripts/minilm_int8.py): runs of up to 8 tokens keep its
//! feed-forward outputs fp32, so one token count per run also means one branch per line.
//! The runs of a call are shared among `threads` ONNX sessions of one thread each, longest
//! first (see [`EmbedOptions::session_per_thread`]).
//!
//! Every asset is checked against `models/SHA256SUMS` before use, so a missing or corrupt file
//! is one clear message naming it and the command that fetches it, never a dlopen backtrace.
//! The int8 model keeps its weights in a file of their own (`model.int8.onnx.data`), which ONNX
//! Runtime maps instead of copying: a session takes ~50 ms to make instead of ~140 ms. That
//! file is checked with the model.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use ort::session::Session;
use ort::value::Tensor;
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use super::tier::Embed;
pub use super::{ModelFiles, FETCH_COMMAND, MAX_TOKENS};

/// Embedding size of all-MiniLM-L6-v2.
pub const DIM: usize = 384;
/// Most padded tokens in one ONNX run: attention memory grows with rows × tokens², so long
/// lines go in smaller batches (32 lines of 16 tokens, 4 of 128, 2 of 256). Measured on the
/// seed set: 512 is faster end to end than 2048 and peaks at ~245 MB instead of ~390 MB.
pub const TOKEN_BUDGET: usize = 512;
/// Text past this many bytes cannot change the first 256 tokens in any realistic line; cutting
/// it first keeps a 1 MB line from costing a 1 MB tokenisation.
const MAX_TEXT_BYTES: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{file}: {problem} (run {FETCH_COMMAND} to fetch the model assets)")]
    Asset { file: PathBuf, problem: String },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Checks each asset exists and matches its pinned hash.
pub fn verify(files: &ModelFiles) -> Result<(), ModelError> {
    let pins = Pins::read(files)?;
    for path in [&files.onnxruntime, &files.tokenizer] {
        pins.check(path)?;
    }
    for path in pins.model_files(files) {
        pins.check(&path)?;
    }
    Ok(())
}

/// `models/SHA256SUMS`, read once: the hash each asset must have.
struct Pins {
    file: PathBuf,
    text: String,
}

impl Pins {
    fn read(files: &ModelFiles) -> Result<Pins, ModelError> {
        let text = std::fs::read_to_string(&files.checksums).map_err(|e| ModelError::Asset {
            file: files.checksums.clone(),
            problem: format!("cannot read the checksum list: {e}"),
        })?;
        Ok(Pins {
            file: files.checksums.clone(),
            text,
        })
    }

    /// The pinned hash of `path` (named in the list relative to the list's folder).
    fn expected(&self, path: &Path) -> Option<&str> {
        let base = self.file.parent().unwrap_or(Path::new("."));
        self.text.lines().find_map(|line| {
            let (hash, name) = line.split_once(char::is_whitespace)?;
            let name = name.trim().trim_start_matches('*');
            (base.join(name) == path || Path::new(name) == path).then_some(hash)
        })
    }

    /// The model's files: its graph, and its weights file (`<model>.data`, where
    /// scripts/minilm_int8.py puts them) when there is one or the list pins one.
    fn model_files(&self, files: &ModelFiles) -> Vec<PathBuf> {
        let mut weights = files.model.clone().into_os_string();
        weights.push(".data");
        let weights = PathBuf::from(weights);
        let mut paths = vec![files.model.clone()];
        if weights.exists() || self.expected(&weights).is_some() {
            paths.push(weights);
        }
        paths
    }

    /// Checks that `path` exists and matches its pinned hash.
    fn check(&self, path: &Path) -> Result<(), ModelError> {
        let actual = sha256_file(path).map_err(|e| ModelError::Asset {
            file: path.to_path_buf(),
            problem: format!("missing or unreadable ({e})"),
        })?;
        match self.expected(path) {
            Some(expected) if expected == actual => Ok(()),
            Some(_) => Err(ModelError::Asset {
                file: path.to_path_buf(),
                problem: "corrupt: its sha256 does not match models/SHA256SUMS".into(),
            }),
            None => Err(ModelError::Asset {
                file: path.to_path_buf(),
                problem: format!("not listed in {}", self.file.display()),
            }),
        }
    }
}

/// Hex sha256 of a file, read in pieces (the model is 87 MB; no need to hold it twice).
fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

fn environment(library: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    ENVIRONMENT
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| e.to_string())?;
            // Microsoft's builds of ONNX Runtime (the PyPI wheel's library is one) record usage
            // events (process path, OS, CPU, a device id) for upload unless told not to; a log
            // shipper sends nothing anywhere it was not configured to.
            builder
                .with_name("logsieve")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ModelError::Runtime(e.clone()))
}

/// How the model runs.
#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    /// Cores the model runs on (see `session_per_thread`).
    pub threads: usize,
    /// Most lines in one ONNX run.
    pub batch_size: usize,
    /// A line's tokens past this many are not looked at (at most [`MAX_TOKENS`]).
    pub max_tokens: usize,
    /// With one session of several intra-op threads: they spin for work between the operators
    /// of a run instead of sleeping, and stop spinning when the run returns
    /// (`session.force_spinning_stop`), so an idle tier keeps no core busy (~1.07× lines/s
    /// here, BENCHMARKS.md §2). On in logsieve; the benchmark measures it off.
    pub spinning: bool,
    /// Lines of different token counts share a run, padded to the longest (logsieve before
    /// 2026-11-30). Off in logsieve; the benchmark measures it.
    pub mixed_lengths: bool,
    /// `threads` sessions of one thread each, every run taken whole by whichever is free,
    /// instead of one session whose `threads` intra-op threads share each operator of a run:
    /// MiniLM's operators on a run of a few short lines are too small to share well (~1.2–1.3×
    /// lines/s here, BENCHMARKS.md §2), at ~30 MB more per extra session. On in logsieve; the
    /// benchmark measures it off.
    pub session_per_thread: bool,
}

impl EmbedOptions {
    pub fn new(threads: usize, batch_size: usize, max_tokens: usize) -> EmbedOptions {
        EmbedOptions {
            threads,
            batch_size,
            max_tokens,
            spinning: true,
            mixed_lengths: false,
            session_per_thread: true,
        }
    }
}

pub struct Embedder {
    sessions: Vec<Session>,
    tokenizer: Tokenizer,
    batch_size: usize,
    mixed_lengths: bool,
}

impl Embedder {
    /// Verifies and loads the model. Each asset is checked before it is loaded; the model's
    /// check (most of the hashing: ~50 ms for its 70 MB) runs while the runtime library and the
    /// tokenizer, checked first, load, and the model is opened only once it has passed. With
    /// `session_per_thread`, the sessions are made side by side.
    pub fn load(files: &ModelFiles, options: &EmbedOptions) -> Result<Embedder, ModelError> {
        let pins = Pins::read(files)?;
        let model_files = pins.model_files(files);
        // The model's files (most of the bytes to hash) are checked on a thread of their own
        // while the runtime library and the tokenizer are checked and loaded on this one.
        let (model_checked, loaded) = std::thread::scope(|scope| {
            let check = scope.spawn(|| model_files.iter().try_for_each(|path| pins.check(path)));
            let loaded = pins
                .check(&files.onnxruntime)
                .and_then(|()| environment(&files.onnxruntime))
                .and_then(|env| {
                    pins.check(&files.tokenizer)?;
                    Ok((env, load_tokenizer(files, options)?))
                });
            (check.join(), loaded)
        });
        model_checked.map_err(|_| ModelError::Runtime("the model's check panicked".into()))??;
        let (env, tokenizer) = loaded?;
        let sessions = if options.session_per_thread {
            on_threads(0..options.threads.max(1), |_| {
                session(env, files, options, 1)
            })
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?
        } else {
            vec![session(env, files, options, options.threads.max(1))?]
        };
        Ok(Embedder {
            sessions,
            tokenizer,
            batch_size: options.batch_size.max(1),
            mixed_lengths: options.mixed_lengths,
        })
    }

    /// Embeds `texts`, returning one unit vector per text in the same order. Texts are
    /// tokenised once, sorted by token count and run in batches of one token count, at most
    /// `batch_size` rows and [`TOKEN_BUDGET`] tokens, so memory stays flat whatever the line
    /// lengths.
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let cut_texts: Vec<&str> = texts.iter().map(|t| cut(t)).collect();
        let encodings = self
            .tokenizer
            .encode_batch(cut_texts, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut runs: Vec<Range<usize>> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && end - start < self.batch_size
                && (end - start + 1) * encodings[order[end]].len() <= TOKEN_BUDGET
                && (self.mixed_lengths
                    || encodings[order[end]].len() == encodings[order[start]].len())
            {
                end += 1;
            }
            runs.push(start..end);
            start = end;
        }
        // Every session gets a run while there are rows to split.
        while runs.len() < self.sessions.len() {
            let (k, widest) = match runs.iter().enumerate().max_by_key(|(_, r)| r.len()) {
                Some((k, r)) if r.len() > 1 => (k, r.clone()),
                _ => break,
            };
            let middle = widest.start + widest.len() / 2;
            runs[k] = widest.start..middle;
            runs.insert(k + 1, middle..widest.end);
        }
        let batch_of = |range: &Range<usize>| -> Vec<&tokenizers::Encoding> {
            order[range.clone()]
                .iter()
                .map(|&i| &encodings[i])
                .collect()
        };
        let mut done: Vec<(usize, Vec<Vec<f32>>)> = Vec::with_capacity(runs.len());
        if self.sessions.len() == 1 || runs.len() == 1 {
            for (k, range) in runs.iter().enumerate() {
                done.push((k, run(&mut self.sessions[0], &batch_of(range))?));
            }
        } else {
            // Longest runs first, each taken by whichever session is free, so the last to
            // finish is a short one.
            let next = AtomicUsize::new(0);
            let take = || {
                let n = next.fetch_add(1, Ordering::Relaxed);
                (n < runs.len()).then(|| runs.len() - 1 - n)
            };
            for taken in on_threads(self.sessions.iter_mut(), |session| {
                let mut mine = Vec::new();
                while let Some(k) = take() {
                    mine.push((k, run(session, &batch_of(&runs[k]))?));
                }
                Ok::<_, ModelError>(mine)
            }) {
                done.extend(taken?);
            }
        }
        let mut out = vec![Vec::new(); encodings.len()];
        for (k, vectors) in done {
            for (&i, vector) in order[runs[k].clone()].iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }
}

/// `work` on each of `items`, the first on this thread and each other on a thread of its own;
/// the results in the order of `items`. A panic in `work` is a panic here.
fn on_threads<T: Send, R: Send>(
    items: impl IntoIterator<Item = T>,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let mut items = items.into_iter();
    let Some(first) = items.next() else {
        return Vec::new();
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = items.map(|item| scope.spawn(|| work(item))).collect();
        let mut results = vec![work(first)];
        results.extend(others.into_iter().map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        results
    })
}

/// An ONNX Runtime error (of a run, or of a session builder's step) as ours.
fn runtime(e: impl std::fmt::Display) -> ModelError {
    ModelError::Runtime(e.to_string())
}

/// One ONNX run over encodings of similar length, padded here to the longest.
fn run(
    session: &mut Session,
    encodings: &[&tokenizers::Encoding],
) -> Result<Vec<Vec<f32>>, ModelError> {
    let rows = encodings.len();
    let width = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
    let mut ids = vec![0i64; rows * width];
    let mut mask = vec![0i64; rows * width];
    let mut types = vec![0i64; rows * width];
    for (r, e) in encodings.iter().enumerate() {
        let row = r * width;
        for (j, (&id, &ty)) in e.get_ids().iter().zip(e.get_type_ids()).enumerate() {
            ids[row + j] = id as i64;
            types[row + j] = ty as i64;
            mask[row + j] = 1;
        }
    }
    let shape = [rows as i64, width as i64];
    let inputs = ort::inputs![
        "input_ids" => Tensor::from_array((shape, ids)).map_err(runtime)?,
        "attention_mask" => Tensor::from_array((shape, mask.clone())).map_err(runtime)?,
        "token_type_ids" => Tensor::from_array((shape, types)).map_err(runtime)?,
    ];
    let outputs = session.run(inputs).map_err(runtime)?;
    let (out_shape, hidden) = outputs["last_hidden_state"]
        .try_extract_tensor::<f32>()
        .map_err(runtime)?;
    let dim = out_shape[2] as usize;
    Ok((0..rows)
        .map(|r| {
            mean_pool(
                &hidden[r * width * dim..(r + 1) * width * dim],
                &mask[r * width..(r + 1) * width],
                dim,
            )
        })
        .collect())
}

/// One ONNX Runtime session of the model with `threads` intra-op threads. No arena and no
/// memory pattern: ONNX Runtime's arena keeps the peak of every batch shape it saw (1.4 GB after
/// one batch padded to 256 tokens); without it memory follows the current batch.
fn session(
    env: &ort::environment::Environment,
    files: &ModelFiles,
    options: &EmbedOptions,
    threads: usize,
) -> Result<Session, ModelError> {
    Session::builder(env)
        .map_err(runtime)?
        .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
        .map_err(runtime)?
        .with_memory_pattern(false)
        .map_err(runtime)?
        .with_intra_op_spinning(options.spinning)
        .map_err(runtime)?
        .with_config_entry("session.force_spinning_stop", "1")
        .map_err(runtime)?
        .with_intra_threads(threads)
        .map_err(runtime)?
        .with_inter_threads(1)
        .map_err(runtime)?
        .commit_from_file(&files.model)
        .map_err(runtime)
}

/// The model's tokenizer, set to truncate at `max_tokens` and not to pad.
fn load_tokenizer(files: &ModelFiles, options: &EmbedOptions) -> Result<Tokenizer, ModelError> {
    let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
        .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", files.tokenizer.display())))?;
    // tokenizer.json ships fixed padding and truncation at 128; the model takes up to 256
    // tokens, and runs are made of lines of one token count (see `embed`), so nothing pads.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: options.max_tokens.clamp(8, MAX_TOKENS),
            ..Default::default()
        }))
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

impl Embed for Embedder {
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        Embedder::embed(self, texts)
    }
}

/// Mean over the tokens the mask keeps, then L2-normalised.
fn mean_pool(hidden: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut count = 0f32;
    for (token, &m) in hidden.chunks_exact(dim).zip(mask) {
        if m != 0 {
            for (s, &h) in sum.iter_mut().zip(token) {
                *s += h;
            }
            count += 1.0;
        }
    }
    let count = count.max(1e-9);
    sum.iter_mut().for_each(|s| *s /= count);
    let norm = sum.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    sum.iter_mut().for_each(|s| *s /= norm);
    sum
}

fn cut(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_padding_and_normalises() {
        let hidden = [1.0, 0.0, 3.0, 0.0, 100.0, 100.0];
        let v = mean_pool(&hidden, &[1, 1, 0], 2);
        assert!((v[0] - 1.0).abs() < 1e-6 && v[1].abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn cut_keeps_char_boundaries() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let c = cut(&long);
        assert!(c.len() <= MAX_TEXT_BYTES && c.chars().all(|ch| ch == 'é'));
    }

    /// Writes each of `names` into `dir` (its own name as its bytes) and a SHA256SUMS pinning
    /// them all; the model's files are `model.onnx` and, if named, `model.onnx.data`.
    fn pinned_assets(dir: &Path, names: &[&str]) -> ModelFiles {
        let mut sums = String::new();
        for name in names {
            std::fs::write(dir.join(name), name).unwrap();
            sums.push_str(&format!(
                "{}  {name}\n",
                sha256_file(&dir.join(name)).unwrap()
            ));
        }
        std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
        ModelFiles {
            onnxruntime: dir.join("libonnxruntime.so"),
            model: dir.join("model.onnx"),
            tokenizer: dir.join("tokenizer.json"),
            checksums: dir.join("SHA256SUMS"),
        }
    }

    #[test]
    fn a_corrupt_asset_is_named_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let files = pinned_assets(
            dir.path(),
            &["libonnxruntime.so", "model.onnx", "tokenizer.json"],
        );
        verify(&files).unwrap();
        std::fs::write(&files.model, "truncated download").unwrap();
        let err = verify(&files).unwrap_err().to_string();
        assert!(err.contains("model.onnx: corrupt"), "{err}");
        assert!(err.contains(FETCH_COMMAND), "{err}");
    }

    #[test]
    fn the_models_weights_file_is_checked_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = pinned_assets(
            dir.path(),
            &[
                "libonnxruntime.so",
                "model.onnx",
                "model.onnx.data",
                "tokenizer.json",
            ],
        );
        let weights = dir.path().join("model.onnx.data");
        verify(&files).unwrap();
        std::fs::write(&weights, "one byte off").unwrap();
        let err = verify(&files).unwrap_err().to_string();
        assert!(err.contains("model.onnx.data: corrupt"), "{err}");
        // Pinned but gone: named as missing, not left to ONNX Runtime's error.
        std::fs::remove_file(&weights).unwrap();
        let err = verify(&files).unwrap_err().to_string();
        assert!(err.contains("model.onnx.data: missing"), "{err}");
        assert!(err.contains(FETCH_COMMAND), "{err}");
    }

    #[test]
    fn a_missing_asset_names_the_file_and_the_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("SHA256SUMS"), "00  model.onnx\n").unwrap();
        let files = ModelFiles {
            onnxruntime: dir.path().join("libonnxruntime.so"),
            model: dir.path().join("model.onnx"),
            tokenizer: dir.path().join("tokenizer.json"),
            checksums: dir.path().join("SHA256SUMS"),
        };
        let err = verify(&files).unwrap_err().to_string();
        assert!(err.contains("libonnxruntime.so: missing"), "{err}");
        assert!(err.contains(FETCH_COMMAND), "{err}");
    }
}
