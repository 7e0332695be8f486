"""The fine-tuning workflow (galaxy/workflows/finetuning.gxwf.yml) run end to end in the real
Galaxy on the bundled example (example/), through the API: upload the inputs to a new history,
import and invoke the workflow, wait for every job and check its outputs.

Run it alone (about 5 minutes on two CPUs):
HELIXTUNE_GALAXY_TOOLS=<the workflow's tool ids> .venv/bin/python -m pytest tests/galaxy/test_galaxy_workflow.py
(a selection without them skips it before starting Galaxy; CI loads every wrapper).
"""
import gzip
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import h5py
import pytest

from galaxy_harness import GALAXY_DIR, ROOT, TEST_USER, galaxy_tool, selected_wrappers, wrappers

WORKFLOW = GALAXY_DIR / "workflows" / "finetuning.gxwf.yml"
EXAMPLE = ROOT / "example"
DEFAULT_MODEL = ROOT / "lib" / "helixtune" / "data" / "models" / "default.h5"
# The example's layout (example/run_finetuning.sh) and a few epochs, enough for genes in CI.
PARAMETERS = {"species": "spombe_example", "subsequence_length": 5346, "block_length": 2 * 5346, "epochs": 3}
#: An invocation whose steps are all scheduled; Galaxy's completion monitor moves it on to
#: "completed" a few seconds after its last job ends, so a poll may see either.
SCHEDULED = ("scheduled", "completed")
TIMEOUT_S = float(os.environ.get("HELIXTUNE_GALAXY_WORKFLOW_TIMEOUT", 1800))
JOB_DONE = {"ok", "error", "failed", "deleted", "deleting", "skipped", "paused"}  # paused: after a failed input
DATASET_DONE = {"ok", "error", "discarded", "failed_metadata", "paused", "deferred"}


def workflow_tool_ids():
    return sorted(set(re.findall(r"^\s+tool_id: (\S+)$", WORKFLOW.read_text(), re.M)))


class Api:
    """Galaxy's REST API as one user (JSON in, JSON out)."""

    def __init__(self, url, key):
        self.url, self.key = url, key

    def __call__(self, method, route, payload=None, raw=False, **query):
        url = f"{self.url}/api/{route}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"x-api-key": self.key, "content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {route}: HTTP {err.code}: {err.read().decode(errors='replace')}")
        return body if raw else json.loads(body)


def user_api(server):
    """The API as the (admin) test user galaxy-tool-test also uses, created when missing: the
    bootstrap admin key may not run workflows; path uploads need an admin."""
    admin = Api(server.url, server.api_key)
    users = admin("GET", "users", f_email=TEST_USER)
    if users:
        user_id = users[0]["id"]
    else:
        user_id = admin("POST", "users", {"username": "test", "email": TEST_USER,
                                          "password": "testpass"})["id"]
    return Api(server.url, admin("POST", f"users/{user_id}/api_key"))


def upload(api, history_id, path, ext):
    """Upload a server-side file (path paste: admins, allow_path_paste); returns its dataset id."""
    out = api("POST", "tools/fetch", {"history_id": history_id, "targets": [{
        "destination": {"type": "hdas"},
        "elements": [{"src": "path", "path": str(path), "ext": ext, "name": path.name}]}]})
    return out["outputs"][0]["id"]


def wait_datasets(api, ids, timeout=300):
    t0 = time.monotonic()
    for dataset_id in ids:
        while (state := api("GET", f"datasets/{dataset_id}")["state"]) not in DATASET_DONE:
            assert time.monotonic() - t0 < timeout, f"upload {dataset_id} still {state} after {timeout} s"
            time.sleep(2)
        assert state == "ok", f"upload {dataset_id}: {state}: {api('GET', f'datasets/{dataset_id}').get('misc_info')}"


def failed_jobs_report(api, invocation_id):
    """Tool, command line and stderr of every job of the invocation that did not finish ok."""
    lines = []
    for job in api("GET", "jobs", invocation_id=invocation_id):
        if job["state"] == "ok":
            continue
        full = api("GET", f"jobs/{job['id']}", full="true")
        lines.append(f"--- {full['tool_id']}: {full['state']}\n$ {full.get('command_line', '')}\n"
                     f"{full.get('tool_stderr', '')}{full.get('job_stderr', '')}")
    return "\n".join(lines)


