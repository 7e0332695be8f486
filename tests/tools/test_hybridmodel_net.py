"""HybridModel.py options, the network (lib/helixtune/network.py) and the metrics.

Acceptance 1: the full-size architecture (2,105,672 parameters, the spec's layer names), save ->
reload -> identical predictions, a tiny model saved loads with the same weights."""
import json
import re
import shlex

import h5py
import numpy as np
import pytest

from helixtune import network
from helixtune import metrics
from helixtune_tools import HybridModel

FULL = dict(cnn_layers=4, lstm_layers=3, units=128, filter_depth=96, kernel_size=10, pool_size=9,
            predict_phase=True)
TINY = dict(cnn_layers=2, lstm_layers=2, units=4, filter_depth=4, kernel_size=5, pool_size=9,
            predict_phase=True)


@pytest.fixture(scope="module", autouse=True)
def tensorflow():
    return network.setup_tensorflow(threads=2)


def x_batch(n=2, length=9 * 40, seed=0, channels=4):
    rng = np.random.default_rng(seed)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (n, length))]
    if channels > 4:
        x = np.concatenate([x, rng.random((n, length, channels - 4), dtype=np.float32)], -1)
    return x


def predict(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]


# ---- options -----------------------------------------------------------------------------------

def test_defaults_verbatim():
    a = HybridModel.get_parser().parse_args([])
    expected = dict(data_dir=None, save_model_path="./best_model.h5", epochs=10000, batch_size=8,
                    val_test_batch_size=32, patience=3, check_every_nth_batch=1_000_000,
                    save_every_check=False, optimizer="adamw", learning_rate=3e-4,
                    weight_decay=3.5e-5, clip_norm=3.0, class_weights=None,
                    transition_weights=None, predict_phase=False, resume_training=False,
                    fine_tune=False, fine_tune_resume=False, pretrained_model_path=None,
                    input_coverage=False, coverage_norm=None, post_coverage_hidden_layer=False,
                    load_model_path="", test_data="", prediction_output_path="predictions.h5",
                    compression="gzip", eval=False, overlap=False, overlap_offset=None,
                    core_length=None, float_precision="float32", gpu_id=-1, workers=1,
                    verbose=False, cnn_layers=1, lstm_layers=1, units=32, filter_depth=32,
                    kernel_size=26, pool_size=9, dropout1=0.0, dropout2=0.0, seed=None)
    for key, value in expected.items():
        assert getattr(a, key) == value, key


def test_documented_command_lines_parse():
    """The fine-tuning documentation's command lines (paths replaced)."""
    p = HybridModel.get_parser()
    a = p.parse_args("-v --batch-size 140 --val-test-batch-size 280 --class-weights "
                     "[0.7,1.6,1.2,1.2] --transition-weights [1,12,3,1,12,3] --predict-phase "
                     "--learning-rate 0.0001 --resume-training --fine-tune --load-model-path m.h5 "
                     "--input-coverage --coverage-norm log --data-dir d "
                     "--save-model-path b.h5".split())
    assert a.class_weights == [0.7, 1.6, 1.2, 1.2] and a.transition_weights[1] == 12
    assert HybridModel.mode_of(a) == "train"
    a = p.parse_args("--load-model-path t.h5 --pretrained-model-path p.h5 --test-data x.h5 "
                     "--overlap --val-test-batch-size 32 -v --input-coverage --coverage-norm log "
                     "--predict-phase".split())
    assert HybridModel.mode_of(a) == "test"
    a = p.parse_args(["--coverage-norm", "None", "-e", "1"])
    assert a.coverage_norm == "None"


def help_modes(help_text):
    """{mode name: argv} of the Modes block of --help ([...] parts dropped, continuations
    joined)."""
    lines = help_text[help_text.index("Modes ("):].splitlines()[1:]
    modes, name = {}, None
    for line in lines:
        if line.startswith("    ") and name:
            modes[name] += " " + line.strip()
        elif line.startswith("  "):
            name, argv = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            modes[name] = argv
        else:
            break
    return {name: shlex.split(re.sub(r"\[[^]]*\]", "", argv)) for name, argv in modes.items()}


