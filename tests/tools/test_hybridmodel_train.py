"""HybridModel.py training and fine-tuning (tools/HybridModel/train.py).

Real data: small slices (L 21384) of upstream's S. pombe chr I file with RNA-seq coverage and the
upstream tiny model trained on S. pombe. Tiny architectures and a few rows keep this on CPU."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from helixtune import model_inputs
from helixtune_tools import HybridModel
from helixtune_tools.HybridModel import train as training

UPSTREAM = "helixer_h5/upstream_0.3.6"
TRAIN_ROWS = [42, 63, 245, 448]  # S. pombe chr I rows with many genic bases (both strands)
VAL_ROWS = [210, 504]
SHORT_L = 2700
TINY = ["--cnn-layers", 1, "--filter-depth", 4, "--kernel-size", 3, "--lstm-layers", 1,
        "--units", 4]
FAST = ["-b", 2, "--val-test-batch-size", 2, "--seed", 7, "--quiet"]


def copy_rows(src, dst, rows, drop=()):
    """A training-format file with ``rows`` of ``src`` (datasets ``drop`` left out)."""
    with h5py.File(src) as s, h5py.File(dst, "w") as d:
        for group in ("data", "evaluation"):
            if group not in s:
                continue
            for name, ds in s[group].items():
                key = f"{group}/{name}"
                if isinstance(ds, h5py.Dataset) and key not in drop:
                    d.create_dataset(key, data=ds[sorted(rows)], chunks=(1,) + ds.shape[1:],
                                     compression="gzip")


@pytest.fixture(scope="module")
def spombe(shared_data, tmp_path_factory):
    src = shared_data / UPSTREAM / "spombe_chrI.geenuff2h5.rnaseq.h5"
    d = tmp_path_factory.mktemp("spombe")
    copy_rows(src, d / "training_data.h5", TRAIN_ROWS)
    copy_rows(src, d / "validation_data.h5", VAL_ROWS)
    return d


@pytest.fixture(scope="module")
def spombe_short(spombe, tmp_path_factory):
    """The same rows cut to their first SHORT_L bp (faster steps for multi-run tests)."""
    d = tmp_path_factory.mktemp("spombe_short")
    for name in ("training_data.h5", "validation_data.h5"):
        with h5py.File(spombe / name) as s, h5py.File(d / name, "w") as t:
            for key in ("data/X", "data/y", "data/phases", "data/sample_weights",
                        "data/transitions", "data/is_annotated", "data/err_samples",
                        "evaluation/rnaseq_coverage", "evaluation/rnaseq_spliced_coverage"):
                ds = s[key]
                value = ds[:, :SHORT_L] if ds.ndim > 1 else ds[:]
                t.create_dataset(key, data=value, chunks=(1,) + value.shape[1:],
                                 compression="gzip")
    return d


@pytest.fixture(scope="module")
def tiny_model(shared_data):
    return shared_data / UPSTREAM / "tiny_model.h5"


def write_toy(path, n=4, L=90, drop=(), n_bams=None, flags=None):
    """A small synthetic training-format file (random labels)."""
    rng = np.random.default_rng(len(str(path)) + n)
    with h5py.File(path, "w") as h5:
        cls = rng.integers(0, 4, (n, L))
        arrays = {
            "X": np.eye(4, dtype=np.float16)[rng.integers(0, 4, (n, L))],
            "y": np.eye(4, dtype=np.int8)[cls],
            "phases": np.eye(4, dtype=np.int8)[np.where(cls == 2, rng.integers(1, 4, (n, L)), 0)],
            "sample_weights": np.ones((n, L), np.int8),
            "transitions": (rng.random((n, L, 6)) < 0.01).astype(np.int8),
            "is_annotated": np.ones(n, bool),
            "err_samples": np.ones(n, bool),
        }
        arrays.update(flags or {})
        for name, value in arrays.items():
            if f"data/{name}" not in drop:
                h5.create_dataset(f"data/{name}", data=value)
        if n_bams:
            for name in ("rnaseq_coverage", "rnaseq_spliced_coverage"):
                h5.create_dataset(f"evaluation/{name}",
                                  data=rng.integers(0, 50, (n, L, n_bams)).astype(np.int64))


def model_weights(path):
    """{layer path: [arrays]} of a model file, nested sub-models flattened as 'model/<layer>'."""
    from helixtune import network
    out = {}

    def walk(model, prefix):
        for layer in model.layers:
            if hasattr(layer, "layers"):
                walk(layer, prefix + layer.name + "/")
            elif layer.weights:
                out[prefix + layer.name] = [w.numpy() for w in layer.weights]
    walk(network.load_model(str(path)), "")
    return out


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def train(run_tool, argv):
    code, err = run_tool(HybridModel.main, argv)
    assert code == 0, err
    return err


# ---- per-step weights and loss (spec §2.3, §2.4) -------------------------------------------


def test_step_weights_by_hand():
    P = 3
    sw = np.array([[1, 1, 1, 1, 0, 1, 1, 1, 1]], np.int8)
    y = np.zeros((1, 9, 4), np.int8)
    y[0, :2, 0] = 1
    y[0, 2:6, 2] = 1   # step 0: intergenic + CDS; step 1: CDS
    y[0, 6:, 3] = 1    # step 2: intron
    tr = np.zeros((1, 9, 6), np.int8)
    tr[0, 1:3, 1] = 1  # start codon in step 0 (2 bp)
    tr[0, 7, 2] = 1    # donor in step 2
    cw = np.array([0.7, 1.6, 1.2, 1.3], np.float32)
    tw = np.array([1, 12, 3, 1, 12, 3], np.float32)
    w = model_inputs.step_weights(sw, P, y, cw, tr, tw)
    np.testing.assert_allclose(w, [[(0.7 + 1.2) * 12, 0.0, 1.3 * 3]], rtol=1e-6)
    np.testing.assert_array_equal(model_inputs.step_weights(sw, P), [[1, 0, 1]])
    # steps without transitions keep their weight (sum 0 -> 1)
    np.testing.assert_array_equal(model_inputs.step_weights(sw, P, transitions=tr * 0,
                                                            transition_weights=tw), [[1, 0, 1]])


@pytest.mark.realdata
def test_loss_equals_hand_computation(spombe, tiny_model):
    """Acceptance 3: the training loss of a fixed batch = spec §2.4 computed in numpy, and
    = Keras' own compile()/evaluate() reduction with temporal sample weights (what Helixer runs)."""
    from helixtune import network
    tf, K = network.tf_modules()
    ds = training.DataSet([str(spombe / "training_data.h5")], "training", pool_size=9,
                              predict_phase=True,
                              class_weights=np.array([0.7, 1.6, 1.2, 1.2], np.float32),
                              transition_weights=np.array([1, 12, 3, 1, 12, 3], np.float32))
    batch = ds.read_batch([0, 3])
    ds.close()
    assert batch["X"].shape == (2, 21384, 4) and batch["y"].shape == (2, 2376, 9, 4)
    assert len(np.unique(batch["w"])) > 3  # class and transition weights really vary
    model = network.load_model(str(tiny_model))
    genic, phase = model.predict_on_batch(batch["X"].astype(np.float32))
    total, g, p = (float(v) for v in training.compute_losses(
        [tf.constant(genic), tf.constant(phase)], batch["y"], batch["phases"], batch["w"]))
    ref_total, ref_g, ref_p = training.numpy_loss(genic, batch["y"].astype(np.float64),
                                                      batch["w"].astype(np.float64), phase,
                                                      batch["phases"].astype(np.float64))
    np.testing.assert_allclose([total, g, p], [ref_total, ref_g, ref_p], rtol=2e-5)
    np.testing.assert_allclose(total, 0.8 * g + 0.2 * p, rtol=1e-6)
    model.compile(loss=["categorical_crossentropy"] * 2, loss_weights=[0.8, 0.2],
                  sample_weight_mode="temporal")
    keras = model.evaluate(batch["X"].astype(np.float32),
                           [batch["y"].astype(np.float32), batch["phases"].astype(np.float32)],
                           sample_weight=batch["w"], batch_size=2, verbose=0, return_dict=True)
    np.testing.assert_allclose([keras["loss"], keras["genic_loss"], keras["phase_loss"]],
                               [total, g, p], rtol=2e-5)


