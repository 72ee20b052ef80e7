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
//!
//! Every asset is checked against `models/SHA256SUMS` before use, so a missing or corrupt file
//! is one clear message naming it and the command that fetches it, never a dlopen backtrace.

use std::path::{Path, PathBuf};
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
    verify_assets(files, [&files.onnxruntime, &files.model, &files.tokenizer])
}

/// Checks that each of `paths` (assets of `files`) exists and matches its pinned hash.
fn verify_assets<'a>(
    files: &ModelFiles,
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<(), ModelError> {
    let sums = std::fs::read_to_string(&files.checksums).map_err(|e| ModelError::Asset {
        file: files.checksums.clone(),
        problem: format!("cannot read the checksum list: {e}"),
    })?;
    let base = files.checksums.parent().unwrap_or(Path::new("."));
    for path in paths {
        let expected = sums.lines().find_map(|line| {
            let (hash, name) = line.split_once(char::is_whitespace)?;
            let name = name.trim().trim_start_matches('*');
            (base.join(name) == *path || Path::new(name) == path.as_path())
                .then(|| hash.to_string())
        });
        let actual = sha256_file(path).map_err(|e| ModelError::Asset {
            file: path.clone(),
            problem: format!("missing or unreadable ({e})"),
        })?;
        match expected {
            Some(expected) if expected == actual => {}
            Some(_) => {
                return Err(ModelError::Asset {
                    file: path.clone(),
                    problem: "corrupt: its sha256 does not match models/SHA256SUMS".into(),
                })
            }
            None => {
                return Err(ModelError::Asset {
                    file: path.clone(),
                    problem: format!("not listed in {}", files.checksums.display()),
                })
            }
        }
    }
    Ok(())
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
    /// ONNX Runtime's intra-op threads.
    pub threads: usize,
    /// Most lines in one ONNX run.
    pub batch_size: usize,
    /// A line's tokens past this many are not looked at (at most [`MAX_TOKENS`]).
    pub max_tokens: usize,
    /// ONNX Runtime's threads spin for work between the operators of a run instead of sleeping,
    /// and stop spinning when the run returns (`session.force_spinning_stop`), so an idle tier
    /// keeps no core busy. On in logsieve (~1.07× lines/s here, BENCHMARKS.md §2); the
    /// benchmark measures it off.
    pub spinning: bool,
    /// Lines of different token counts share a run, padded to the longest (logsieve before
    /// 2026-11-30). Off in logsieve; the benchmark measures it.
    pub mixed_lengths: bool,
}

impl EmbedOptions {
    pub fn new(threads: usize, batch_size: usize, max_tokens: usize) -> EmbedOptions {
        EmbedOptions {
            threads,
            batch_size,
            max_tokens,
            spinning: true,
            mixed_lengths: false,
        }
    }
}

pub struct Embedder {
    session: Session,
    tokenizer: Tokenizer,
    batch_size: usize,
    mixed_lengths: bool,
}

impl Embedder {
    /// Verifies and loads the model. Each asset is checked before it is loaded; the model's
    /// check (most of the hashing: ~60 ms for its 70 MB) runs while the runtime library and the
    /// tokenizer, checked first, load, and the model is parsed only once it has passed.
    pub fn load(files: &ModelFiles, options: &EmbedOptions) -> Result<Embedder, ModelError> {
        verify_assets(files, [&files.onnxruntime, &files.tokenizer])?;
        let (model_checked, loaded) = std::thread::scope(|scope| {
            let check = scope.spawn(|| verify_assets(files, [&files.model]));
            let loaded = environment(&files.onnxruntime)
                .and_then(|env| Ok((env, load_tokenizer(files, options)?)));
            (check.join(), loaded)
        });
        model_checked.map_err(|_| ModelError::Runtime("the model's check panicked".into()))??;
        let (env, tokenizer) = loaded?;
        let runtime = |e: ort::Error| ModelError::Runtime(e.to_string());
        // No arena and no memory pattern: ONNX Runtime's arena keeps the peak of every batch
        // shape it saw (1.4 GB after one batch padded to 256 tokens); without it memory
        // follows the current batch.
        let session = Session::builder(env)
            .map_err(runtime)?
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .with_memory_pattern(false)
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .with_intra_op_spinning(options.spinning)
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .with_config_entry("session.force_spinning_stop", "1")
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .with_intra_threads(options.threads.max(1))
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| ModelError::Runtime(e.to_string()))?
            .commit_from_file(&files.model)
            .map_err(runtime)?;
        Ok(Embedder {
            session,
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
        let mut out = vec![Vec::new(); encodings.len()];
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
            let batch: Vec<&tokenizers::Encoding> =
                order[start..end].iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in order[start..end].iter().zip(self.run(&batch)?) {
                out[i] = vector;
            }
            start = end;
        }
        Ok(out)
    }

    /// One ONNX run over encodings of similar length, padded here to the longest.
    fn run(&mut self, encodings: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, ModelError> {
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
        let runtime = |e: ort::Error| ModelError::Runtime(e.to_string());
        let inputs = ort::inputs![
            "input_ids" => Tensor::from_array((shape, ids)).map_err(runtime)?,
            "attention_mask" => Tensor::from_array((shape, mask.clone())).map_err(runtime)?,
            "token_type_ids" => Tensor::from_array((shape, types)).map_err(runtime)?,
        ];
        let outputs = self.session.run(inputs).map_err(runtime)?;
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

    #[test]
    fn a_corrupt_asset_is_named_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["libonnxruntime.so", "model.onnx", "tokenizer.json"];
        let mut sums = String::new();
        for name in names {
            std::fs::write(dir.path().join(name), name).unwrap();
            sums.push_str(&format!(
                "{}  {name}\n",
                sha256_file(&dir.path().join(name)).unwrap()
            ));
        }
        std::fs::write(dir.path().join("SHA256SUMS"), sums).unwrap();
        let files = ModelFiles {
            onnxruntime: dir.path().join(names[0]),
            model: dir.path().join(names[1]),
            tokenizer: dir.path().join(names[2]),
            checksums: dir.path().join("SHA256SUMS"),
        };
        verify(&files).unwrap();
        std::fs::write(&files.model, "truncated download").unwrap();
        let err = verify(&files).unwrap_err().to_string();
        assert!(err.contains("model.onnx: corrupt"), "{err}");
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
