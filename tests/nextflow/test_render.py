"""The pipeline run without a Nextflow runtime (issue 17, acceptance 2): every module's `script:`
and `stub:` block rendered by a real Groovy engine (the language server jar's) for the tasks main.nf
starts under the test profile, run in order on the bundled example with the files Nextflow would
stage, each producing the outputs it declares. See render.py for what is imitated."""
import json
import os
import pathlib
import sys

import pytest

from nf_parse import ROOT, parse_module
from render import (JAR, SCENARIOS, Groovy, TaskFailed, ext_expressions, genome_rows, groovy_available,
                    params_for, process_calls, render, run_pipeline, scenario_params, stage_names)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def groovy():
    if not groovy_available():
        msg = f"rendering needs java and {JAR} (./.ci/setup makes it)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    engine = Groovy()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def env():
    """The suite's executables (this interpreter's bin) first on PATH, as in the container."""
    return dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture(scope="module")
def stub_runs(groovy, env, tmp_path_factory):
    runs = {}
    for name in SCENARIOS:
        workdir = tmp_path_factory.mktemp(f"stub_{name}")
        runs[name] = run_pipeline(scenario_params(name, workdir), workdir, stub=True, env=env)
    return runs


@pytest.mark.parametrize("pattern, sources, expected", [
    (None, ["/a/x.h5"], ["x.h5"]),
    ("input/*", ["/a/x.h5"], ["input/x.h5"]),
    ("bam/*", ["/a/x.bam", "/b/y.bam"], ["bam/x.bam", "bam/y.bam"]),
    ("data/training_data.*.h5", ["/a/t.h5"], ["data/training_data..h5"]),
    ("data/training_data.*.h5", ["/a/t.h5", "/b/t.h5"], ["data/training_data.1.h5", "data/training_data.2.h5"]),
    ("predictions/?/*", ["/a/x.gff3", "/b/x.gff3"], ["predictions/1/x.gff3", "predictions/2/x.gff3"]),
    ("file??.txt", ["/a/x"], ["file01.txt"]),
    ("model.h5", ["/a/x", "/b/y"], ["model.h51", "model.h52"]),
])
def test_stage_names_as_nextflow(pattern, sources, expected):
    assert stage_names(pattern, sources) == expected


@pytest.mark.parametrize("profile", ["base", "test"])
def test_config_ext_expressions_evaluate(groovy, profile):
    """Every ext.args/ext.prefix of conf/*.config that applies to a process main.nf starts is a
    Groovy expression giving a string with the profile's params (a line starting with `+`, say,
    ends the expression early and fails here)."""
    params = params_for(profile, {"model": "m.h5", "bam": "a.bam", "lineage": "fungi"})
    for process in sorted(process_calls()):
        if ext_expressions(process, profile):
            answer = groovy.render({"body": '"${task.ext.args ?: \'\'}|${task.ext.prefix ?: \'\'}"',
                                    "ext": ext_expressions(process, profile), "params": params,
                                    "task": {"process": process, "cpus": 1}, "vars": {"meta": {"id": "sp"}},
                                    "outputs": []})
            assert "error" not in answer, f"{process} ({profile}): {answer['error']}"
            assert "null" not in answer["command"], f"{process}: {answer['command']}"


@pytest.mark.parametrize("bams, expected", [
    (["bam/a.bam"], "--bam bam/a.bam \\"),
    (["bam/a.bam", "bam/b.bam"], "--bam bam/a.bam bam/b.bam \\"),
])
def test_one_or_several_bams(groovy, bams, expected):
    """One staged file is a path, several a blank-separated list: both render as file names."""
    module = parse_module(ROOT / "modules" / "add_ngs_coverage" / "main.nf")
    files = {"__file__": bams[0]} if len(bams) == 1 else {"__files__": bams}
    command, _ = render(groovy, module, "ADD_NGS_COVERAGE",
                        {"meta": {"id": "sp"}, "h5": {"__file__": "input/x.h5"}, "bams": files, "bais": {"__files__": []},
                         "strandedness": "unstranded"}, params_for("test"))
    assert expected in [line.strip() for line in command.splitlines()]