# ---- data pipeline ----------------------------------------------------------------------------


def test_pipeline_drops_rows_shuffles_and_clips(tmp_path, caplog):
    flags = {"is_annotated": np.array([1, 0, 1, 1, 1], bool),
             "err_samples": np.array([1, 1, 0, 1, 1], bool)}
    write_toy(tmp_path / "a.h5", n=5, L=95, flags=flags)  # 95 = 10 * 9 + 5: overhang clipped
    write_toy(tmp_path / "b.h5", n=3, L=95)
    ds = training.DataSet([str(tmp_path / "a.h5"), str(tmp_path / "b.h5")], "training",
                              pool_size=9, predict_phase=True)
    assert len(ds) == 3 + 3
    assert ds.items[:3].tolist() == [[0, 0], [0, 3], [0, 4]]
    o1, o1b, o2 = ds.epoch_order(5, 0), ds.epoch_order(5, 0), ds.epoch_order(5, 1)
    assert o1.tolist() == o1b.tolist() and o1.tolist() != o2.tolist()
    assert sorted(o1.tolist()) == list(range(6))
    batch = ds.read_batch([1, 4])
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(batch["X"][0], a["data/X"][3, :90])
        np.testing.assert_array_equal(batch["X"][1], b["data/X"][1, :90])
        np.testing.assert_array_equal(batch["phases"][1].reshape(90, 4), b["data/phases"][1, :90])
    assert batch["y"].shape == (2, 10, 9, 4) and batch["w"].shape == (2, 10)
    ds.close()
    (tmp_path / "d").mkdir()
    for name in ("training_data.x.h5", "validation_data.x.h5"):
        os.replace(tmp_path / ("a.h5" if name.startswith("t") else "b.h5"), tmp_path / "d" / name)
    args = HybridModel.get_parser().parse_args(["-d", str(tmp_path / "d")])
    training.open_datasets(args, 9)
    assert "not divisible by the pool size 9" in caplog.text


