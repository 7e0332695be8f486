"""TensorFlow is an optional extra (`pip install "helixtune[model]"`): without it the data tools
install and run, and the model tools say in one line what to install. TensorFlow's absence is
simulated by a ``sitecustomize`` on PYTHONPATH whose import hook makes ``import tensorflow`` (and
``tf_keras``) fail as for a package that is not installed."""
import os
import pathlib
import shutil
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
MODEL_TOOLS = {"HybridModel.py", "Helixer.py"}
HINT = 'pip install "helixtune[model]"'
EXAMPLE = ROOT / "example"

BLOCKER = '''
import sys

class _NoTensorFlow:
    """Import hook: TensorFlow and tf_keras are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTensorFlow())
'''


@pytest.fixture
def no_tf_env(tmp_path):
    """Environment in which ``import tensorflow`` fails in every Python the tools start."""
    shim = tmp_path / "no_tensorflow"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=str(shim))
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    return env


def _exe(name, bin_dir=None):
    exe = shutil.which(name, path=bin_dir)
    assert exe, f"{name} is not on PATH (pip install . puts it there)"
    return exe


def _run(args, env, bin_dir=None, **kwargs):
    return subprocess.run([_exe(args[0], bin_dir), *map(str, args[1:])], env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("name", sorted(set(SCRIPTS) - MODEL_TOOLS))
def test_data_tools_help_without_tensorflow(name, no_tf_env):
    out = _run([name, "--help"], no_tf_env)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr


@pytest.mark.parametrize("name", sorted(MODEL_TOOLS))
def test_model_tools_help_says_what_to_install(name, no_tf_env):
    out = _run([name, "--help"], no_tf_env)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr
    assert HINT in " ".join(out.stdout.split())


@pytest.mark.parametrize("argv", [
    ["HybridModel.py", "--load-model-path", "model.h5", "--test-data", "data.h5"],
    ["HybridModel.py", "-d", "train", "--save-model-path", "model.h5"],
    ["Helixer.py", "--fasta-path", EXAMPLE / "spombe_chrI_1-100000.fa.gz",
     "--gff-output-path", "out.gff3"],
], ids=["HybridModel-predict", "HybridModel-train", "Helixer"])
def test_model_tools_fail_in_one_line_without_tensorflow(argv, no_tf_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = _run(argv, no_tf_env, cwd=work)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{argv[0]}: error: ") and "TensorFlow" in lines[0], lines[0]
    assert lines[0].endswith(HINT), lines[0]
    assert not list(work.iterdir()), "nothing may be written"


def test_data_chain_runs_without_tensorflow(no_tf_env, tmp_path):
    run_data_chain(tmp_path, no_tf_env)


def run_data_chain(out, env, bin_dir=None):
    """fasta2h5 -> import2geenuff -> geenuff2h5 -> add_ngs_coverage -> split on the bundled
    (real S. pombe) example."""
    fasta, L = EXAMPLE / "spombe_chrI_1-100000.fa.gz", 5346
    steps = [
        ["fasta2h5.py", "--fasta-path", fasta, "--species", "spombe", "--subsequence-length", L,
         "--h5-output-path", out / "genome.h5"],
        ["import2geenuff.py", "--fasta", fasta, "--gff3", EXAMPLE / "spombe_chrI_1-100000.gff3.gz",
         "--species", "spombe", "--db-path", out / "truth.sqlite3"],
        ["geenuff2h5.py", "--input-db-path", out / "truth.sqlite3", "--subsequence-length", L,
         "--h5-output-path", out / "truth.h5"],
        ["add_ngs_coverage.py", "-s", "spombe", "-d", out / "truth.h5",
         "-b", EXAMPLE / "spombe_chrI_1-100000.bam", "--second-read-is-sense-strand",
         "--dataset-prefix", "rnaseq", "--threads", "1"],
        ["n90_train_val_split.py", "-i", out / "truth.h5", "-o", f"{out}/",
         "--split-within-sequences", "--block-length", 2 * L, "--val-fraction", "0.2",
         "--seed", "1"],
    ]
    for step in steps:
        done = _run([*step, "--quiet"], env, bin_dir)
        assert done.returncode == 0, f"{step[0]}: {done.stderr}"
    for name in ("genome.h5", "truth.h5", "training_data.h5", "validation_data.h5"):
        assert (out / name).is_file(), name
