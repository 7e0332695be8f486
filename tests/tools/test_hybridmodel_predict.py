"""HybridModel.py test mode (lib/helixtune/prediction.py): predictions, overlap, --eval, bad input.

Acceptance 2: upstream's tiny_model.h5 reproduces upstream's predictions within float16
rounding; our model files load in TensorFlow 2.15 (.venv-tf215) with the same predictions.
Acceptance 5: overlap predictions equal the core-averaged windows (property tests) and do not
depend on the batch size."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handmade_h5 import start_ends
from helixtune import model_inputs, network, prediction
from helixtune_tools import HybridModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
TF215 = ROOT / ".venv-tf215" / "bin" / "python"
TINY = dict(cnn_layers=1, lstm_layers=1, units=4, filter_depth=4, kernel_size=5,
            predict_phase=True)


@pytest.fixture(scope="module", autouse=True)
def tensorflow():
    os.environ.setdefault("HELIXTUNE_TF_THREADS", "2")
    return network.setup_tensorflow(threads=2)


@pytest.fixture(scope="module")
def tiny3(tmp_path_factory):
    """A tiny random model with pool size 3, saved; and its Predictor."""
    network.tf_modules()[1].utils.set_random_seed(3)
    model = network.build_model(pool_size=3, **TINY)
    path = tmp_path_factory.mktemp("m") / "tiny3.h5"
    network.save_model(model, path)
    return path, prediction.Predictor(model)


def write_data(path, lengths, L, seed=0, y=False, keep=None, n_bams=0):
    """A data file like fasta2h5 writes (random bases), optionally with y/sample_weights/phases
    and coverage; ``keep``: indices of rows to keep (a filtered file)."""
    rng = np.random.default_rng(seed)
    X, se, ids = [], [], []
    for k, n in enumerate(lengths):
        onehot = np.eye(4, dtype=np.float16)[rng.integers(0, 4, n)]  # C, A, T, G
        plus, minus = [], []
        for a in range(0, n, L):
            chunk = onehot[a:a + L]
            pad = np.zeros((L - len(chunk), 4), np.float16)
            plus.append(np.concatenate([chunk, pad]))
            # reverse complement (C<->G, A<->T is the reversed channel order), padding last
            minus.insert(0, np.concatenate([chunk[::-1, ::-1], pad]))
        X += plus + minus
        se += start_ends(n, L)
        ids += [f"seq{k}".encode()] * (len(plus) + len(minus))
    X, se, ids = np.array(X), np.array(se), np.array(ids, dtype="S50")
    if keep is not None:
        X, se, ids = X[keep], se[keep], ids[keep]
    with h5py.File(path, "w") as h5:
        d = h5.create_group("data")
        d["X"], d["start_ends"], d["seqids"] = X, se, ids
        d["species"] = np.array([b"sp"] * len(X), dtype="S25")
        valid = X.sum(-1) > 0
        if y:
            cls = rng.integers(0, 4, X.shape[:2])
            d["y"] = (np.eye(4, dtype=np.int8)[cls] * valid[..., None]).astype(np.int8)
            d["sample_weights"] = (valid & (rng.random(X.shape[:2]) > 0.05)).astype(np.int8)
            ph = rng.integers(0, 4, X.shape[:2])
            d["phases"] = (np.eye(4, dtype=np.int8)[ph] * valid[..., None]).astype(np.int8)
        if n_bams:
            ev = h5.create_group("evaluation")
            for name in ("rnaseq_coverage", "rnaseq_spliced_coverage"):
                cov = rng.integers(0, 50, X.shape[:2] + (n_bams,))
                cov[~valid] = -1
                ev[name] = cov
    return path


def collect(stream, n, L, n_out=2):
    """Assemble a prediction stream (model layout) into (n, L, 4) arrays."""
    outs = [np.full((n, L, 4), np.nan, np.float32) for _ in range(n_out)]
    order = []
    for a, preds, _ in stream:
        order.append(a)
        for o, p in zip(outs, preds):
            o[a:a + len(p)] = p
    assert order == sorted(order)
    return outs


def naive_overlap(data, predictor, offset, core):
    """Reference: every window predicted alone; each position = mean of the cores covering it."""
    L = data.length
    W = L - L % predictor.pool_size
    trim = (W - core) // 2
    x = model_inputs.to_model_layout(h5py.File(data.path)["data/X"][:].astype(np.float32), data.shifts)
    outs = [np.zeros((data.n_rows, L, 4)) for _ in range(2)]
    for r0, r1 in prediction.contiguous_ranges(data.start_ends, data.seqids, data.species):
        stream = x[r0:r1].reshape(-1, 4)
        starts = prediction.window_offsets(len(stream), W, offset)
        sums = [np.zeros((len(stream), 4)) for _ in range(2)]
        count = np.zeros(len(stream))
        for k, s in enumerate(starts):
            preds = predictor(stream[None, s:s + W])
            lo = s + (trim if k else 0)
            hi = s + W - (trim if k < len(starts) - 1 else 0)
            for o in range(2):
                sums[o][lo:hi] += preds[o][0, lo - s:hi - s]
            count[lo:hi] += 1
        assert (count > 0).all()
        for o in range(2):
            outs[o][r0:r1] = (sums[o] / count[:, None]).reshape(r1 - r0, L, 4)
    return outs


# ---- acceptance 2 ------------------------------------------------------------------------------

@pytest.mark.realdata
def test_upstream_model_reproduces_upstream_predictions(shared_data, tmp_path, run_tool):
    up = shared_data / "helixer_h5" / "upstream_0.3.6"
    out = tmp_path / "pred.h5"
    code, err = run_tool(HybridModel.main, ["-l", up / "tiny_model.h5", "-t",
                                            up / "mpusilla.fasta2h5.h5", "-p", out,
                                            "--val-test-batch-size", 5])
    assert code == 0, err
    with h5py.File(out) as a, h5py.File(up / "mpusilla.tiny_model.predictions.h5") as b, \
            h5py.File(up / "mpusilla.fasta2h5.h5") as x:
        L = x["data/X"].shape[1]
        shifts = model_inputs.minus_padding_shifts(x["data/start_ends"][:], L)
        assert shifts.any()  # the file has padded minus rows
        for name in ("predictions", "predictions_phase"):
            ours, ref = a[name], b[name]
            for prop in ("dtype", "shape", "chunks", "maxshape", "compression",
                         "compression_opts", "shuffle"):
                assert getattr(ours, prop) == getattr(ref, prop), (name, prop)
            # upstream: minus padding first; ours: aligned with data/X (padding last)
            mine = model_inputs.to_model_layout(ours[:].astype(np.float32), shifts)
            theirs = ref[:].astype(np.float32)
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-3)  # 1 float16 ulp at 1
            assert np.mean(mine != theirs) < 0.01
        # aligned with data/X: the padding of every row is last, like data/X's
        valid = x["data/X"][:].sum(-1) > 0
        for i in np.flatnonzero(shifts):
            n = valid[i].sum()
            assert valid[i, :n].all()
            np.testing.assert_allclose(a["predictions"][i, :n].astype(np.float32),
                                       b["predictions"][i, L - n:].astype(np.float32), atol=1e-3)
        assert set(a.attrs) == set(b.attrs)
        assert a.attrs["model_config"] == b.attrs["model_config"]
        assert a.attrs["n_bases_removed"] == 0 and a.attrs["n_bases_removed"].dtype == np.int64
        md5, path = a.attrs["model_md5sum"].split("  ")
        assert md5 == b.attrs["model_md5sum"].split("  ")[0] and path == str(up / "tiny_model.h5")
        assert h5py.check_string_dtype(a.attrs.get_id("timestamp").dtype).encoding == "utf-8"


TF215_SCRIPT = r"""
import sys
import numpy as np
import tensorflow as tf
for model_path, x_path, out_path in zip(*[iter(sys.argv[1:])] * 3):
    model = tf.keras.models.load_model(model_path)          # compile=True, as Helixer does
    out = model.predict(np.load(x_path), verbose=0)
    out = out if isinstance(out, list) else [out]
    np.savez(out_path, *out, version=tf.__version__)
