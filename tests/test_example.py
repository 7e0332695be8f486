"""The README's main job: example/run_finetuning.sh on the bundled example (a shorter variant:
one fine-tuning epoch), with nothing downloaded and no ../shared/data."""
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_main_job_runs_the_fine_tuning_chain(tmp_path):
    env = dict(os.environ, EPOCHS="1", THREADS="2",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    out = tmp_path / "example"
    run = subprocess.run([str(ROOT / "example" / "run_finetuning.sh"), str(out)], env=env,
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = run.stdout.split("== Base-level scores", 1)[1]
    rows = {m.group(1): [float(v) for v in m.group(2).split()]
            for m in re.finditer(r"^(default|tuned|tuned_coverage)\s+([\d. nan]+)$", table, re.M)}
    assert set(rows) == {"default", "tuned", "tuned_coverage"}, table
    assert all(0 <= row[0] <= 1 for row in rows.values())  # genic F1
    for name in ("default.gff3", "tuned.gff3", "tuned.h5", "tuned_coverage.h5",
                 "pseudolabels_filtered.h5", "train/training_data.h5"):
        assert (out / name).is_file(), name
    # every command it ran was printed, quoted, so it can be copied and run again
    commands = [line[2:] for line in run.stdout.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 15
    assert all(shlex.split(c)[0] in {"fasta2h5.py", "Helixer.py", "import2geenuff.py",
                                     "geenuff2h5.py", "filter-to-most-certain.py",
                                     "add_ngs_coverage.py", "mkdir", "n90_train_val_split.py",
                                     "HybridModel.py", "helixer_post_bin"} for c in commands)
    assert not list(out.glob(".*")), "temporary files left behind"


def test_readme_quick_start_installs_the_model_extra():
    """The quick start runs HybridModel.py and Helixer.py, so it must install TensorFlow."""
    readme = (ROOT / "README.md").read_text()
    quick = re.search(r"^    python3 -m venv \.venv && (.+)$", readme, re.M)
    assert quick, "README quick-start command not found"
    assert '.venv/bin/pip install ".[model]"' in quick.group(1)
    assert "example/run_finetuning.sh" in quick.group(1)
