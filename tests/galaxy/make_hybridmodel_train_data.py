#!/usr/bin/env python3
"""Regenerate the tiny inputs of galaxy/hybridmodel_train.xml's tests (made by helixtune itself).

galaxy/test-data/hybridmodel_training_data.h5 / hybridmodel_validation_data.h5: synthetic
training-format files (L 180, labels in blocks, 2 BAM coverage columns);
hybridmodel_train_pretrained.h5: a tiny HybridModel trained one epoch on them by HybridModel.py.
Usage: .venv/bin/python tests/galaxy/make_hybridmodel_train_data.py
"""
import pathlib
import shutil
import tempfile

import h5py
import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "galaxy" / "test-data"
L = 180


def write(path, n, seed):
    rng = np.random.default_rng(seed)
    cls = np.repeat(rng.integers(0, 4, (n, L // 30)), 30, axis=1)
    phase = np.where(cls == 2, 1 + np.arange(L) % 3, 0)
    edges = np.zeros((n, L, 6), np.int8)
    edges[:, 1:, 0] = np.diff(cls, axis=1) != 0
    arrays = {"X": np.eye(4, dtype=np.float16)[rng.integers(0, 4, (n, L))],
              "y": np.eye(4, dtype=np.int8)[cls], "phases": np.eye(4, dtype=np.int8)[phase],
              "sample_weights": np.ones((n, L), np.int8), "transitions": edges,
              "is_annotated": np.ones(n, bool), "err_samples": np.ones(n, bool)}
    with h5py.File(path, "w") as h5:
        for name, value in arrays.items():
            h5.create_dataset(f"data/{name}", data=value, chunks=(1,) + value.shape[1:],
                              compression="gzip")
        for name in ("rnaseq_coverage", "rnaseq_spliced_coverage"):
            cov = (rng.integers(0, 20, (n, L, 2)) * (cls[..., None] > 0)).astype(np.int64)
            h5.create_dataset(f"evaluation/{name}", data=cov, chunks=(1, L, 1),
                              compression="lzf")


def main():
    write(OUT / "hybridmodel_training_data.h5", 6, 1)
    write(OUT / "hybridmodel_validation_data.h5", 2, 2)
    from helixtune_tools import HybridModel
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(OUT / "hybridmodel_training_data.h5", f"{tmp}/training_data.h5")
        shutil.copy(OUT / "hybridmodel_validation_data.h5", f"{tmp}/validation_data.h5")
        HybridModel.main(["-d", tmp, "-s", str(OUT / "hybridmodel_train_pretrained.h5"), "-e", "1",
                          "-b", "3", "--cnn-layers", "1", "--filter-depth", "4",
                          "--kernel-size", "3", "--lstm-layers", "1", "--units", "4",
                          "--predict-phase", "--seed", "1", "--quiet"])


if __name__ == "__main__":
    main()