def test_prefetcher_streams_every_batch_in_order(tmp_path):
    write_toy(tmp_path / "a.h5", n=7, L=18)
    ds = training.DataSet([str(tmp_path / "a.h5")], "validation", pool_size=9)
    batches = ds.batch_indices(ds.epoch_order(1, 0), 3)
    got = [b["X"] for b in training.Prefetcher(ds, batches, depth=1)]
    want = [ds.read_batch(b)["X"] for b in batches]
    ds.close()
    assert [g.shape[0] for g in got] == [3, 3, 1]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    pool = training.ReaderPool([ds], 2)  # --workers 2: reader processes, same batches
    try:
        got = [b["X"] for b in training.Prefetcher(ds, batches, depth=1, pool=pool)]
    finally:
        pool.close()
    assert len(got) == 3
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("norm,expect", [(None, [-1, 0, 99]), ("linear", [-0.01, 0, 0.99]),
                                         ("log", np.log([0.1, 1.1, 100.1]))])
def test_coverage_norm(norm, expect):
    got = model_inputs.normalise_coverage(np.array([-1, 0, 99]), norm)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, expect, rtol=1e-3)


@pytest.mark.realdata
def test_coverage_input_channels(spombe):
    args = HybridModel.get_parser().parse_args(["-d", str(spombe), "--input-coverage",
                                                "--coverage-norm", "None"])
    _, val = training.open_datasets(args, 9)  # the literal None: raw counts
    raw = val.read_batch([0])["X"]
    val.close()
    with h5py.File(spombe / "validation_data.h5") as h5:
        np.testing.assert_array_equal(raw[0, :, 4:9],
                                      h5["evaluation/rnaseq_coverage"][0].astype(np.float16))
    ds = training.DataSet([str(spombe / "validation_data.h5")], "validation", pool_size=9,
                              input_coverage=True, coverage_norm="log")
    batch = ds.read_batch([1])
    ds.close()
    assert ds.n_bams == 5 and batch["X"].shape == (1, 21384, 14)
    with h5py.File(spombe / "validation_data.h5") as h5:
        np.testing.assert_array_equal(batch["X"][0, :, :4], h5["data/X"][1])
        cov = np.log(h5["evaluation/rnaseq_coverage"][1] + 1.1).astype(np.float16)
        spl = np.log(h5["evaluation/rnaseq_spliced_coverage"][1] + 1.1).astype(np.float16)
    np.testing.assert_array_equal(batch["X"][0, :, 4:9], cov)
    np.testing.assert_array_equal(batch["X"][0, :, 9:], spl)


