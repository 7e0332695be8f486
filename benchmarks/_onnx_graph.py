"""The HybridModel network as an ONNX graph fed the tf_keras model's weights, for the prediction
routes benchmark (``prediction_routes.py``); not used by the tools.

Covers the plain architecture (``main_input`` → Conv1D/BatchNorm stack → reshape by the pool size
→ bidirectional LSTMs → Dense → genic/phase softmax), in NWC layout. ``conv="direct"`` uses ONNX
``Conv``; ``conv="dft"`` computes each Conv1D by overlap-save with a real DFT written as matrix
products (``N``-point blocks, per-frequency channel mixing): about a third of the direct
convolution's multiply-adds for 96 → 96 channels and 10 taps, at the cost of layout changes.
"""
import numpy as np


def _dft_plan(taps, n_min=32):
    """(block length N, outputs per block m = N - taps + 1)."""
    n = n_min
    while n - (taps - 1) < 2 * (taps - 1):
        n *= 2
    return n, n - (taps - 1)


def dft_matrices(kernel, n):
    """Forward transform D (n × 2F), per-frequency mixing M (F × 2C × 2O) and inverse G
    (2F × m) such that a block's cross-correlation with ``kernel`` (taps × C × O) is
    (seg.T @ D → per-frequency [a|b] @ M → @ G)."""
    taps = kernel.shape[0]
    m = n - (taps - 1)
    nf = n // 2 + 1
    f = np.arange(nf)
    ang = 2 * np.pi * np.outer(np.arange(n), f) / n
    D = np.concatenate([np.cos(ang), -np.sin(ang)], 1)
    kh = np.einsum("dco,df->fco", kernel.astype(np.float64),
                   np.exp(-2j * np.pi * np.outer(np.arange(taps), f) / n))
    P, Q = kh.real, kh.imag
    M = np.concatenate([np.concatenate([P, -Q], 2), np.concatenate([Q, P], 2)], 1)
    w = np.full(nf, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    angt = 2 * np.pi * np.outer(f, np.arange(m)) / n
    G = np.concatenate([w[:, None] * np.cos(angt), -w[:, None] * np.sin(angt)], 0) / n
    return D, M, G


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self._names = [], [], set()

    def const(self, name, arr):
        from onnx import numpy_helper
        if name not in self._names:
            self._names.add(name)
            arr = np.asarray(arr)
            self.inits.append(numpy_helper.from_array(
                arr.astype(np.float32) if arr.dtype.kind == "f" else arr, name))
        return name

    def ints(self, *values):
        return self.const("i64_" + "_".join(map(str, values)), np.array(values, np.int64))

    def op(self, op_type, inputs, output=None, **attrs):
        from onnx import helper
        output = output or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output


def _conv_direct(g, x, kernel, bias, name):
    taps = kernel.shape[0]
    x = g.op("Transpose", [x], perm=[0, 2, 1])
    x = g.op("Conv", [x, g.const(name + "_w", kernel.transpose(2, 1, 0)),
                      g.const(name + "_b", bias)],
             pads=[(taps - 1) // 2, taps - 1 - (taps - 1) // 2])
    return g.op("Transpose", [x], perm=[0, 2, 1])


def _conv_dft(g, x, width, kernel, bias, name):
    taps, C, O = kernel.shape
    n, m = _dft_plan(taps)
    nf = n // 2 + 1
    blocks = -(-width // m)
    left = (taps - 1) // 2      # TensorFlow's 'same': the odd pad goes right
    D, M, G = dft_matrices(kernel, n)
    x = g.op("Pad", [x, g.ints(0, left, 0, 0, blocks * m + m - width - left, 0)])
    main = g.op("Reshape", [g.op("Slice", [x, g.ints(0), g.ints(blocks * m), g.ints(1)]),
                            g.ints(0, blocks, m, C)])
    tail = g.op("Reshape", [g.op("Slice", [x, g.ints(m), g.ints(m + blocks * m), g.ints(1)]),
                            g.ints(0, blocks, m, C)])
    tail = g.op("Slice", [tail, g.ints(0), g.ints(taps - 1), g.ints(2)])
    seg = g.op("Reshape", [g.op("Concat", [main, tail], axis=2), g.ints(-1, n, C)])
    X = g.op("MatMul", [g.const(name + "_Dt", D.T.copy()), seg])           # J, 2F, C
    X = g.op("Transpose", [g.op("Reshape", [X, g.ints(-1, 2, nf, C)])], perm=[2, 0, 1, 3])
    Z = g.op("MatMul", [g.op("Reshape", [X, g.ints(nf, -1, 2 * C)]), g.const(name + "_M", M)])
    Z = g.op("Transpose", [g.op("Reshape", [Z, g.ints(nf, -1, 2, O)])], perm=[1, 2, 0, 3])
    y = g.op("MatMul", [g.const(name + "_Gt", G.T.copy()),
                        g.op("Reshape", [Z, g.ints(-1, 2 * nf, O)])])       # J, m, O
    y = g.op("Reshape", [y, g.ints(-1, blocks * m, O)])
    y = g.op("Slice", [y, g.ints(0), g.ints(width), g.ints(1)])
    return g.op("Add", [y, g.const(name + "_b", bias)])


def _lstm_gates(a):
    """Keras gate order (i, f, c, o) → ONNX (i, o, f, c) along the last axis."""
    i, f, c, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1)


def build(model, width, conv="direct"):
    """ONNX ModelProto of ``model`` (tf_keras, plain architecture with phase) for rows of
    ``width`` bp: input ``x`` (B, width, 4) float16, outputs ``genic`` and ``phase``
    (B, width, 4) float32."""
    from onnx import TensorProto, helper

    g = _Graph()
    x = g.op("Cast", ["x"], to=TensorProto.FLOAT)
    for layer in model.layers:
        kind = type(layer).__name__
        w = layer.get_weights()
        if kind == "Conv1D":
            x = (_conv_dft(g, x, width, w[0], w[1], layer.name) if conv == "dft"
                 else _conv_direct(g, x, w[0], w[1], layer.name))
            x = g.op("Relu", [x])
        elif kind == "BatchNormalization":
            gamma, beta, mean, var = w
            scale = gamma / np.sqrt(var + layer.epsilon)
            x = g.op("Add", [g.op("Mul", [x, g.const(layer.name + "_s", scale)]),
                             g.const(layer.name + "_t", beta - mean * scale)])
        elif kind == "Reshape" and layer.name == "reshape":
            x = g.op("Reshape", [x, g.ints(0, -1, layer.target_shape[-1])])
            x = g.op("Transpose", [x], perm=[1, 0, 2])                        # T, B, F
        elif kind == "Bidirectional":
            H = w[1].shape[0]
            W = np.stack([_lstm_gates(w[0]).T, _lstm_gates(w[3]).T])
            R = np.stack([_lstm_gates(w[1]).T, _lstm_gates(w[4]).T])
            B = np.stack([np.concatenate([_lstm_gates(b), np.zeros(4 * H)]) for b in (w[2], w[5])])
            y = g.op("LSTM", [x, g.const(layer.name + "_W", W), g.const(layer.name + "_R", R),
                              g.const(layer.name + "_B", B)],
                     hidden_size=H, direction="bidirectional")               # T, 2, B, H
            x = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), g.ints(0, 0, 2 * H)])
        elif kind == "Dense":
            x = g.op("Transpose", [x], perm=[1, 0, 2])                        # B, T, 2H
            x = g.op("Add", [g.op("MatMul", [x, g.const(layer.name + "_k", w[0])]),
                             g.const(layer.name + "_b", w[1])])
            half = w[0].shape[1] // 2
            g.nodes.append(helper.make_node("Split", [x, g.ints(half, half)], ["genic_z", "phase_z"],
                                            axis=-1))
    for name in ("genic", "phase"):
        g.op("Softmax", [g.op("Reshape", [name + "_z", g.ints(0, -1, 4)])], output=name, axis=-1)
    graph = helper.make_graph(
        g.nodes, "hybridmodel",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [None, width, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("genic", "phase")],
        g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def session(model, width, threads, conv="direct"):
    """An ONNX Runtime CPU session of :func:`build` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(build(model, width, conv).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
