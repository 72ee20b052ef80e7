#!/usr/bin/env python3
"""Builds the int8 all-MiniLM-L6-v2 model logsieve runs by default (called by
scripts/fetch-models.sh, inside a venv holding exactly scripts/quantize-requirements.txt).

Input: the fp32 model scripts/minilm_fp32.py built (models/minilm/model.onnx, hash-checked by
the caller). Three steps, the first two ONNX Runtime's own tools:

1. `onnxruntime.transformers.optimizer` fuses the BERT graph (bias + GELU, skip connection +
   LayerNorm) — the same arithmetic in fewer nodes. Alone it changes little; it is what lets
   the quantised matrix products of step 2 take their bias with them, which made int8 ~2× fp32
   instead of ~1.6× on the project's machine.
2. *dynamic* quantisation of every MatMul node with constant weights (36): int8 weights with one
   scale per output channel; at run time each activation is quantised to uint8 on the fly and
   the products run as integer matrix multiplications (VNNI on CPUs that have it). Embedding
   tables, LayerNorm, softmax, GELU and the attention products stay fp32.
3. One exception, by input length. The six feed-forward output products (1536 → 384) take the
   GELU output, whose outliers (in the [CLS] and [SEP] tokens) set the one uint8 scale of the
   whole activation tensor. In a run of 3 tokens ("ok") those two tokens are most of the
   tensor and of the mean the embedding is made of, and int8 there put "ok" at cosine 0.974 to
   fp32 (the embedding fixture's gate is 0.98); in runs of 5 tokens and more the lowest cosine
   over the 2,909 distinct lines of the seed, training and held-out sets is 0.981, and the
   products are a third of the model's arithmetic (int8 everywhere: ~1.3× the lines/s of
   keeping them fp32). So each of
   the six becomes an `If` on the run's token count: fp32 (the original weights) for runs of at
   most SHORT_TOKENS tokens, the int8 product of step 2 otherwise. logsieve's runs hold lines of
   one token count, so each line takes one branch whole.

Then the weights are written apart from the graph: OUT_DIR/model.int8.onnx holds the graph
(~180 KB) and OUT_DIR/model.int8.onnx.data the weights, each at an offset that is a multiple of
the page size. ONNX Runtime maps such weights from the file instead of parsing them out of the
graph and copying them: creating a session took ~140 ms with the weights inside the graph and
~40 ms apart (BENCHMARKS.md §2).

The output is deterministic for pinned package versions, so fetch-models.sh pins both files'
sha256.

Usage: minilm_int8.py FP32_MODEL OUT_DIR
"""

import os
import sys
import tempfile

