"""benchmarks/scale.py at a tiny size: the tools asked for are reported, their inputs made."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCALE = ROOT / "benchmarks" / "scale.py"


@pytest.mark.realdata
def test_tiny_genome_two_tools(shared_data, tmp_path):
    """0.4 Mb (two copies of chr I's first 200 kb): fasta2h5.py and filter-to-most-certain.py
    reported; import2geenuff.py, geenuff2h5.py and add_ngs_coverage.py run for the filter's
    input; the predictions of the second copy are those of the first."""
    env = dict(os.environ, HELIXTUNE_SHARED_DATA=str(shared_data), TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, SCALE, "--sizes", "0.4", "--unit-bp", "200000",
                          "--tools", "fasta2h5.py,filter-to-most-certain.py",
                          "--keep", tmp_path / "work"],
                         capture_output=True, text=True, check=True, env=env, timeout=300)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["tool"], r["copies"], r["bp"]) for r in rows] == [
        ("fasta2h5.py", 2, 400_000), ("filter-to-most-certain.py", 2, 400_000)]
    for r in rows:
        assert r["wall_s"] > 0 and r["cpu_s"] > 0 and r["peak_rss_mb"] > 0
    assert rows[0]["genes"] > 0 and rows[0]["genes"] % 2 == 0
    assert "| filter-to-most-certain.py | 0.4 |" in out.stderr   # the summary table
    work = tmp_path / "work" / "0.4Mb"   # --keep: every input and output stays
    with h5py.File(work / "data.h5") as data, h5py.File(work / "predictions.h5") as preds:
        seqids = data["data/seqids"][:]
        assert list(dict.fromkeys(seqids)) == [b"chrI_c1", b"chrI_c2"]
        assert data["evaluation/rnaseq_coverage"].shape[-1] == 5   # the five BAMs
        half = len(seqids) // 2
        assert (preds["predictions"][:half] == preds["predictions"][half:]).all()
    assert (work / "filtered.h5").exists()
