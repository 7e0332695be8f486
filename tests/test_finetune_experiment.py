"""benchmarks/finetune_experiment/run.py --quick: every condition runs and is scored."""
import json
import math
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "finetune_experiment" / "run.py"
_SPEC = importlib.util.spec_from_file_location("finetune_experiment_run", RUN)
experiment = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(experiment)


@pytest.mark.slow
@pytest.mark.realdata
def test_quick_run_scores_every_condition(shared_data, tmp_path):
    env = dict(os.environ, HELIXTUNE_SHARED_DATA=str(shared_data))
    subprocess.run([sys.executable, RUN, "--work", tmp_path / "work", "--quick"], check=True,
                   env=env, timeout=1800)
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["mode"] == "quick"
    expected = {("spombe", c) for c in experiment.CONDITIONS}
    expected |= {("athaliana", c) for c in experiment.CONDITIONS
                 if c not in experiment.COVERAGE_CONDITIONS and c != "finetune_ref_unmasked"}
    assert {(r["target"], r["condition"]) for r in results["runs"]} == expected
    for r in results["runs"]:
        for key in ("genic_f1", "phase_f1", "exon_f1", "wall_s"):
            assert math.isfinite(r[key]), (r["condition"], key)
        assert r["genes"] >= 0
        assert "$ HybridModel.py" in (tmp_path / "work" / r["log"]).read_text()
    for target in ("spombe", "athaliana"):
        assert results["targets"][target]["masked_training"]["bases"] > 0
        assert set(results["aims"][target]) == {"reference_gain", "pseudolabel_recovery",
                                                "coverage"}
    assert results["aims"]["athaliana"]["coverage"]["status"] == "not measured"
    md = (tmp_path / "work" / "RESULTS.md").read_text()
    assert "SMOKE RUN" in md and "| finetune_pseudo50 | 1 |" in md
    assert experiment.render(results) == md


def test_aims_report_noise_and_status():
    def run(condition, seed, f1):
        return {"target": "t", "condition": condition, "seed": seed, "genic_f1": f1}

    runs = [run("pretrained", 1, 0.5)] + [
        run(c, s, f1 + 0.01 * s) for s in (1, 2, 3) for c, f1 in (
            ("finetune_ref", 0.65), ("finetune_pseudo20", 0.56), ("finetune_pseudo50", 0.6),
            ("coverage", 0.6), ("coverage_hidden", 0.605))]
    out = experiment.aims({"runs": runs, "targets": {"t": {"coverage_route":
                                                           "finetune_pseudo50"}}})["t"]
    assert out["reference_gain"]["status"] == "met"
    assert out["reference_gain"]["best"] == "finetune_ref"
    assert out["pseudolabel_recovery"]["status"] == "met"
    assert out["pseudolabel_recovery"]["fraction_of_gain"] == pytest.approx(0.12 / 0.17)
    assert out["coverage"]["noise"] == "within noise"
    assert out["coverage"]["status"] == "missed"
    assert out["pseudolabel_recovery"]["status"] == "met"