# ---- training modes end to end (acceptance 4) -----------------------------------------------


def initial_model(argv, n_bams=0):
    """The model a run with ``argv`` starts from (same seed => same random initialisation)."""
    args = HybridModel.get_parser().parse_args([str(a) for a in argv])
    training.set_determinism(args.seed, True)
    return training.build_training_model(args, n_bams, 9)


def weights_of(model):
    out = {}
    for layer in model.layers:
        if hasattr(layer, "layers"):
            out.update({f"{layer.name}/{k}": v for k, v in weights_of(layer).items()})
        elif layer.weights:
            out[layer.name] = [w.numpy() for w in layer.weights]
    return out


@pytest.mark.realdata
def test_train_from_scratch_with_checks(spombe_short, tmp_path, run_tool):
    out = tmp_path / "best.h5"
    err = train(run_tool, ["-d", spombe_short, "-s", out, "-e", 2, "--predict-phase",
                           "--class-weights", "[0.7, 1.6, 1.2, 1.2]",
                           "--transition-weights", "[1, 12, 3, 1, 12, 3]",
                           "--check-every-nth-batch", 1, "--save-every-check", "--patience", 9,
                           "--optimizer", "adam", *TINY, *FAST[:-1]])
    assert "validation genic F1" in err and "mode: from scratch" in err
    saved = sorted(p.name for p in tmp_path.glob("model_e*.h5"))
    assert saved == ["model_e0_b000001.h5", "model_e0_epoch_end.h5",
                     "model_e1_b000001.h5", "model_e1_epoch_end.h5"]
    assert "not divisible by the pool size" not in err
    assert not (tmp_path / "best.h5.train_state.npz").exists()  # removed when finished
    with h5py.File(out) as h5:
        assert h5.attrs["keras_version"] and "model_weights" in h5
    from helixtune import network
    assert network.pool_size_from_file(str(out)) == 9


@pytest.mark.realdata
def test_resume_training_all_layers_change(spombe, tiny_model, tmp_path, run_tool):
    out = tmp_path / "resumed.h5"
    train(run_tool, ["-d", spombe, "-s", out, "-e", 1, "--predict-phase", "--learning-rate", 0.01,
                     "--load-model-path", tiny_model, "--resume-training", *FAST])
    before, after = model_weights(tiny_model), model_weights(out)
    assert before.keys() == after.keys()
    for name in before:
        assert not any(np.array_equal(a, b) for a, b in zip(before[name], after[name])), name


