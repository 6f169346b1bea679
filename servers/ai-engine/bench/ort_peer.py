"""ONNX Runtime peer for `cargo xtask bench ai` (driven by ai-bench over stdin/stdout).

Builds all-MiniLM-L6-v2 as an ONNX graph with `onnx.helper`, straight from the same
`model.safetensors` the engine maps (no PyTorch): embeddings, 6 encoder layers of
MatMul/Add/Reshape/Transpose/Softmax/LayerNormalization/Erf, mean pooling and L2
normalisation, so it times exactly what the engine's `embed_ids` does. A dynamically
quantised int8 copy (`onnxruntime.quantization.quantize_dynamic`, per-channel int8 weights) is
the int8 peer. Both sessions pin one thread (`intra_op_num_threads = 1`, sequential execution)
at ORT's default (full) graph optimisation.

Before any timing, the f32 graph is checked against the PyTorch reference fixture: every
sentence must reach cosine >= 0.9999, or this exits with status 1.

Protocol (one JSON object per line):
- first line out: {"ort_version", "numpy_version", "onnx_version", "f32": {min_cos, mean_cos,
  max_diff}, "int8": {...}}
- then, per line in {"model": "f32" | "int8", "ids": [...], "runs": k}: k timed runs of the
  whole session.run, answered with {"ms": [...]}; with "embed": true instead, one run answered
  with {"embedding": [...]} (the bench's larger accuracy set). EOF ends the peer.

Usage: python ort_peer.py <dir with model.safetensors> <minilm-reference.json> <work dir>
"""

import json
import os
import struct
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HIDDEN, HEADS, LAYERS, EPS = 384, 12, 6, 1e-12
HEAD_DIM = HIDDEN // HEADS


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        a, b = meta["data_offsets"]
        out[name.removeprefix("bert.")] = (
            np.frombuffer(data, dtype="<f4", count=(b - a) // 4, offset=base + a)
            .reshape(meta["shape"])
            .astype(np.float32)
        )
    return out


def build_graph(w):
    nodes, inits = [], []
    counter = [0]

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, inputs, **attrs):
        counter[0] += 1
        out = f"{op.lower()}_{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def const_i64(name, values):
        return init(name, np.array(values, dtype=np.int64))

    def linear(x, prefix):
        wt = init(prefix + ".weight_t", w[prefix + ".weight"].T)  # [in, out]
        b = init(prefix + ".bias", w[prefix + ".bias"])
        return node("Add", [node("MatMul", [x, wt]), b])

    def layer_norm(x, prefix):
        g = init(prefix + ".LayerNorm.weight", w[prefix + ".LayerNorm.weight"])
        b = init(prefix + ".LayerNorm.bias", w[prefix + ".LayerNorm.bias"])
        return node("LayerNormalization", [x, g, b], axis=-1, epsilon=EPS)

    # Embeddings: word[ids] + position[0..n] + token_type[0], then LayerNorm.
    word = init("word_embeddings", w["embeddings.word_embeddings.weight"])
    pos = init("position_embeddings", w["embeddings.position_embeddings.weight"])
    tt0 = init("token_type0", w["embeddings.token_type_embeddings.weight"][0])
    n = node("Shape", ["input_ids"], start=1, end=2)
    zero = const_i64("zero1", [0])
    axis0 = const_i64("axis0", [0])
    pos_rows = node("Slice", [pos, zero, n, axis0])
    x = node("Gather", [word, "input_ids"], axis=0)  # [1, n, H]
    x = node("Add", [node("Add", [x, pos_rows]), tt0])
    x = layer_norm(x, "embeddings")

    heads_shape = const_i64("heads_shape", [0, 0, HEADS, HEAD_DIM])
    merge_shape = const_i64("merge_shape", [0, 0, HIDDEN])
    scale = init("attn_scale", np.array(1.0 / np.sqrt(HEAD_DIM), dtype=np.float32))
    half = init("half", np.array(0.5, dtype=np.float32))
    one = init("one", np.array(1.0, dtype=np.float32))
    inv_sqrt2 = init("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), dtype=np.float32))
    for l in range(LAYERS):
        p = f"encoder.layer.{l}"
        q = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.query"), heads_shape])], perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.key"), heads_shape])], perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.value"), heads_shape])], perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k]), scale])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("MatMul", [probs, v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = linear(ctx, p + ".attention.output.dense")
        x = layer_norm(node("Add", [attn, x]), p + ".attention.output")
        h = linear(x, p + ".intermediate.dense")
        gelu = node("Mul", [node("Mul", [h, half]), node("Add", [node("Erf", [node("Mul", [h, inv_sqrt2])]), one])])
        out = linear(gelu, p + ".output.dense")
        x = layer_norm(node("Add", [out, x]), p + ".output")

    # Mean pooling over tokens, L2 normalisation.
    pooled = node("ReduceMean", [x, const_i64("axis1", [1])], keepdims=0)  # [1, H]
    norm = node("Sqrt", [node("ReduceSum", [node("Mul", [pooled, pooled]), const_i64("axis_last", [-1])], keepdims=1)])
    emb = node("Div", [pooled, norm])
    nodes.append(helper.make_node("Identity", [emb], ["embedding"]))

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "n"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, HIDDEN])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run(sess, ids):
    return sess.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})[0][0]


def accuracy(sess, sentences):
    rows = []
    for s in sentences:
        got = run(sess, s["input_ids"]).astype(np.float64)
        want = np.asarray(s["embedding"], dtype=np.float64)
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        rows.append((cos, float(np.max(np.abs(got - want)))))
    return {
        "min_cos": min(r[0] for r in rows),
        "mean_cos": sum(r[0] for r in rows) / len(rows),
        "max_diff": max(r[1] for r in rows),
    }


def main():
    model_dir, fixture, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    weights = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    f32_path = os.path.join(work, "minilm-f32.onnx")
    int8_path = os.path.join(work, "minilm-int8.onnx")
    onnx.save(build_graph(weights), f32_path)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(f32_path, int8_path, per_channel=True, weight_type=QuantType.QInt8)
    sessions = {"f32": session(f32_path), "int8": session(int8_path)}
    with open(fixture) as f:
        sentences = json.load(f)["sentences"]
    acc = {name: accuracy(s, sentences) for name, s in sessions.items()}
    if acc["f32"]["min_cos"] < 0.9999:
        print(f"ort_peer: the ONNX graph does not match the reference: {acc['f32']}", file=sys.stderr)
        sys.exit(1)
    hello = {
        "ort_version": ort.__version__,
        "onnx_version": onnx.__version__,
        "numpy_version": np.__version__,
        **acc,
    }
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        sess = sessions[req["model"]]
        if req.get("embed"):
            print(json.dumps({"embedding": run(sess, req["ids"]).tolist()}), flush=True)
            continue
        feed = {"input_ids": np.asarray([req["ids"]], dtype=np.int64)}
        times = []
        for _ in range(int(req["runs"])):
            t = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"ms": times}), flush=True)


if __name__ == "__main__":
    main()
