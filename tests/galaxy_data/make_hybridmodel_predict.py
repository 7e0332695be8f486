#!/usr/bin/env python3
"""(Re)make galaxy/test-data files of the hybridmodel_predict wrapper (deterministic, tiny):

* hybridmodel_tiny_model.h5: a HybridModel (pool size 9, 1 CNN x 4 filters, 1 BiLSTM x 4 units,
  phase head) with weights from seed 42, saved the way HybridModel.py saves models;
* hybridmodel_tiny_data.h5: fasta2h5.py of galaxy/test-data/tiny.fa, subsequence length 18;
* hybridmodel_tiny_eval_data.h5: the same plus random data/y, data/sample_weights, data/phases.

Usage: python tests/galaxy_data/make_hybridmodel_predict.py
"""
import pathlib

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "galaxy" / "test-data"


def main():
    from helixtune import network
    from helixtune_tools import fasta2h5
    tf, K = network.setup_tensorflow(threads=1)
    K.utils.set_random_seed(42)
    model = network.build_model(cnn_layers=1, lstm_layers=1, units=4, filter_depth=4,
                                kernel_size=9, pool_size=9, predict_phase=True)
    network.save_model(model, OUT / "hybridmodel_tiny_model.h5", include_optimizer=False)
    data = OUT / "hybridmodel_tiny_data.h5"
    assert fasta2h5.main(["--fasta-path", str(OUT / "tiny.fa"), "--species", "tiny",
                          "--subsequence-length", "18", "--h5-output-path", str(data),
                          "--quiet"]) == 0
    ev = OUT / "hybridmodel_tiny_eval_data.h5"
    rng = np.random.default_rng(42)
    with h5py.File(data) as src, h5py.File(ev, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src["data"]:
            src.copy(f"data/{name}", dst, name=f"data/{name}")
        X = src["data/X"][:]
        valid = X.sum(-1) > 0
        onehot = np.eye(4, dtype=np.int8)
        dst["data/y"] = onehot[rng.integers(0, 4, valid.shape)] * valid[..., None]
        dst["data/phases"] = onehot[rng.integers(0, 4, valid.shape)] * valid[..., None]
        dst["data/sample_weights"] = valid.astype(np.int8)
    for path in OUT.glob("hybridmodel_tiny_*.h5"):
        print(path.name, path.stat().st_size)


if __name__ == "__main__":
    main()