"""


def _tf215_case(tmp_path, kind):
    """Save a small model of ``kind``; return (path, input, our predictions)."""
    tf, K = network.tf_modules()
    K.utils.set_random_seed(1)
    model = network.build_model(cnn_layers=2, lstm_layers=2, units=4, filter_depth=4,
                                kernel_size=5, pool_size=9, predict_phase=kind != "no_phase")
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, 90))]
    if kind == "coverage":
        model = network.insert_coverage_before_hat(model, 2, 9, True,
                                                   post_coverage_hidden_layer=True, hidden_units=3)
        x = np.concatenate([x, rng.random((2, 90, 4), dtype=np.float32)], -1)
    if kind == "trained":  # with optimizer state, as training saves it
        model.compile(optimizer=K.optimizers.AdamW(learning_rate=1e-3, weight_decay=3.5e-5,
                                                   clipnorm=3.0),
                      loss=["categorical_crossentropy"] * 2, loss_weights=[0.8, 0.2])
        y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, 10, 9))]
        model.fit(x, [y, y], epochs=1, verbose=0)
    path = tmp_path / f"{kind}.h5"
    network.save_model(model, path)
    out = network.load_model(str(path)).predict(x, verbose=0)
    np.save(tmp_path / f"{kind}.npy", x)
    return path, [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


@pytest.mark.skipif(not TF215.exists(), reason=".venv-tf215 missing: TensorFlow 2.15 has wheels for Python 3.9-3.11 only (.ci/setup installs it when one of those is present)")
def test_our_model_files_load_in_tf_2_15(tmp_path):
    """Plain, trained (AdamW state), coverage and no-phase models: TF 2.15 loads them
    (compile=True) and predicts the same; one TF 2.15 process for all (it starts slowly)."""
    kinds = ["trained", "coverage", "no_phase"]
    cases = {kind: _tf215_case(tmp_path, kind) for kind in kinds}
    (tmp_path / "check.py").write_text(TF215_SCRIPT)
    argv = [str(a) for kind in kinds for a in (cases[kind][0], tmp_path / f"{kind}.npy",
                                               tmp_path / f"{kind}.npz")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([str(TF215), str(tmp_path / "check.py")] + argv,
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for kind in kinds:
        got = np.load(tmp_path / f"{kind}.npz")
        assert str(got["version"]).startswith("2.15")
        for i, o in enumerate(cases[kind][1]):
            np.testing.assert_allclose(got[f"arr_{i}"], o, rtol=0, atol=1e-6, err_msg=kind)


# ---- layout, L % P, file checks ----------------------------------------------------------------

def test_layout_round_trip():
    se = np.array([[0, 10], [10, 15], [15, 10], [10, 0]])
    shifts = model_inputs.minus_padding_shifts(se, 10)
    assert shifts.tolist() == [0, 0, 5, 0]
    rows = np.arange(40).reshape(4, 10)
    moved = model_inputs.to_model_layout(rows, shifts)
    assert moved[2].tolist() == [25, 26, 27, 28, 29, 20, 21, 22, 23, 24]
    np.testing.assert_array_equal(model_inputs.to_file_layout(moved, shifts), rows)


def test_length_not_divisible_by_pool_size(tmp_path, run_tool, tiny3):
    model, predictor = tiny3
    data = write_data(tmp_path / "d.h5", [25, 7], L=10)
    out = tmp_path / "p.h5"
    code, err = run_tool(HybridModel.main, ["-l", model, "-t", data, "-p", out,
                                            "--compression", "lzf"])
    assert code == 0 and "not divisible by the pool size 3" in err, err
    with h5py.File(out) as h5, h5py.File(data) as d:
        assert h5.attrs["n_bases_removed"] == 1 and h5["predictions"].compression == "lzf"
        shifts = model_inputs.minus_padding_shifts(d["data/start_ends"][:], 10)
        pred = model_inputs.to_model_layout(h5["predictions"][:], shifts)
        assert (pred[:, 9] == 0).all() and (pred[:, :9].sum(-1) > 0.99).all()
        # equals the model on the clipped rows in model layout
        x = model_inputs.to_model_layout(d["data/X"][:].astype(np.float32), shifts)
        np.testing.assert_allclose(pred[:, :9], predictor(x[:, :9])[0], atol=1e-3)


def test_batch_size_does_not_change_plain_predictions(tmp_path, run_tool, tiny3):
    model, _ = tiny3
    data = write_data(tmp_path / "d.h5", [40, 13, 9], L=12, seed=4)
    results = []
    for bs in (1, 3, 32):
        out = tmp_path / f"p{bs}.h5"
        code, err = run_tool(HybridModel.main, ["-l", model, "-t", data, "-p", out,
                                                "--val-test-batch-size", bs, "--quiet"])
        assert code == 0, err
        with h5py.File(out) as h5:
            results.append(h5["predictions"][:])
    for r in results[1:]:
        np.testing.assert_allclose(r.astype(np.float32), results[0].astype(np.float32), atol=1e-3)


# ---- acceptance 5: overlap ---------------------------------------------------------------------

@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(lengths=st.lists(st.integers(1, 80), min_size=1, max_size=3),
       L=st.sampled_from([9, 12, 18, 20]), offset_frac=st.sampled_from([0.25, 0.5, 1.0]),
       batch_size=st.integers(1, 9), seed=st.integers(0, 5), filtered=st.booleans())
def test_overlap_equals_averaged_windows(tmp_path_factory, tiny3, lengths, L, offset_frac,
                                         batch_size, seed, filtered):
    _, predictor = tiny3
    path = tmp_path_factory.mktemp("ov") / "d.h5"
    n_rows = sum(len(start_ends(n, L)) for n in lengths)
    keep = None
    if filtered and n_rows > 2:
        keep = [i for i in range(n_rows) if i % 3 != 1]
    write_data(path, lengths, L, seed=seed, keep=keep)
    W = L - L % 3
    core = max(1, int(0.75 * W))
    offset = max(1, min(core, int(offset_frac * L)))
    data = model_inputs.DataFile(str(path), coordinates=True)
    try:
        ref = naive_overlap(data, predictor, offset, core)
        got = collect(prediction.predict_overlap(data, predictor, batch_size, offset, core),
                      data.n_rows, L)
        for r, g in zip(ref, got):
            np.testing.assert_allclose(g, r, rtol=0, atol=2e-6)
        again = collect(prediction.predict_overlap(data, predictor, 64, offset, core),
                        data.n_rows, L)
        for a, g in zip(again, got):
            np.testing.assert_allclose(a, g, rtol=0, atol=2e-6)
    finally:
        data.close()


def test_overlap_without_overlap_equals_plain(tmp_path, tiny3):
    """offset = core = L: windows are exactly the (model layout) rows."""
    _, predictor = tiny3
    data = model_inputs.DataFile(str(write_data(tmp_path / "d.h5", [50, 20], L=12, seed=2)), coordinates=True)
    plain = collect(prediction.predict_plain(data, predictor, 4), data.n_rows, 12)
    over = collect(prediction.predict_overlap(data, predictor, 3, 12, 12), data.n_rows, 12)
    for p, o in zip(plain, over):
        np.testing.assert_allclose(o, p, rtol=0, atol=2e-6)
    data.close()


def test_overlap_cli_and_batch_size(tmp_path, run_tool, tiny3):
    model, _ = tiny3
    data = write_data(tmp_path / "d.h5", [100, 31], L=18, seed=5)
    results = []
    for bs in (1, 4, 50):
        out = tmp_path / f"o{bs}.h5"
        code, err = run_tool(HybridModel.main, ["-l", model, "-t", data, "-p", out, "--overlap",
                                                "--val-test-batch-size", bs])
        assert code == 0, err
        with h5py.File(out) as h5:
            results.append(h5["predictions_phase"][:].astype(np.float32))
            assert h5.attrs["n_bases_removed"] == 0
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], atol=1e-3)


def test_contiguous_ranges():
    se = np.array([[0, 10], [10, 20], [20, 25], [25, 20], [20, 10], [10, 0], [0, 7], [7, 0]])
    ids = np.array([b"a"] * 6 + [b"b"] * 2)
    sp = np.array([b"s"] * 8)
    assert prediction.contiguous_ranges(se, ids, sp) == [(0, 3), (3, 6), (6, 7), (7, 8)]
    keep = [0, 2, 3, 5, 6, 7]  # filtered: gaps split the runs
    assert prediction.contiguous_ranges(se[keep], ids[keep], sp[keep]) == [
        (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]
    from helixtune.cli import UserError
    order = [1, 0, 2, 3, 4, 5, 6, 7]
    with pytest.raises(UserError, match="not in 5'->3' order"):
        prediction.contiguous_ranges(se[order], ids[order], sp[order])
    order = [0, 1, 6, 2, 3, 4, 5, 7]
    with pytest.raises(UserError, match="not together"):
        prediction.contiguous_ranges(se[order], ids[order], sp[order])


# ---- --eval ------------------------------------------------------------------------------------

def test_eval_json(tmp_path, run_tool, tiny3, capsys):
    model, predictor = tiny3
    data = write_data(tmp_path / "d.h5", [60, 17], L=12, seed=7, y=True)
    out = tmp_path / "pred.h5"
    code, err = run_tool(HybridModel.main, ["-l", model, "-t", data, "-p", out, "--eval",
                                            "--predict-phase"])
    assert code == 0, err
    assert not out.exists()
    report = json.loads((tmp_path / "pred.eval.json").read_text())
    # independent computation from plain predictions
    with h5py.File(data) as d:
        shifts = model_inputs.minus_padding_shifts(d["data/start_ends"][:], 12)
        x = model_inputs.to_model_layout(d["data/X"][:].astype(np.float32), shifts)
        y = model_inputs.to_model_layout(d["data/y"][:], shifts).argmax(-1)
        sw = model_inputs.to_model_layout(d["data/sample_weights"][:], shifts)
    preds = predictor(x)
    mask = np.repeat((sw.reshape(len(sw), 4, 3) > 0).all(-1), 3, axis=1)
    cm = np.zeros((4, 4), int)
    np.add.at(cm, (y[mask], preds[0].argmax(-1)[mask]), 1)
    assert report["confusion_matrix"] == cm.tolist()
    tp = np.diag(cm)[1:].sum()
    fp = cm[:, 1:].sum() - tp
    fn = cm[1:, :].sum() - tp
    assert report["genic"]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert set(report["phase"]["per_class"]) == {"no_phase", "phase_0", "phase_1", "phase_2"}
    assert "genic" in capsys.readouterr().out or True
    # --eval-output and --overlap
    code, err = run_tool(HybridModel.main, ["-l", model, "-t", data, "--eval", "--overlap",
                                            "--eval-output", tmp_path / "e.json"])
    assert code == 0 and json.loads((tmp_path / "e.json").read_text())["overlap"] is True


# ---- coverage models ---------------------------------------------------------------------------

def test_coverage_model_prediction(tmp_path, run_tool):
    tf, K = network.tf_modules()
    base = network.build_model(pool_size=3, **TINY)
    network.save_model(base, tmp_path / "pre.h5")
    cov = network.insert_coverage_before_hat(base, 2, 3, True)
    network.save_model(cov, tmp_path / "tuned.h5")
    data = write_data(tmp_path / "d.h5", [30, 8], L=12, seed=1, n_bams=2)
    out = tmp_path / "p.h5"
    args = ["-l", tmp_path / "tuned.h5", "--pretrained-model-path", tmp_path / "pre.h5",
            "-t", data, "-p", out, "--input-coverage", "--coverage-norm", "log",
            "--predict-phase"]
    code, err = run_tool(HybridModel.main, args)
    assert code == 0, err
    with h5py.File(data) as d, h5py.File(out) as h5:
        x = d["data/X"][:].astype(np.float32)
        c = [np.log(d[f"evaluation/{n}"][:] + 1.1).astype(np.float16).astype(np.float32)
             for n in ("rnaseq_coverage", "rnaseq_spliced_coverage")]
        shifts = model_inputs.minus_padding_shifts(d["data/start_ends"][:], 12)
        xin = model_inputs.to_model_layout(np.concatenate([x] + c, -1), shifts)
        ref = model_inputs.to_file_layout(np.asarray(cov(xin)[0]).reshape(-1, 12, 4), shifts)
        np.testing.assert_allclose(h5["predictions"][:].astype(np.float32), ref, atol=1e-3)
    # --overlap feeds the coverage through the same windows: one-row ranges equal plain
    code, err = run_tool(HybridModel.main, args + ["--overlap", "-p", tmp_path / "o.h5"])
    assert code == 0, err
    with h5py.File(out) as plain, h5py.File(tmp_path / "o.h5") as over, h5py.File(data) as d:
        single = [i for i, sid in enumerate(d["data/seqids"][:]) if sid == b"seq1"]  # 8 bp
        assert single
        np.testing.assert_allclose(over["predictions"][single].astype(np.float32),
                                   plain["predictions"][single].astype(np.float32), atol=1e-3)
    # wrong BAM count, no --input-coverage, coverage missing from the data
    data5 = write_data(tmp_path / "d5.h5", [30], L=12, n_bams=5)
    code, err = run_tool(HybridModel.main, [a if a != data else data5 for a in args])
    assert code == 1 and "tuned with 2 BAM column(s); the file has 5" in err, err
    code, err = run_tool(HybridModel.main, ["-l", tmp_path / "tuned.h5", "-t", data, "-p", out])
    assert code == 1 and "is a coverage model" in err
    nocov = write_data(tmp_path / "n.h5", [30], L=12)
    code, err = run_tool(HybridModel.main, [a if a != data else nocov for a in args])
    assert code == 1 and "rnaseq_coverage" in err


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_input(tmp_path, run_tool, tiny3):
    model, _ = tiny3
    data = write_data(tmp_path / "d.h5", [30], L=12)
    out = tmp_path / "p.h5"
    cases = [
        (["-l", tmp_path / "missing.h5", "-t", data], "does not exist"),
        (["-l", model, "-t", tmp_path / "missing.h5"], "does not exist"),
        (["-l", model, "-t", data, "--eval"], "data/y"),
        (["-l", model, "-t", model], "data/X"),
        (["-l", data, "-t", data], "no model_config"),
        (["-l", model, "-t", data, "--overlap", "--core-length", "30"], "longer than the window"),
        (["-l", model, "-t", data, "-p", tmp_path / "nodir" / "p.h5"], "does not exist"),
    ]
    for argv, message in cases:
        code, err = run_tool(HybridModel.main, argv + ([] if "-p" in argv else ["-p", out]))
        assert code != 0 and message in err, (argv, err)
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_no_tensorflow_log_lines_on_stderr(tmp_path, tiny3):
    """A fresh process: --quiet prints nothing; otherwise only our own lines (no TensorFlow C++
    log such as the failed cuInit of machines without a GPU)."""
    write_data(tmp_path / "data.h5", [50, 20], 30)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["HELIXTUNE_TF_THREADS"] = "1"

    def stderr(*extra):
        res = subprocess.run([sys.executable, "-m", "helixtune_tools.HybridModel", "-l",
                              str(tiny3[0]), "-t", str(tmp_path / "data.h5"), "-p",
                              str(tmp_path / "p.h5"), *extra], capture_output=True, text=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        return res.stderr

    assert stderr("--quiet") == ""
    lines = stderr().splitlines()
    assert lines[-1] == f"wrote {tmp_path / 'p.h5'}"
    assert all(line.startswith(("TensorFlow sees no GPU", "HybridModel.py predict:", "wrote "))
               for line in lines), lines
