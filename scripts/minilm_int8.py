#!/usr/bin/env python3
"""Builds the int8 all-MiniLM-L6-v2 model logsieve runs by default (called by
scripts/fetch-models.sh, inside a venv holding exactly scripts/quantize-requirements.txt).

Input: the fp32 model scripts/minilm_fp32.py built (models/minilm/model.onnx, hash-checked by
the caller). Two steps, both ONNX Runtime's own tools:

1. `onnxruntime.transformers.optimizer` fuses the BERT graph (bias + GELU, skip connection +
   LayerNorm) — the same arithmetic in fewer nodes. Alone it changes little; it is what lets
   the quantised matrix products of step 2 take their bias with them, which made int8 ~2× fp32
   instead of ~1.6× on the project's machine.
2. *dynamic* quantisation of the MatMul nodes with constant weights: int8 weights with one
   scale per output channel; at run time each activation is quantised to uint8 on the fly and
   the products run as integer matrix multiplications (VNNI on CPUs that have it). The six
   feed-forward output products (1536 → 384) stay fp32: their input, after GELU, has outliers
   that one uint8 scale per tensor cannot hold, and quantising them put the embedding of the
   shortest lines ("ok") at cosine 0.974 to fp32; without them the lowest is 0.985 (the
   embedding fixture's gate is 0.98). Embedding tables, LayerNorm, softmax, GELU stay fp32.

The output is deterministic for pinned package versions, so fetch-models.sh pins its sha256.

Usage: minilm_int8.py FP32_MODEL OUT
"""

import os
import sys
import tempfile


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    source, out = sys.argv[1], sys.argv[2]
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(source, model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        fused_path = os.path.join(tmp, "fused.onnx")
        fused.save_model_to_file(fused_path)
        graph = onnx.load(fused_path).graph
        weights = {i.name: tuple(i.dims) for i in graph.initializer}
        ffn_out = [
            n.name
            for n in graph.node
            if n.op_type == "MatMul" and weights.get(n.input[1]) == (1536, 384)
        ]
        if len(ffn_out) != 6:
            print(f"expected 6 feed-forward output MatMuls, found {len(ffn_out)}", file=sys.stderr)
            return 1
        quantize_dynamic(
            fused_path,
            out,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=ffn_out,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