def test_help_lists_every_mode():
    """Every mode of HybridModel.py has a line in --help, and each line selects that mode."""
    from helixtune_tools.HybridModel import train as training

    def mode(argv):
        args = HybridModel.get_parser().parse_args(argv)
        if HybridModel.mode_of(args) == "train":
            return training.mode_name(args)
        return ("evaluation" if args.eval else "prediction"
                + (" with coverage" if args.input_coverage else ""))

    modes = help_modes(HybridModel.get_parser().format_help())
    assert sorted(mode(argv) for argv in modes.values()) == sorted([
        "from scratch", "from scratch with coverage", "resume-training", "fine-tune",
        "fine-tune with coverage", "fine-tune-resume", "prediction", "prediction with coverage",
        "evaluation"])
    with_coverage = modes["prediction with coverage"]
    for option in ("--input-coverage", "--coverage-norm", "--pretrained-model-path"):
        assert option in with_coverage


@pytest.mark.parametrize("argv,message", [
    ([], "nothing to do"),
    (["-t", "x.h5"], "needs --load-model-path"),
    (["-d", "d", "--fine-tune"], "--fine-tune needs --resume-training"),
    (["-d", "d", "--resume-training"], "--resume-training needs --load-model-path"),
    (["-d", "d", "-l", "m.h5"], "needs --resume-training"),
    (["-d", "d", "-l", "m.h5", "--resume-training", "--fine-tune", "--fine-tune-resume"],
     "exclude each other"),
    (["-l", "m.h5", "-t", "x.h5", "--input-coverage"], "--pretrained-model-path"),
    (["-l", "m.h5", "-t", "x.h5", "--overlap-offset", "10", "--core-length", "5"], "must not exceed"),
    (["-d", "d", "--eval"], "test mode"),
])
def test_bad_mode_combinations(run_tool, argv, message):
    code, err = run_tool(HybridModel.main, argv)
    assert code == 2 and message in err, err


def test_bad_option_values(run_tool):
    for argv in (["--class-weights", "[1, 'a']"], ["--class-weights", "__import__('os')"],
                 ["--coverage-norm", "sqrt"], ["--optimizer", "sgd"], ["--dropout1", "1.5"]):
        code, err = run_tool(HybridModel.main, argv)
        assert code == 2, argv


def test_deprecated_options_warn(run_tool):
    code, err = run_tool(HybridModel.main, ["--cpus", "4", "--no-utrs", "--coverage-weights"])
    assert "--cpus is deprecated" in err and "--no-utrs is deprecated" in err
    assert "--coverage-weights is deprecated" in err
    assert code == 2  # and then: nothing to do


# ---- network -----------------------------------------------------------------------------------

def released_config(shared_data):
    """The model_config of the released land_plant_v0.3_a_0100 model (a dict)."""
    with open(shared_data / "helixer_h5/helixerpost_example/"
                            "land_plant_v0.3_a_0100.model_config.json") as f:
        cfg = json.load(f)["model_config"]
    return json.loads(cfg) if isinstance(cfg, str) else cfg


FULL_NAMES = ["main_input", "conv1d", "batch_normalization", "conv1d_1", "batch_normalization_1",
              "conv1d_2", "batch_normalization_2", "conv1d_3", "reshape", "bidirectional",
              "bidirectional_1", "bidirectional_2", "dense", "tf.split", "reshape_hat",
              "reshape_hat1", "genic", "phase"]


@pytest.mark.realdata
def test_full_size_architecture(shared_data, tmp_path):
    model = network.build_model(**FULL)
    assert model.count_params() == 2_105_672
    assert [layer.name for layer in model.layers] == FULL_NAMES
    # layer by layer equal to the released land_plant_v0.3_a_0100 model (names reshape_1/_2 aside)
    cfg = released_config(shared_data)
    released = {"reshape_1": "reshape_hat", "reshape_2": "reshape_hat1"}
    ours = {layer["name"]: layer for layer in json.loads(model.to_json())["config"]["layers"]}
    keys = ("filters", "kernel_size", "padding", "activation", "units", "target_shape", "axis",
            "momentum", "epsilon", "merge_mode", "function")
    for layer in cfg["config"]["layers"]:
        mine = ours[released.get(layer["name"], layer["name"])]
        assert mine["class_name"] == layer["class_name"]
        for key in keys:
            assert mine["config"].get(key) == layer["config"].get(key), (layer["name"], key)
        if layer["class_name"] == "Bidirectional":
            for key in ("units", "activation", "recurrent_activation", "unit_forget_bias",
                        "dropout", "recurrent_dropout", "return_sequences"):
                assert (mine["config"]["layer"]["config"][key]
                        == layer["config"]["layer"]["config"][key]), key
    # save -> reload -> identical predictions
    x = x_batch(1, 9 * 24)
    before = predict(model, x)
    path = tmp_path / "full.h5"
    network.save_model(model, path)
    again = network.load_model(str(path))
    for a, b in zip(before, predict(again, x)):
        np.testing.assert_array_equal(a, b)
    assert network.pool_size_from_file(str(path)) == 9