@pytest.mark.realdata
def test_fine_tune_then_fine_tune_resume(spombe, tiny_model, tmp_path, run_tool):
    """--fine-tune: body bit-identical, new head trained; --fine-tune-resume continues the head."""
    tuned = tmp_path / "tuned.h5"
    argv = ["-d", spombe, "-s", tuned, "-e", 1, "--predict-phase", "--learning-rate", 0.01,
            "--load-model-path", tiny_model, "--resume-training", "--fine-tune", *FAST]
    start = weights_of(initial_model(argv))
    err = train(run_tool, argv)
    pre, post = model_weights(tiny_model), model_weights(tuned)
    assert set(post) == set(pre)
    for name in ("conv1d", "bidirectional"):
        assert same(pre[name], post[name]), f"frozen {name} changed"
    assert not same(start["dense"], post["dense"]), "the new head did not train"
    assert not same(pre["dense"], post["dense"])
    again = tmp_path / "again.h5"
    train(run_tool, ["-d", spombe, "-s", again, "-e", 1, "--predict-phase",
                     "--learning-rate", 0.01, "--load-model-path", tuned, "--fine-tune-resume",
                     *FAST])
    post2 = model_weights(again)
    for name in ("conv1d", "bidirectional"):
        assert same(pre[name], post2[name]), f"frozen {name} changed"
    assert not same(post["dense"], post2["dense"])


@pytest.mark.realdata
def test_fine_tune_with_coverage(spombe, tiny_model, tmp_path, run_tool):
    extra = ["--coverage-norm", "log", "--post-coverage-hidden-layer"]
    tuned = tmp_path / "cov.h5"
    argv = ["-d", spombe, "-s", tuned, "-e", 1, "--predict-phase", "--learning-rate", 0.01,
            "--load-model-path", tiny_model, "--resume-training", "--fine-tune",
            "--input-coverage", *extra, *FAST]
    start = weights_of(initial_model(argv, n_bams=5))
    train(run_tool, argv)
    pre, post = model_weights(tiny_model), model_weights(tuned)
    # the whole pretrained body, last BiLSTM included, is kept frozen inside the nested model
    for name in ("conv1d", "bidirectional"):
        assert same(pre[name], post[f"model/{name}"]), f"frozen {name} changed"
    heads = ["dense", "dense_1"]
    assert sorted(k for k in post if not k.startswith("model/")) == heads
    for name in heads:
        assert not same(start[name], post[name]), f"{name} did not train"
    with h5py.File(tuned) as h5:
        assert '"batch_input_shape": [null, null, 14]' in h5.attrs["model_config"]
    again = tmp_path / "cov2.h5"
    train(run_tool, ["-d", spombe, "-s", again, "-e", 1, "--predict-phase",
                     "--load-model-path", tuned, "--fine-tune-resume", "--input-coverage",
                     *extra, *FAST])
    post2 = model_weights(again)
    for name in ("conv1d", "bidirectional"):
        assert same(pre[name], post2[f"model/{name}"])
    assert not same(post["dense_1"], post2["dense_1"])


@pytest.mark.realdata
def test_fine_tune_keeps_the_phase_output_of_the_loaded_model(spombe, tiny_model, tmp_path,
                                                              run_tool):
    """Without --predict-phase, a model with a phase output keeps it (helixer_post_bin needs
    predictions_phase): architecture comes from the loaded model."""
    from helixtune import network
    assert network.has_phase_in_file(str(tiny_model))  # upstream's tiny model: genic + phase
    tuned = tmp_path / "tuned.h5"
    err = train(run_tool, ["-d", spombe, "-s", tuned, "-e", 1, "--load-model-path", tiny_model,
                           "--resume-training", "--fine-tune", *FAST[:-1]])
    assert "predicts phase: its phase output is kept" in err
    assert network.has_phase_in_file(str(tuned))
    with h5py.File(tuned) as h5:
        assert '"output_layers": [["genic", 0, 0], ["phase", 0, 0]]' in h5.attrs["model_config"]


@pytest.mark.realdata
@pytest.mark.parametrize("mode", [["--resume-training"], ["--resume-training", "--fine-tune"],
                                  ["--fine-tune-resume"]])