# Runs of at most this many tokens ([CLS] and [SEP] included) keep fp32 feed-forward outputs.
SHORT_TOKENS = 8
# The files written into OUT_DIR.
GRAPH_NAME = "model.int8.onnx"
DATA_NAME = GRAPH_NAME + ".data"
# Weights of at least this many bytes go to DATA_NAME, each at a multiple of DATA_ALIGN (the
# page size: ONNX Runtime maps a weight from the file only when its offset is page-aligned).
DATA_MIN_BYTES = 1024
DATA_ALIGN = 4096


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    source, out_dir = sys.argv[1], sys.argv[2]
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(source, model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    with tempfile.TemporaryDirectory(dir=os.path.abspath(out_dir)) as tmp:
        fused_path = os.path.join(tmp, "fused.onnx")
        quantized_path = os.path.join(tmp, "quantized.onnx")
        fused.save_model_to_file(fused_path)
        quantize_dynamic(
            fused_path,
            quantized_path,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
        model = onnx.load(quantized_path)
        fp32 = onnx.load(fused_path)
    if not keep_short_runs_fp32(model, fp32):
        return 1
    onnx.checker.check_model(model)
    write_weights_apart(model, out_dir)
    onnx.save(model, os.path.join(out_dir, GRAPH_NAME))
    onnx.checker.check_model(os.path.join(out_dir, GRAPH_NAME))
    return 0


def write_weights_apart(model, out_dir: str) -> None:
    """Moves every weight of DATA_MIN_BYTES or more (the If branches' too) into
    out_dir/DATA_NAME at page-aligned offsets, in graph order, leaving a reference in its place."""
    from onnx import external_data_helper

    def tensors(graph):
        yield from graph.initializer
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    yield from tensors(attribute.g)
                for subgraph in attribute.graphs:
                    yield from tensors(subgraph)

    offset = 0
    with open(os.path.join(out_dir, DATA_NAME), "wb") as data:
        for tensor in tensors(model.graph):
            if not tensor.HasField("raw_data") or len(tensor.raw_data) < DATA_MIN_BYTES:
                continue
            padding = -offset % DATA_ALIGN
            data.write(b"\0" * padding)
            offset += padding
            raw = tensor.raw_data
            data.write(raw)
            external_data_helper.set_external_data(tensor, DATA_NAME, offset=offset, length=len(raw))
            tensor.ClearField("raw_data")
            offset += len(raw)


def keep_short_runs_fp32(model, fp32) -> bool:
    """Step 3: wraps each int8 feed-forward output product of `model` in an `If` whose other
    branch is the fp32 product of `fp32` (the fused graph before quantisation)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    fp32_weights = {i.name: i for i in fp32.graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def ffn_out(nodes, op, table):
        return [
            n
            for n in nodes
            if n.op_type == op and n.input[1] in table and tuple(table[n.input[1]].dims) == (1536, 384)
        ]

    int8_products = ffn_out(graph.node, "MatMulInteger", weights)
    fp32_products = ffn_out(fp32.graph.node, "MatMul", fp32_weights)
    if len(int8_products) != 6 or len(fp32_products) != 6:
        print(
            f"expected 6 feed-forward output products, found {len(int8_products)} int8 and "
            f"{len(fp32_products)} fp32",
            file=sys.stderr,
        )
        return False

    # The condition, computed once: the run's token count <= SHORT_TOKENS.
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(1, dtype=np.int64), "short_run_axis"),
            numpy_helper.from_array(np.array(SHORT_TOKENS, dtype=np.int64), "short_run_tokens"),
        ]
    )
    nodes = [
        helper.make_node("Shape", ["input_ids"], ["short_run_shape"], name="short_run_shape"),
        helper.make_node(
            "Gather", ["short_run_shape", "short_run_axis"], ["short_run_length"], name="short_run_length", axis=0
        ),
        helper.make_node(
            "LessOrEqual", ["short_run_length", "short_run_tokens"], ["short_run"], name="short_run"
        ),
    ]
    replaced = {}  # first node of a quantised product -> the If standing in for it
    moved = set()
    for k, (int8_product, fp32_product) in enumerate(zip(int8_products, fp32_products)):
        # DynamicQuantizeLinear(x) -> MatMulInteger -> Cast -> Mul(scales) -> y
        x = producer[int8_product.input[0]].input[0]
        last = consumers[consumers[int8_product.output[0]][0].output[0]][0]
        y = last.output[0]
        # Every node y depends on, back to x: the quantised product and its scales.
        group, stack = set(), [last]
        while stack:
            n = stack.pop()
            if n.name in group:
                continue
            group.add(n.name)
            stack.extend(producer[i] for i in n.input if i != x and i in producer)
        in_order = [n for n in graph.node if n.name in group]
        weight = f"ffn_out_fp32_{k}"
        graph.initializer.append(
            numpy_helper.from_array(numpy_helper.to_array(fp32_weights[fp32_product.input[1]]), weight)
        )
        short = helper.make_graph(
            [helper.make_node("MatMul", [x, weight], [f"{y}_fp32"], name=f"ffn_out_fp32_{k}")],
            f"ffn_out_short_{k}",
            [],
            [helper.make_tensor_value_info(f"{y}_fp32", TensorProto.FLOAT, None)],
        )
        long_nodes = []
        for n in in_order:
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            copy.output[:] = [f"{o}_int8" if o == y else o for o in copy.output]
            long_nodes.append(copy)
        long = helper.make_graph(
            long_nodes,
            f"ffn_out_long_{k}",
            [],
            [helper.make_tensor_value_info(f"{y}_int8", TensorProto.FLOAT, None)],
        )
        replaced[in_order[0].name] = helper.make_node(
            "If", ["short_run"], [y], name=f"ffn_out_{k}", then_branch=short, else_branch=long
        )
        moved |= group
    for n in graph.node:
        if n.name in replaced:
            nodes.append(replaced[n.name])
        if n.name not in moved:
            nodes.append(n)
    del graph.node[:]
    graph.node.extend(nodes)
    return True


if __name__ == "__main__":
    sys.exit(main())
