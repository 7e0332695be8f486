"""The distributions: `python -m build` makes an sdist and a wheel that pass `twine check
--strict`; the sdist holds the tests and the man pages, the wheel the man pages and the bundled
model; TensorFlow is only in the `model` extra. And `man <tool>` finds the pages for this venv."""
import email
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
META = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = META["project"]["version"]
SCRIPTS = sorted(META["project"]["scripts"])
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _skip_or_fail(msg):
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


def _source_copy(dest):
    """The checkout's files (tracked and untracked, not ignored) copied to ``dest``, so building
    writes nothing (build/, *.egg-info) into the checkout."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        _skip_or_fail(f"not a git checkout, cannot list its files: {listed.stderr.strip()}")
    for name in filter(None, listed.stdout.split("\0")):
        src = ROOT / name
        if src.is_file():  # a link (galaxy/data_manager/.../macros.xml) is copied as its file
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist path, wheel path) built from a copy of the checkout."""
    for module in ("build", "twine"):
        try:
            __import__(module)
        except ImportError:
            _skip_or_fail(f"{module} is not installed (pip install -e '.[test]' installs it)")
    tmp = tmp_path_factory.mktemp("dist")
    src = _source_copy(tmp / "src")
    out = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(src)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (sdist,) = (tmp / "dist").glob("*.tar.gz")
    (wheel,) = (tmp / "dist").glob("*.whl")
    return sdist, wheel


@pytest.mark.slow
def test_twine_check(dists):
    out = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_sdist_has_tests_and_man_pages(dists):
    with tarfile.open(dists[0]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files", "tests", "example", "galaxy", "modules"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert set(tracked) - names == set(), "tracked test files missing from the sdist"
    assert {f"man/{name}.1" for name in SCRIPTS} <= names
    assert {"LICENSE", "README.md", "pyproject.toml", "lib/helixtune/data/models/default.h5"} <= names
    assert not any(n.startswith("recipes/") for n in names), "the recipe names the sdist's sha256"


@pytest.mark.slow
def test_wheel_has_man_pages_and_model(dists):
    with zipfile.ZipFile(dists[1]) as whl:
        names = set(whl.namelist())
        metadata = email.message_from_bytes(whl.read(f"helixtune-{VERSION}.dist-info/METADATA"))
    assert {f"helixtune-{VERSION}.data/data/share/man/man1/{name}.1" for name in SCRIPTS} <= names
    assert {"helixtune/data/models/default.h5", "helixtune/data/model_list.csv"} <= names
    requires = metadata.get_all("Requires-Dist")
    tf = [r for r in requires if r.split(";")[0].strip().startswith(("tensorflow", "tf-keras"))]
    assert len(tf) == 2 and all('extra == "model"' in r for r in tf), requires


@pytest.mark.slow
def test_fresh_install_without_the_extra_runs_the_data_tools(dists, tmp_path):
    """Acceptance: in a new venv, `pip install` of the wheel without the `model` extra has no
    TensorFlow, runs the data chain on the bundled example, and HybridModel.py says what to add."""
    from test_optional_tensorflow import HINT, run_data_chain

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_NO_CACHE_DIR"] = "1"  # nothing written outside tmp_path
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                              str(dists[1])], env=env, capture_output=True, text=True, timeout=900)
    if install.returncode != 0 and not IN_CI and "No matching distribution" in install.stderr:
        pytest.skip(f"no package index reachable for the dependencies: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import tensorflow"], env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0, "TensorFlow was installed without the model extra"
    run_data_chain(tmp_path, env, bin_dir=str(venv / "bin"))
    help_text = subprocess.run([str(venv / "bin" / "HybridModel.py"), "--help"], env=env,
                               capture_output=True, text=True)
    assert help_text.returncode == 0 and HINT in " ".join(help_text.stdout.split())
    fail = subprocess.run([str(venv / "bin" / "HybridModel.py"), "-l", "m.h5", "-t", "d.h5"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert fail.returncode != 0 and fail.stderr.strip().endswith(HINT), fail.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_man_finds_the_page(name):
    """`man <tool>` with this venv's bin on PATH (man-db adds <prefix>/share/man for each
    <prefix>/bin): a regular install puts the pages there, ./.ci/setup links them for its
    editable install."""
    if shutil.which("man") is None:
        _skip_or_fail("man is not installed (./.ci/setup installs man-db)")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    env.pop("MANPATH", None)
    out = subprocess.run(["man", "-w", name], env=env, capture_output=True, text=True)
    if out.returncode != 0 and not IN_CI:
        pytest.skip(f"man finds no page for {name} in this venv (./.ci/setup links them)")
    assert out.returncode == 0, out.stderr
    assert pathlib.Path(out.stdout.strip()).read_text() == (ROOT / "man" / f"{name}.1").read_text()