def test_phase_model_on_data_without_phases_stops_at_once(tmp_path, tiny_model, run_tool, mode):
    d = toy_dir(tmp_path, {"drop": ["data/phases"]})
    out = tmp_path / "m.h5"
    code, err = run_tool(HybridModel.main, ["-d", d, "-s", out, "--load-model-path", tiny_model,
                                            *mode])
    assert code == 1, err
    assert f"{d / 'training_data.h5'} lacks data/phases, which the phase output of " \
           f"{tiny_model} is trained on: recreate the file with geenuff2h5.py" in err
    assert "mode:" not in err and not out.exists()  # before TensorFlow built anything


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_predict_phase_refused_for_a_model_without_phase(tmp_path, run_tool):
    from helixtune import network
    plain = tmp_path / "plain.h5"
    network.save_model(network.build_model(filter_depth=2, kernel_size=3, units=2), str(plain))
    d = toy_dir(tmp_path)
    code, err = run_tool(HybridModel.main, ["-d", d, "-s", tmp_path / "m.h5", "--predict-phase",
                                            "--load-model-path", plain, "--resume-training"])
    assert code == 2 and f"--predict-phase: {plain} has no phase output" in err, err


@pytest.mark.realdata
def test_kill_and_resume_reproduces_uninterrupted_run(spombe_short, tmp_path):
    """Kill -9 mid-training, re-run the same command: the final model equals an uninterrupted
    run with the same seed (weights, optimizer state and dropout RNG restored)."""
    def command(out):
        return [sys.executable, "-m", "helixtune_tools.HybridModel", "-d", str(spombe_short),
                "-s", str(out), "-e", "4", "--predict-phase", "--dropout2", "0.3",
                "--check-every-nth-batch", "1", "--patience", "99", *map(str, TINY),
                *map(str, FAST[:-1])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    ref = tmp_path / "ref.h5"
    subprocess.run(command(ref), check=True, env=env, capture_output=True)
    out = tmp_path / "killed.h5"
    ckpt = tmp_path / "killed.h5.train_state.npz"
    proc = subprocess.Popen(command(out), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # right after the first check: 7 of 8 steps still to do
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and ckpt.exists()
    done = subprocess.run(command(out), env=dict(env, PYTHONUNBUFFERED="1"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stderr
    assert not ckpt.exists()
    a, b = model_weights(ref), model_weights(out)
    assert a.keys() == b.keys()
    for name in a:
        assert same(a[name], b[name]), name


# ---- bad input --------------------------------------------------------------------------------


def toy_dir(tmp_path, train_kw=None, val_kw=None, val=True):
    d = tmp_path / "data"
    d.mkdir()
    write_toy(d / "training_data.h5", **(train_kw or {}))
    if val:
        write_toy(d / "validation_data.h5", **(val_kw or {}))
    return d


NO_ROWS = {"flags": {"is_annotated": np.zeros(4, bool)}}


@pytest.mark.parametrize("case,argv,train_kw,val_kw,message", [
    ("lengths", [], {}, {"L": 99}, "training files have subsequence length 90 but validation"),
    ("phases", ["--predict-phase"], {"drop": ["data/phases"]}, {},
     "lacks dataset(s) data/phases (needed by --predict-phase)"),
    ("transitions", ["--transition-weights", "[1, 12, 3, 1, 12, 3]"],
     {"drop": ["data/transitions"]}, {}, "data/transitions (needed by --transition-weights)"),
    ("coverage", ["--input-coverage"], {"n_bams": 2}, {},
     "evaluation/rnaseq_coverage (needed by --input-coverage"),
    ("bams", ["--input-coverage"], {"n_bams": 2}, {"n_bams": 3},
     "training files have 2 BAM coverage columns but validation files 3"),
    ("empty-val", [], {}, NO_ROWS, "the validation set is empty"),
    ("class-weights", ["--class-weights", "[1, 2]"], {}, {}, "expected 4 weights"),
])
def test_bad_input(tmp_path, run_tool, case, argv, train_kw, val_kw, message):
    d = toy_dir(tmp_path, train_kw, val_kw)
    out = tmp_path / "best.h5"
    code, err = run_tool(HybridModel.main, ["-d", d, "-s", out, *argv])
    assert code != 0 and message in err, err
    assert not out.exists() and list(tmp_path.glob("*.part")) == []


def test_bad_input_no_validation_file(tmp_path, run_tool):
    d = toy_dir(tmp_path, val=False)
    code, err = run_tool(HybridModel.main, ["-d", d, "-s", tmp_path / "m.h5"])
    assert code == 1 and "no validation_data*.h5 files" in err


@pytest.mark.realdata
def test_bad_input_channel_mismatch(tmp_path, tiny_model, run_tool):
    """A plain 4-channel model cannot continue on coverage data (and the reverse)."""
    d = toy_dir(tmp_path, {"n_bams": 1, "L": 90}, {"n_bams": 1, "L": 90})
    out = tmp_path / "m.h5"
    code, err = run_tool(HybridModel.main, ["-d", d, "-s", out, "--load-model-path", tiny_model,
                                            "--fine-tune-resume", "--input-coverage",
                                            "--predict-phase"])
    assert code == 1 and "the model takes 4 input channels but the data provide 6" in err, err
    assert not out.exists()


@pytest.mark.realdata
def test_checkpoint_of_other_options_refused(spombe, tmp_path, run_tool):
    out = tmp_path / "m.h5"
    (tmp_path / "m.h5.train_state.npz").write_bytes(b"")
    np.savez(tmp_path / "m.h5.train_state.npz",
             meta=np.frombuffer(b'{"seed": 1, "fingerprint": "x"}', np.uint8))
    code, err = run_tool(HybridModel.main, ["-d", spombe, "-s", out, "-e", 1, *TINY, *FAST])
    assert code == 1 and "belongs to a training run with other options" in err, err


@pytest.mark.realdata
def test_validation_confusion_matches_metrics(spombe_short, tiny_model):
    """The on-device confusion matrix used for model selection = metrics' numpy one."""
    from helixtune import network
    from helixtune import metrics
    spombe = spombe_short
    args = HybridModel.get_parser().parse_args(["-d", str(spombe), "--predict-phase",
                                                "--val-test-batch-size", "1"])
    train_set, val = training.open_datasets(args, 9)
    model = network.load_model(str(tiny_model))
    trainer = training.Trainer(args, model, train_set, val, seed=1)
    cm, cm_phase = trainer.validate()
    acc = metrics.ConfusionAccumulator(9, phase=True)
    with h5py.File(spombe / "validation_data.h5") as h5:
        for row in range(2):
            x = h5["data/X"][row:row + 1].astype(np.float32)
            genic, phase = model.predict_on_batch(x)
            acc.add(h5["data/y"][row:row + 1], genic.reshape(1, -1, 4),
                    h5["data/sample_weights"][row:row + 1], h5["data/phases"][row:row + 1],
                    phase.reshape(1, -1, 4))
    np.testing.assert_array_equal(cm, acc.cm)
    np.testing.assert_array_equal(cm_phase, acc.cm_phase)
    assert 0.2 < training.genic_f1(cm) == acc.genic_f1()


@pytest.mark.realdata
def test_fine_tune_with_coverage_helixer_quirks(spombe_short, tiny_model, tmp_path, run_tool):
    """--helixer-coverage-quirks: Helixer 0.3.6's coverage model (last BiLSTM dropped, linear
    hidden layer of --units // 2)."""
    import json
    tuned = tmp_path / "quirks.h5"
    train(run_tool, ["-d", spombe_short, "-s", tuned, "-e", 1, "--predict-phase",
                     "--load-model-path", tiny_model, "--resume-training", "--fine-tune",
                     "--input-coverage", "--coverage-norm", "linear",
                     "--post-coverage-hidden-layer", "--helixer-coverage-quirks", *FAST])
    post = model_weights(tuned)
    assert "model/bidirectional" not in post and same(model_weights(tiny_model)["conv1d"],
                                                      post["model/conv1d"])
    with h5py.File(tuned) as h5:
        layers = {la["name"]: la["config"] for la in
                  json.loads(h5.attrs["model_config"])["config"]["layers"]}
    assert layers["dense"]["activation"] == "linear" and layers["dense"]["units"] == 16