def wait_invocation(api, invocation_id, server):
    """Wait until the invocation is scheduled and all its jobs are done; fail with the stderr of
    the failing jobs."""
    t0 = time.monotonic()
    while True:
        invocation = api("GET", f"invocations/{invocation_id}")
        states = api("GET", f"invocations/{invocation_id}/jobs_summary").get("states", {})
        if invocation["state"] in ("failed", "cancelled"):
            break
        if invocation["state"] in SCHEDULED and states and set(states) <= JOB_DONE:
            break
        if time.monotonic() - t0 > TIMEOUT_S:
            pytest.fail(f"invocation not finished after {TIMEOUT_S:.0f} s: {invocation['state']} {states}\n"
                        f"{failed_jobs_report(api, invocation_id)}", pytrace=False)
        time.sleep(5)
    if invocation["state"] not in SCHEDULED or set(states) != {"ok"}:
        messages = invocation.get("messages")
        pytest.fail(f"invocation {invocation['state']}, jobs {states}, messages {messages}\n"
                    f"{failed_jobs_report(api, invocation_id)}\n{server.log_tail(40)}", pytrace=False)
    return invocation, time.monotonic() - t0


@pytest.mark.galaxy
def test_workflow_lint():
    """planemo workflow_lint: gxformat2 syntax, tool ids and versions, the planemo test file
    (finetuning.gxwf-tests.yml, for ``planemo test``)."""
    planemo = galaxy_tool("planemo")
    out = subprocess.run([str(planemo), "workflow_lint", "--fail_level", "warn", str(WORKFLOW)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    tokens = {t.get("name"): t.text for t in ET.parse(GALAXY_DIR / "macros.xml").getroot().iter("token")}
    version = f"{tokens['@TOOL_VERSION@']}+galaxy{tokens['@VERSION_SUFFIX@']}"
    steps = re.findall(r"^\s+tool_id: (\S+)\n\s+tool_version: (\S+)$", WORKFLOW.read_text(), re.M)
    assert {v for _, v in steps} == {version}, f"the wrappers' version is {version}: {steps}"
    assert {t for t, _ in steps} <= {tool_id for tool_id, _ in wrappers()}


@pytest.mark.galaxy
@pytest.mark.slow
def test_finetuning_workflow(request, tmp_path):
    loaded = {tool_id for tool_id, _ in selected_wrappers()}
    missing = [t for t in workflow_tool_ids() if t not in loaded]
    if missing:  # checked before the server starts (under CI a skip fails the run)
        pytest.skip(f"HELIXTUNE_GALAXY_TOOLS leaves out the workflow's tools {','.join(missing)}")
    galaxy_server = request.getfixturevalue("galaxy_server")
    api = user_api(galaxy_server)
    history_id = api("POST", "histories", {"name": "helixtune fine-tuning workflow"})["id"]
    plain = {}
    for suffix in ("fa", "gff3"):  # the reference GFF3 format takes no .gz; FASTA plain as most users'
        plain[suffix] = tmp_path / f"spombe_chrI_1-100000.{suffix}"
        with gzip.open(EXAMPLE / f"spombe_chrI_1-100000.{suffix}.gz") as src:
            plain[suffix].write_bytes(src.read())
    inputs = {"genome": upload(api, history_id, plain["fa"], "fasta"),
              "rnaseq_bam": upload(api, history_id, EXAMPLE / "spombe_chrI_1-100000.bam", "bam"),
              "reference_gff3": upload(api, history_id, plain["gff3"], "gff3"),
              "pretrained_model": upload(api, history_id, DEFAULT_MODEL, "h5")}
    wait_datasets(api, inputs.values())

    workflow = api("POST", "workflows", {"workflow": {"yaml_content": WORKFLOW.read_text()}})
    invocation = api("POST", f"workflows/{workflow['id']}/invocations", {
        "history_id": history_id, "inputs_by": "name",
        "inputs": {**{name: {"src": "hda", "id": i} for name, i in inputs.items()}, **PARAMETERS}})
    invocation, elapsed = wait_invocation(api, invocation["id"], galaxy_server)

    outputs = invocation["outputs"]
    assert set(outputs) == {"default_gff3", "tuned_gff3", "tuned_model", "comparison_html", "comparison_json"}

    def content(label):
        return api("GET", f"datasets/{outputs[label]['id']}/display", raw=True)

    for label in ("default_gff3", "tuned_gff3"):
        genes = [x for x in content(label).decode().splitlines() if x.split("\t")[2:3] == ["gene"]]
        assert genes, f"{label} has no gene lines"
        print(f"{label}: {len(genes)} genes")
    report = json.loads(content("comparison_json"))
    f1 = {p["name"]: p["genic_f1"] for p in report["predictions"]}
    assert set(f1) == {"default", "tuned"} and all(0 < v <= 1 for v in f1.values()), f1
    assert b"<html" in content("comparison_html").lower()
    model = tmp_path / "tuned.h5"
    model.write_bytes(content("tuned_model"))
    with h5py.File(model, "r") as h5:
        assert "model_weights" in h5, list(h5)
    print(f"fine-tuning workflow: {len(api('GET', 'jobs', invocation_id=invocation['id']))} jobs in "
          f"{elapsed:.0f} s (server startup {galaxy_server.startup_s:.0f} s); genic F1 {f1}")