@pytest.mark.realdata
def test_released_model_naming_loads(shared_data, tmp_path):
    """A file with the released model's config (reshape_1/reshape_2) loads; P is read from it."""
    _, K = network.tf_modules()
    cfg = json.dumps(released_config(shared_data))
    # shrink the released architecture (same names and structure) so the test stays fast
    small = cfg.replace('"filters": 96', '"filters": 4').replace('"units": 128', '"units": 4')
    small = small.replace('"target_shape": [-1, 864]', '"target_shape": [-1, 36]')
    model = K.models.model_from_json(small)
    path = tmp_path / "released_like.h5"
    network.save_model(model, path)
    loaded = network.load_model(str(path))
    assert [layer.name for layer in loaded.layers][-4:] == ["reshape_1", "reshape_2", "genic",
                                                            "phase"]
    assert network.pool_size_from_file(str(path)) == network.pool_size(loaded) == 9
    assert network.coverage_columns(loaded) == 0 and network.has_phase(loaded)


def test_pool_size_is_read_from_the_file(tmp_path):
    model = network.build_model(**dict(TINY, pool_size=3))
    path = tmp_path / "p3.h5"
    network.save_model(model, path)
    assert network.pool_size_from_file(str(path)) == 3
    assert network.pool_size(network.load_model(str(path))) == 3


def test_tiny_model_same_weights_after_save(tmp_path):
    model = network.build_model(**TINY)
    path = tmp_path / "tiny.h5"
    network.save_model(model, path)
    loaded = network.load_model(str(path))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    no_phase = network.build_model(**dict(TINY, predict_phase=False))
    assert [layer.name for layer in no_phase.layers][-3:] == ["dense", "reshape_hat", "main"]
    assert not network.has_phase(no_phase)
    out = predict(no_phase, x_batch(1, 90))[0]
    assert out.shape == (1, 10, 9, 4)
    np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-5)


@pytest.mark.realdata
def test_upstream_model_loads(shared_data):
    """Keras 2.15 file with 'Addons>AdamW' optimizer state loads (compile=False)."""
    path = str(shared_data / "helixer_h5/upstream_0.3.6/tiny_model.h5")
    model = network.load_model(path)
    assert network.pool_size(model) == network.pool_size_from_file(path) == 9
    with h5py.File(path) as h5:
        assert h5["model_weights/dense/dense/kernel:0"][:].shape == model.get_layer(
            "dense").kernel.shape
        np.testing.assert_array_equal(h5["model_weights/dense/dense/kernel:0"][:],
                                      model.get_layer("dense").kernel.numpy())


def test_fine_tune_head_freezes_body():
    model = network.build_model(**TINY)
    body_weights = [w.numpy().copy() for w in model.get_layer("conv1d").weights]
    tuned = network.fine_tune_head(model, 9, predict_phase=True)
    trainable = {layer.name for layer in tuned.layers if layer.trainable and layer.weights}
    assert trainable == {"dense"}
    assert tuned.get_layer("dense") is not model.get_layer("dense")
    assert len(tuned.trainable_weights) == 2
    for a, b in zip(body_weights, tuned.get_layer("conv1d").weights):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.parametrize("hidden,quirks", [(False, False), (True, False), (True, True)])
def test_insert_coverage_before_hat(tmp_path, hidden, quirks):
    n_bams = 2
    model = network.build_model(**TINY)
    cov = network.insert_coverage_before_hat(
        model, n_bams, 9, True, post_coverage_hidden_layer=hidden, hidden_units=3,
        hidden_activation=None if quirks else "relu", keep_last_lstm=not quirks)
    assert network.coverage_columns(cov) == n_bams
    names = [layer.name for layer in cov.layers]
    assert names[0] == "main_input" and "model" in names and "tf.concat" in names
    assert names[-5:] == ["tf.split", "reshape_hat", "reshape_hat1", "genic", "phase"]
    assert ("dense_1" in names) == hidden
    body = cov.get_layer("model")
    assert not body.trainable and not body.trainable_weights
    n_lstm = sum(layer.name.startswith("bidirectional") for layer in body.layers)
    assert n_lstm == (1 if quirks else 2)
    x = x_batch(2, 90, channels=4 + 2 * n_bams)
    before = predict(cov, x)
    # coverage must matter
    x2 = x.copy()
    x2[..., 4:] += 5
    assert not np.allclose(before[0], predict(cov, x2)[0])
    # save / reload (what Helixer-made coverage models look like, too)
    path = tmp_path / "cov.h5"
    network.save_model(cov, path)
    loaded = network.load_model(str(path))
    assert network.coverage_columns(loaded) == n_bams
    assert network.pool_size_from_file(str(path)) == 9
    for a, b in zip(before, predict(loaded, x)):
        np.testing.assert_array_equal(a, b)
    network.set_trainable_from_dense(loaded)
    assert not loaded.get_layer("model").trainable_weights
    assert {layer.name for layer in loaded.layers if layer.trainable and layer.weights} == (
        {"dense", "dense_1"} if hidden else {"dense"})


