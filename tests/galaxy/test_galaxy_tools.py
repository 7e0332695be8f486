"""Every Galaxy wrapper (galaxy/*.xml, found by glob): planemo lint clean, IUC test conventions,
and its <tests> pass in a real Galaxy server (galaxy-tool-test).

Run only your wrappers:  HELIXTUNE_GALAXY_TOOLS=helixtune_fasta2h5 .venv/bin/python -m pytest tests/galaxy
(or ``-k helixtune_fasta2h5``; the environment variable also keeps the others out of the server).
"""
import importlib
import json
import re
import subprocess
import time
import tomllib
import xml.etree.ElementTree as ET

import pytest

from galaxy_harness import GALAXY_DIR, ROOT, galaxy_tool, selected_wrappers

WRAPPERS = selected_wrappers()
IDS = [tool_id for tool_id, _ in WRAPPERS]
# bio.tools is looked up online; CI and this project's machines have no route to it.
LINT_SKIP = "BioToolsValid"


@pytest.mark.galaxy
@pytest.mark.parametrize("tool_id,path", WRAPPERS, ids=IDS)
def test_planemo_lint(tool_id, path):
    planemo = galaxy_tool("planemo")
    out = subprocess.run([str(planemo), "lint", "--fail_level", "warn", "--skip", LINT_SKIP, str(path)],
                         capture_output=True, text=True, cwd=GALAXY_DIR, timeout=300)
    assert out.returncode == 0, f"planemo lint {path.name} failed:\n{out.stdout}\n{out.stderr}"


@pytest.mark.parametrize("tool_id,path", WRAPPERS, ids=IDS)
def test_wrapper_conventions(tool_id, path):
    """What planemo does not check: id prefix, shared version tokens, an expect_failure test, and
    test inputs that exist in galaxy/test-data/."""
    text = path.read_text()
    root = ET.fromstring(text)
    assert tool_id.startswith("helixtune_")
    assert root.get("version") == "@TOOL_VERSION@+galaxy@VERSION_SUFFIX@"
    assert root.get("profile") == "@PROFILE@"
    assert root.find("command").get("detect_errors") == "exit_code"
    tests = root.findall("tests/test")
    assert tests, "a wrapper needs <tests>"
    assert any(t.get("expect_failure") == "true" and t.find("assert_stderr") is not None for t in tests), \
        "a wrapper needs one expect_failure test with assert_stderr"
    for t in tests:
        for param in t.iter("param"):
            for value in param.get("value", "").split(","):  # multiple="true" data: a,b
                if "." in value and "/" not in value and not value.replace(".", "").isdigit():
                    if (GALAXY_DIR / "test-data" / value).suffix in (".fa", ".gz", ".gff3", ".h5", ".bam",
                                                                     ".fasta", ".txt", ".tsv", ".json"):
                        assert (GALAXY_DIR / "test-data" / value).exists(), f"missing test-data/{value}"


@pytest.mark.galaxy
@pytest.mark.slow
@pytest.mark.parametrize("tool_id,path", WRAPPERS, ids=IDS)
def test_galaxy_tool_tests(tool_id, path, galaxy_server, tmp_path):
    tool_test = galaxy_tool("galaxy-tool-test")
    report = tmp_path / "report.json"
    t0 = time.monotonic()
    out = subprocess.run([str(tool_test), "-u", galaxy_server.url, "-a", galaxy_server.api_key,
                          "-t", tool_id, "--output-json", str(report), "-o", str(tmp_path / "outputs"),
                          "--test-data", str(GALAXY_DIR / "test-data")],
                         capture_output=True, text=True, timeout=1200)
    elapsed = time.monotonic() - t0
    summary = ""
    if report.exists():
        data = json.loads(report.read_text())
        summary = json.dumps(data.get("results", {}))
        failed = [t for t in data.get("tests", []) if t.get("data", {}).get("status") != "success"]
        summary += "".join(f"\n- {t['id']}: {json.dumps(t.get('data', {}), default=str)[:3000]}"
                           for t in failed)
    n_expected = len(ET.parse(path).getroot().findall("tests/test"))
    assert out.returncode == 0, (f"galaxy-tool-test {tool_id} failed after {elapsed:.0f} s: {summary}\n"
                                 f"{out.stdout[-4000:]}\n{out.stderr[-4000:]}\n{galaxy_server.log_tail(40)}")
    assert report.exists(), out.stderr
    data = json.loads(report.read_text())
    passed = [t for t in data["tests"] if t.get("data", {}).get("status") == "success"]
    assert len(passed) == n_expected, summary
    print(f"{tool_id}: {n_expected} Galaxy tests passed in {elapsed:.1f} s "
          f"(server startup {galaxy_server.startup_s:.1f} s)")


def _macro_arguments():
    """{xml macro name: the argument= flags inside it} from galaxy/macros.xml."""
    root = ET.parse(GALAXY_DIR / "macros.xml").getroot()
    return {m.get("name"): {p.get("argument") for p in m.iter("param") if p.get("argument")}
            for m in root.findall("xml")}


@pytest.mark.parametrize("tool_id,path", WRAPPERS, ids=IDS)
def test_wrapper_flags_exist_in_tool(tool_id, path):
    """One spelling per option: every argument= of the form (its macros included) and every --flag
    of the command is an option of the suite executable(s) the command runs."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    root = ET.parse(path).getroot()
    command = root.find("command").text or ""
    used = [w for w in scripts if re.search(rf"(^|[\s;&|(]){re.escape(w)}(\s|$)", command)]
    assert used, f"the command runs none of {sorted(scripts)}"
    options = set()
    for exe in used:
        parser = importlib.import_module(scripts[exe].split(":")[0]).get_parser()
        options |= {o for a in parser._actions for o in a.option_strings}
    macros = _macro_arguments()
    arguments = {p.get("argument") for p in root.iter("param") if p.get("argument")}
    for expand in root.iter("expand"):
        arguments |= macros.get(expand.get("macro"), set())
    flags = set(re.findall(r"(?<![\w$-])(--[A-Za-z][\w-]*)", command))
    unknown = (arguments | flags) - options
    assert not unknown, f"{path.name}: {', '.join(used)} has no option(s) {sorted(unknown)}"
