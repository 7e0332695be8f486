"""One input path: training, prediction and evaluation feed the network identical tensors."""
import h5py
import numpy as np
import pytest

from helixtune import model_inputs, prediction
from helixtune_tools.HybridModel import train as training

L, P, N_BAMS = 18, 9, 2


def write_file(path, lengths=(40, 7)):
    """Rows of two sequences cut at L (padded last rows on both strands), with coverage."""
    rng = np.random.default_rng(3)
    se, seqids = [], []
    for k, n in enumerate(lengths):
        plus = [(a, min(a + L, n)) for a in range(0, n, L)]
        for pair in plus + [(b, a) for a, b in plus[::-1]]:
            se.append(pair)
            seqids.append(f"chr{k}".encode())
    N = len(se)
    valid = np.array([abs(b - a) for a, b in se])
    mask = np.arange(L)[None, :] < valid[:, None]  # storage layout: padding last
    X = np.eye(4, dtype=np.float16)[rng.integers(0, 4, (N, L))] * mask[..., None]
    y = np.eye(4, dtype=np.int8)[rng.integers(0, 4, (N, L))] * mask[..., None]
    cov = np.where(mask[..., None], rng.integers(0, 2_000_000, (N, L, N_BAMS)), -1)
    with h5py.File(path, "w") as h5:
        h5["data/X"] = X
        h5["data/y"] = y
        h5["data/phases"] = y
        h5["data/sample_weights"] = mask.astype(np.int8)
        h5["data/start_ends"] = np.array(se, np.int64)
        h5["data/seqids"] = np.array(seqids, "S50")
        h5["data/species"] = np.full(N, b"toy", "S25")
        h5["data/is_annotated"] = np.ones(N, bool)
        h5["data/err_samples"] = np.ones(N, bool)
        h5["evaluation/rnaseq_coverage"] = cov.astype(np.int32)
        h5["evaluation/rnaseq_spliced_coverage"] = (cov // 3).astype(np.int32)
    return path, np.array(se), valid


@pytest.mark.parametrize("norm", [None, "linear", "log"])
def test_training_and_prediction_see_identical_inputs(tmp_path, norm):
    path, se, valid = write_file(tmp_path / "d.h5")
    assert ((se[:, 0] > se[:, 1]) & (valid < L)).sum() == 2  # padded minus rows are covered
    train_set = training.DataSet([str(path)], "validation", pool_size=P, predict_phase=True,
                                 input_coverage=True, coverage_norm=norm)
    batch = train_set.read_batch(np.arange(len(train_set)))
    test = model_inputs.DataFile(str(path), "test data", ("y", "sample_weights"), N_BAMS, norm,
                                 optional_targets=("phases",), coordinates=True)
    blocks = [block for _, block in prediction.blocks(test, 3)]
    x = np.concatenate([b["x"] for b in blocks])
    assert batch["X"].dtype == x.dtype == np.float16
    np.testing.assert_array_equal(batch["X"], x)  # bit-identical, coverage included
    np.testing.assert_array_equal(batch["y"].reshape(len(x), L, 4),
                                  np.concatenate([b["y"] for b in blocks]))
    np.testing.assert_array_equal(batch["phases"].reshape(len(x), L, 4),
                                  np.concatenate([b["phases"] for b in blocks]))


def test_model_layout_is_padding_first_for_padded_minus_rows(tmp_path):
    """Helixer 0.3.6's read-in layout, derived here from start_ends by hand."""
    path, se, valid = write_file(tmp_path / "d.h5")
    with h5py.File(path) as h5:
        stored = h5["data/X"][:]
    x = model_inputs.DataFile(str(path), coordinates=True).read(0, len(se))["x"]
    for i, ((start, end), n) in enumerate(zip(se, valid)):
        if start > end and n < L:  # padding moved to the front, bases unchanged
            assert not x[i, :L - n].any()
            np.testing.assert_array_equal(x[i, L - n:], stored[i, :n])
        else:
            np.testing.assert_array_equal(x[i], stored[i])


def test_coverage_normalisation_is_helixers_float64():
    """ln(x + 1.1) computed in float64 then cast (Helixer's _cov_norm), for 0..2,000,000."""
    counts = np.arange(0, 2_000_001, dtype=np.int32)
    got = model_inputs.normalise_coverage(counts, "log")
    np.testing.assert_array_equal(got, np.log(counts.astype(np.float64) + 1.1).astype(np.float16))
    np.testing.assert_array_equal(model_inputs.normalise_coverage(counts, "linear"),
                                  (counts.astype(np.float64) / 100).astype(np.float16))
