"""benchmarks/default_model/recipe.py: the same seed gives the same model file, byte for byte,
and the training rows (L/9) come only from the training blocks of the scored L rows."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECIPE = ROOT / "benchmarks" / "default_model" / "recipe.py"
# the smallest species alone, one epoch per stage: what is checked is the recipe, not the model
SMALL = ["--exclude", "athaliana", "--exclude", "celegans", "--exclude", "dmelanogaster",
         "--exclude", "spombe", "--epochs", "1", "--refine-epochs", "1"]


def run_recipe(work, shared_data):
    env = dict(os.environ, HELIXTUNE_SHARED_DATA=str(shared_data), HELIXTUNE_THREADS="1",
               PATH=str(pathlib.Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([sys.executable, RECIPE, "--work", work, *SMALL], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=900)
    return work / "default.h5"


def regions(path):
    """(seqid, lowest position, highest position) of every row."""
    with h5py.File(path, "r") as h5:
        se = h5["data/start_ends"][:]
        return [(s, int(lo), int(hi)) for s, lo, hi in
                zip(h5["data/seqids"][:].tolist(), se.min(axis=1), se.max(axis=1))]


@pytest.mark.slow
@pytest.mark.realdata
def test_same_seed_same_model_bytes_and_no_training_row_in_a_validation_block(shared_data,
                                                                              tmp_path):
    first = run_recipe(tmp_path / "a", shared_data)
    second = run_recipe(tmp_path / "b", shared_data)
    assert first.read_bytes() == second.read_bytes()
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["species"] == ["mpusilla"]
    assert (summary["subsequence_length"], summary["training_subsequence_length"]) == (21384, 2376)
    assert 0 <= summary["validation"]["mpusilla"]["genic_f1"] <= 1
    work = tmp_path / "a"
    with h5py.File(work / "data" / "training_data.mpusilla.h5", "r") as h5:
        assert h5["data/X"].shape[1] == 2376
    scored = regions(work / "eval" / "validation_data.mpusilla.h5")
    for seqid, lo, hi in regions(work / "data" / "training_data.mpusilla.h5"):
        assert not any(s == seqid and a <= lo and hi <= b for s, a, b in scored)
    validation = regions(work / "data" / "validation_data.mpusilla.h5")
    assert validation and all(any(s == seqid and a <= lo and hi <= b for s, a, b in scored)
                              for seqid, lo, hi in validation)
    assert summary["n_params"] > 0
