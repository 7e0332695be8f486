"""Every executable of pyproject.toml: --help, --version (fast, = package version), man page."""
import pathlib
import re
import shutil
import subprocess
import sys
import time
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
META = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = META["project"]["version"]
SCRIPTS = sorted(META["project"]["scripts"])


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_and_version(name):
    exe = shutil.which(name)
    assert exe, f"{name} is not on PATH (pip install . puts it there)"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage:" in out.stdout
    t0 = time.monotonic()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"{name} {VERSION}"
    assert time.monotonic() - t0 < 3, "--version must be fast (Nextflow evaluates it per task)"


@pytest.mark.parametrize("name", SCRIPTS)
def test_man_page_present(name):
    page = ROOT / "man" / f"{name}.1"
    assert page.exists(), "run python .ci/manpages.py"
    assert re.search(r"\.SH NAME", page.read_text())


def test_man_pages_up_to_date():
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "manpages.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_galaxy_macros_version():
    macros = (ROOT / "galaxy" / "macros.xml").read_text()
    assert f'<token name="@TOOL_VERSION@">{VERSION}</token>' in macros
