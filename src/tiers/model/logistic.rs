//! The logistic-regression head: a multinomial model over sentence embeddings, trained by
//! `logsieve train` (linfa-logistic) and stored as plain JSON (labels, weights, bias), so a
//! user can read, diff and version it. Prediction is a dot product and a softmax.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Head {
    /// What produced the embeddings it was trained on.
    pub embedding_model: String,
    pub labels: Vec<String>,
    /// One row of `dim` weights per label.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    /// How it was trained (data, mode, rows, seed); informational.
    pub trained: serde_json::Value,
}

impl Head {
    pub fn load(path: &Path) -> anyhow::Result<Head> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the model head {}: {e} (train one with `logsieve train`, or set tiers.model.head)", path.display())
        })?;
        let head: Head = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a logsieve model head: {e}", path.display()))?;
        let dim = super::embed::DIM;
        if head.labels.is_empty()
            || head.weights.len() != head.labels.len()
            || head.bias.len() != head.labels.len()
            || head.weights.iter().any(|w| w.len() != dim)
        {
            anyhow::bail!(
                "{}: malformed head (expected one {dim}-weight row and one bias per label)",
                path.display()
            );
        }
        Ok(head)
    }

    /// Probabilities per label (softmax of the scores).
    pub fn probabilities(&self, embedding: &[f32]) -> Vec<f32> {
        let scores: Vec<f32> = self
            .weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| w.iter().zip(embedding).map(|(a, x)| a * x).sum::<f32>() + b)
            .collect();
        softmax(&scores)
    }

    /// The most probable label's index and probability.
    pub fn predict(&self, embedding: &[f32]) -> (usize, f32) {
        let p = self.probabilities(embedding);
        p.iter().copied().enumerate().fold(
            (0, f32::MIN),
            |best, (i, v)| if v > best.1 { (i, v) } else { best },
        )
    }
}

pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicts_the_label_whose_weights_point_at_the_embedding() {
        let dim = super::super::embed::DIM;
        let mut a = vec![0f32; dim];
        a[0] = 8.0;
        let mut b = vec![0f32; dim];
        b[1] = 8.0;
        let head = Head {
            embedding_model: "test".into(),
            labels: vec!["A".into(), "B".into()],
            weights: vec![a, b],
            bias: vec![0.0, 0.0],
            trained: serde_json::Value::Null,
        };
        let mut x = vec![0f32; dim];
        x[1] = 1.0;
        let (i, p) = head.predict(&x);
        assert_eq!(i, 1);
        assert!(p > 0.99);
        let p = head.probabilities(&vec![0f32; dim]);
        assert!((p[0] - 0.5).abs() < 1e-6, "no evidence: even odds");
    }
}