def test_bad_value_fails_rendering(groovy):
    """A guard's error(...) in a script block stops the task, as in Nextflow."""
    module = parse_module(ROOT / "modules" / "add_ngs_coverage" / "main.nf")
    with pytest.raises(TaskFailed, match="strandedness must be"):
        render(groovy, module, "ADD_NGS_COVERAGE", {"meta": {"id": "sp"}, "h5": {"__file__": "x.h5"},
               "bams": {"__file__": "a.bam"}, "bais": {"__files__": []}, "strandedness": "reverse"}, params_for("test"))


def test_main_nf_rows_match_the_plan(groovy, tmp_path):
    """main.nf's own samplesheetRows() and genomeRow(), run by Groovy, give the rows render.py's
    plan starts from: the two-genome samplesheet and the test profile's single genome."""
    sheet = scenario_params("samplesheet", tmp_path)
    rows = groovy.call(f"samplesheetRows('{sheet['input']}', '{sheet['strandedness']}')")
    assert rows == {"value": genome_rows(sheet)}
    p = params_for("test")
    args = ", ".join("null" if p[k] is None else f"'{p[k]}'"
                     for k in ("species", "fasta", "gff3", "bam", "strandedness", "reference_gff3"))
    assert groovy.call(f"genomeRow({args})") == {"value": genome_rows(p)[0]}


FASTA = ROOT / "example" / "spombe_chrI_1-100000.fa.gz"


@pytest.mark.parametrize("rows, message", [
    ([f"sp_a,{FASTA}", f"sp_a,{FASTA}"], "line 3: species sp_a is given twice"),
    ([f"sp-a,{FASTA}"], "line 2: species 'sp-a' must be letters, digits and _"),
    (["sp_a,"], "line 2: no fasta"),
    ([f"sp_a,{FASTA},,,reverse"], "line 2: strandedness must be"),
    ([f"sp_a,{FASTA},,missing.bam"], "No such file: missing.bam"),
    ([], "sheet.csv: no genomes"),
])
def test_bad_samplesheet_stops_main_nf(groovy, tmp_path, rows, message):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("\n".join(["species,fasta,gff3,bam,strandedness"] + rows) + "\n")
    answer = groovy.call(f"samplesheetRows('{sheet}', 'unstranded')")
    assert message in answer.get("error", ""), answer


@pytest.mark.slow
def test_plan_covers_main_nf(stub_runs):
    """The scenarios together start every process main.nf (and its subworkflows) calls, so a process
    added to main.nf without a step in render.pipeline() fails here."""
    started = {task.process for tasks in stub_runs.values() for task in tasks}
    assert started == process_calls()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_stub_blocks_run(stub_runs, scenario):
    """-stub-run: every stub touches the outputs its process declares (checked in run_task)."""
    assert stub_runs[scenario]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_script_blocks_run_on_example(groovy, env, tmp_path, scenario):
    """The real commands, in main.nf's order, on the bundled example: each exits 0 and leaves
    every output it declares, none empty (checked in run_task)."""
    tasks = run_pipeline(scenario_params(scenario, tmp_path), tmp_path, env=env)
    first = next(t for t in tasks if t.process in ("HELIXER_POST", "HELIXER"))
    assert "\tgene\t" in pathlib.Path(first.emits["gff3"][1]).read_text(), f"{first.process}: no genes"
    genomes = {t.emits["h5"][0]["id"] for t in tasks if t.process == "FASTA2H5"}
    reports = [t for t in tasks if t.process == "COMPARE_ANNOTATIONS"]
    assert {t.emits["json"][0]["id"] for t in reports} == genomes, "one comparison per genome"
    for report in reports:
        compared = json.loads(pathlib.Path(report.emits["json"][1]).read_text())["predictions"]
        annotations = [t for t in tasks if "gff3" in (t.emits or {}) and t.emits["gff3"][0] == report.emits["json"][0]]
        assert len(compared) == len(annotations), "every model's gene models of the genome are compared"
    assert len([t for t in tasks if t.process == "HYBRIDMODEL_TRAIN"]) == 1, "one model, tuned on every genome"