def test_coverage_from_scratch():
    model = network.build_model(**dict(TINY, n_bams=3), post_coverage_hidden_layer=True)
    assert model.layers[0].name == "raw_input" and network.coverage_columns(model) == 3
    out = predict(model, x_batch(1, 90, channels=10))
    assert out[0].shape == (1, 10, 9, 4)


@pytest.mark.parametrize("content,message", [
    (None, "does not exist"), (b"not hdf5", "not an HDF5 model file"), ("weights", "no model_config"),
])
def test_bad_model_files(tmp_path, content, message):
    from helixtune.cli import UserError
    path = tmp_path / "m.h5"
    if content == "weights":
        with h5py.File(path, "w") as h5:
            h5["x"] = 1
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        network.load_model(str(path))


# ---- metrics -----------------------------------------------------------------------------------

def onehot(idx):
    return np.eye(4, dtype=np.float32)[np.asarray(idx)]


def test_metrics_hand_computed():
    P = 3
    true = np.array([[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]])
    pred = np.array([[0, 1, 0, 1, 1, 2, 2, 2, 3, 3, 0, 3]])
    sw = np.ones((1, 12))
    acc = metrics.ConfusionAccumulator(P).add(onehot(true), onehot(pred), sw)
    cm = np.array(acc.report()["confusion_matrix"])
    assert cm.tolist() == [[2, 1, 0, 0], [0, 2, 1, 0], [0, 0, 2, 1], [1, 0, 0, 2]]
    # genic: TP 6, FP (1+1+1), FN (1+1+1)
    r = acc.report()
    assert r["genic"]["tp"] == 6 and r["genic"]["fp"] == 3 and r["genic"]["fn"] == 3
    assert r["genic"]["f1"] == pytest.approx(2 / 3)
    assert r["sub_genic"]["tp"] == 4 and r["sub_genic"]["fp"] == 2 and r["sub_genic"]["fn"] == 2
    # legacy_cds: classes 2+3 merged: TP 2+1+0+2 = 5, FP = 1 (row 1 -> col 2), FN = 1 (3 -> 0)
    assert (r["legacy_cds"]["tp"], r["legacy_cds"]["fp"], r["legacy_cds"]["fn"]) == (5, 1, 1)
    # one zero weight masks its whole time step
    sw[0, 4] = 0
    acc = metrics.ConfusionAccumulator(P).add(onehot(true), onehot(pred), sw)
    assert acc.n_bases == 9 and np.array(acc.report()["confusion_matrix"])[1].sum() == 0
    # NaN F1 -> 0
    acc = metrics.ConfusionAccumulator(P).add(onehot(np.zeros((1, 3), int)),
                                                     onehot(np.zeros((1, 3), int)), np.ones((1, 3)))
    assert acc.report()["genic"]["f1"] == 0.0


def test_metrics_streaming_equals_whole():
    rng = np.random.default_rng(1)
    true, pred = rng.integers(0, 4, (6, 27)), rng.integers(0, 4, (6, 27))
    sw = rng.random((6, 27)) > 0.1
    whole = metrics.ConfusionAccumulator(9, phase=True).add(
        onehot(true), onehot(pred), sw, onehot(pred), onehot(true)).report()
    acc = metrics.ConfusionAccumulator(9, phase=True)
    for i in range(0, 6, 4):
        acc.add(onehot(true[i:i + 4]), onehot(pred[i:i + 4]), sw[i:i + 4], onehot(pred[i:i + 4]),
                onehot(true[i:i + 4]))
    assert acc.report() == whole
    assert "phase" in whole and "genic" in metrics.format_report(whole)
