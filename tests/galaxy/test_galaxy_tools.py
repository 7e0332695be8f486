"""Every Galaxy wrapper (galaxy/*.xml, found by glob): planemo lint clean, IUC test conventions,
and its <tests> pass in a real Galaxy server (galaxy-tool-test).

Run only your wrappers:  HELIXTUNE_GALAXY_TOOLS=helixtune_fasta2h5 .venv/bin/python -m pytest tests/galaxy
(or ``-k helixtune_fasta2h5``; the environment variable also keeps the others out of the server).
"""
import hashlib
import importlib
import json
import os
import pathlib
import re
import string
import subprocess
import time
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from galaxy_harness import (DATA_MANAGER_CONF, GALAXY_DIR, ROOT, data_manager_data_path, galaxy_tool,
                            is_data_manager, selected_wrappers)

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
    assert root.find("expand[@macro='creator']") is not None, "a wrapper needs <creator>"
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
    if is_data_manager(path):
        check_data_tables(galaxy_server, tool_id, path, data["tests"])
    print(f"{tool_id}: {n_expected} Galaxy tests passed in {elapsed:.1f} s "
          f"(server startup {galaxy_server.startup_s:.1f} s)")


def _api_get(server, route, raw=False):
    request = urllib.request.Request(f"{server.url}/api/{route}", headers={"x-api-key": server.api_key})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return body if raw else json.loads(body)


def _sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def check_data_tables(server, tool_id, path, report_tests):
    """What Galaxy made of a data manager's output, after its tests: every entry of each successful
    test's JSON is in the live data table (GET /api/tool_data) and its .loc file, moved columns
    translated to <galaxy_data_manager_data_path>/<target>, and the moved file is there, equal to an
    input file of the test."""
    conf = ET.parse(DATA_MANAGER_CONF).getroot().find(f"data_manager[@id='{tool_id}']")
    assert conf is not None, f"{tool_id} is not in {DATA_MANAGER_CONF.name}"
    data_path = str(data_manager_data_path(server.workdir))
    xml_tests = ET.parse(path).getroot().findall("tests/test")
    checked = 0
    for test in report_tests:
        info = test["data"]
        if info.get("status") != "success" or xml_tests[info["test_index"]].get("expect_failure") == "true":
            continue
        test_data = [GALAXY_DIR / "test-data" / param.get("value")
                     for param in xml_tests[info["test_index"]].iter("param") if param.get("value")]
        inputs = {_sha256(f) for f in test_data if f.is_file()}
        for output in info["job"]["outputs"].values():
            bundle = json.loads(_api_get(server, f"datasets/{output['id']}/display", raw=True))
            for table in conf.findall("data_table"):
                entries = bundle["data_tables"][table.get("name")]
                live = _api_get(server, f"tool_data/{table.get('name')}")
                rows = [dict(zip(live["columns"], fields)) for fields in live["fields"]]
                for entry in entries:
                    row = next((r for r in rows if r["value"] == entry["value"]), None)
                    assert row is not None, f"{entry} is not in the data table {table.get('name')}: {rows}"
                    line = "\t".join(row[c] for c in live["columns"])
                    loc_lines = {x for loc in pathlib.Path(data_path).glob("*.loc")
                                 for x in loc.read_text().splitlines()}
                    assert line in loc_lines, f"{line!r} was not written to a .loc file in {data_path}"
                    for column in table.iter("column"):
                        name = column.get("name")
                        if column.find("move") is None:
                            assert row[name] == entry[name], (name, row, entry)
                            continue
                        values = dict(entry, GALAXY_DATA_MANAGER_DATA_PATH=data_path)
                        expected = string.Template(column.find("value_translation").text).substitute(values)
                        expected = os.path.abspath(expected)
                        assert row[name] == expected, (name, row, entry)
                        assert os.path.isfile(expected), f"{expected} was not installed"
                        if inputs:
                            assert _sha256(expected) in inputs, f"{expected} is none of the test's inputs"
                    checked += 1
    assert checked, f"no data table entry of {tool_id} was checked"


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


def _executables(command):
    """The suite executables a wrapper's command runs, with their parsers' option strings."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    used = {w: scripts[w] for w in scripts if re.search(rf"(^|[\s;&|(]){re.escape(w)}(\s|$)", command)}
    return {exe: {o for a in importlib.import_module(target.split(":")[0]).get_parser()._actions
                  for o in a.option_strings} for exe, target in used.items()}


SLOTS = r"\\\$\{GALAXY_SLOTS:-1\}"


@pytest.mark.parametrize("tool_id,path", [w for w in WRAPPERS if not is_data_manager(w[1])],
                         ids=[t for t, p in WRAPPERS if not is_data_manager(p)])
def test_wrapper_passes_galaxy_slots(tool_id, path):
    """Galaxy's job size reaches the tool: --threads where it has one, else HELIXTUNE_THREADS
    (the budget of every thread pool, TensorFlow's included)."""
    command = ET.parse(path).getroot().find("command").text or ""
    for exe, options in _executables(command).items():
        if "--threads" in options:
            assert re.search(rf'--threads\s+"?{SLOTS}"?', command), f"{exe} --threads"
        else:
            assert re.search(rf"^export HELIXTUNE_THREADS={SLOTS} &&$", command, re.M), exe


@pytest.mark.parametrize("tool_id,path", WRAPPERS, ids=IDS)
def test_network_tools_declare_gpu_resources(tool_id, path):
    """The wrappers that run the network say they can use one GPU (for job routing rules)."""
    root = ET.parse(path).getroot()
    runs_network = {"HybridModel.py", "Helixer.py"} & set(_executables(root.find("command").text or ""))
    gpu = root.find("expand[@macro='requirements']/expand[@macro='gpu_resources']") is not None
    assert gpu == bool(runs_network), f"{path.name}: gpu_resources {'missing' if runs_network else 'unneeded'}"


@pytest.mark.galaxy
def test_tool_shed_metadata():
    """galaxy/.shed.yml: planemo shed_lint of the realized repositories (wrappers, data manager,
    suite) and their tools. Skipped: the online checks (bio.tools, the Tool Shed's versions) and
    remote_repository_url's suffix check, which compares it with this checkout's directory name."""
    planemo = galaxy_tool("planemo")
    out = subprocess.run([str(planemo), "shed_lint", "--tools", "--ensure_metadata", "--fail_level", "warn",
                          "--skip", f"{LINT_SKIP},version_bumped,shed_remote_repository_url", "."],
                         capture_output=True, text=True, cwd=GALAXY_DIR, timeout=600)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    realized = re.findall(r"^Linting repository ", out.stdout + out.stderr, re.M)
    assert len(realized) == 3, out.stdout[-3000:]  # helixtune, the data manager, the suite
