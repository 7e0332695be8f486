"""Run the pipeline's processes without Nextflow: each module's `script:` (or `stub:`) block is
rendered by a real Groovy engine (the one inside the Nextflow language server jar) with the task,
inputs and params Nextflow would give it, then run with bash in a work directory holding the staged
inputs, and its declared outputs are checked. pipeline() is main.nf's workflow for one parameter
set (a samplesheet's rows come from main.nf's own samplesheetRows(), run in Groovy).

What Nextflow itself does here is imitated on purpose, and only that: `withName` selectors of
conf/*.config match the process name (an `include ... as ALIAS` is matched by ALIAS), `ext.*`
closures see `params` and the task's inputs, path inputs are staged by their `stageAs` pattern (one
file is a path, none or several a blank-separated list) and left out of output globs, the shell is
conf/base.config's `bash -euo pipefail`, and `eval()` outputs run after the command (stubs too).
Not imitated: `when:` blocks, memory/time limits, retries, publishDir, containers.
"""
import csv
import dataclasses
import glob
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

from nf_parse import ROOT, literal, parse_module, strip_comments

JAR = ROOT / ".cache" / "language-server-all.jar"
GROOVY_SCRIPT = pathlib.Path(__file__).with_name("render.groovy")
CONFIGS = {"base": ["nextflow.config", "conf/base.config", "conf/modules.config"],
           "test": ["nextflow.config", "conf/base.config", "conf/modules.config", "conf/test.config"]}


def groovy_available():
    return JAR.exists() and shutil.which("java") is not None


class Groovy:
    """A long-running Groovy interpreter answering render requests (render.groovy)."""

    def __init__(self):
        self.proc = subprocess.Popen(["java", "-cp", str(JAR), "groovy.ui.GroovyMain", str(GROOVY_SCRIPT)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def render(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the Groovy renderer stopped (see stderr)"
        return json.loads(line)

    def call(self, expression):
        """Value of expression, calling the functions main.nf defines after its workflow."""
        main = (ROOT / "main.nf").read_text()
        functions = main[re.search(r"^def \w+\(", main, re.M).start():]
        return self.render({"functions": functions, "call": expression})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ---- Groovy text scanning -------------------------------------------------------------------

def _skip_string(text, i):
    """Index after the string literal starting at text[i] (', ", ''' or \"\"\")."""
    quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else text[i]
    i += len(quote)
    while not text.startswith(quote, i):
        i += 2 if text[i] == "\\" else 1
    return i + len(quote)


def closing(text, i):
    """Index after the bracket opened at text[i], skipping strings."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = []
    while True:
        c = text[i]
        if c in "'\"":
            i = _skip_string(text, i)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")}]":
            assert stack.pop() == c, f"unbalanced {c!r} at {text[max(0, i - 40):i + 1]!r}"
            if not stack:
                return i + 1
        i += 1


def split_top(text):
    """Comma-separated items of text, not splitting inside brackets or strings."""
    items, start, i = [], 0, 0
    while i < len(text):
        c = text[i]
        if c in "'\"":
            i = _skip_string(text, i)
            continue
        if c in "([{":
            i = closing(text, i)
            continue
        if c == ",":
            items.append(text[start:i].strip())
            start = i + 1
        i += 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def expression_at(text, i):
    """The Groovy expression starting at text[i]: a closure, a string, or the rest of the line."""
    if text[i] == "{":
        return text[i:closing(text, i)]
    if text[i] in "'\"":
        return text[i:_skip_string(text, i)]
    return text[i:].split("\n", 1)[0].strip()


def _blocks(text, head):
    """(argument, body) of each `head ARG { body }` in text, e.g. withName: 'X' { ... }."""
    for m in re.finditer(rf"{head}\s*:?\s*(['\"]?)([^'\"{{\s]+)\1\s*\{{", text):
        yield m.group(2), text[m.end() - 1:closing(text, m.end() - 1)]


# ---- configuration: params, ext.*, cpus -----------------------------------------------------

def config_text(profile):
    return [strip_comments((ROOT / name).read_text()) for name in CONFIGS[profile]]


def params_for(profile, overrides=None):
    """params of nextflow.config, then the profile's config (${projectDir} resolved), then overrides."""
    params = {}
    for text in config_text(profile):
        m = re.search(r"^params\s*\{(.*?)^\}", text, re.M | re.S)
        for line in (m.group(1).splitlines() if m else []):
            assign = re.fullmatch(r"\s*(\w+)\s*=\s*(.+?)\s*", line)
            if assign:
                params[assign.group(1)] = literal(
                    assign.group(2).replace("${projectDir}", str(ROOT)), f"params.{assign.group(1)}")
    params.update(overrides or {})
    return params


def ext_expressions(process, profile):
    """{'args': EXPR, 'prefix': EXPR} from the withName blocks matching the process (the last wins)."""
    simple = process.split(":")[-1]
    found = {}
    for text in config_text(profile):
        for selector, body in _blocks(text, "withName"):
            if re.fullmatch(selector, simple) or re.fullmatch(selector, process):
                for m in re.finditer(r"ext\.(\w+)\s*=\s*", body):
                    found[m.group(1)] = expression_at(body, m.end())
    return {key: f"({expr}\n)" for key, expr in found.items()}


def cpus_for(module, profile):
    """task.cpus at the first attempt: the module's label in conf/base.config, within resourceLimits."""
    labels = re.findall(r"^\s*label\s+'(\w+)'", module.text, re.M)
    cpus, limit = 1, None
    for text in config_text(profile):
        for label, body in _blocks(text, "withLabel"):
            m = re.search(r"cpus\s*=\s*\{\s*(\d+)", body)
            if label in labels and m:
                cpus = int(m.group(1))
        m = re.search(r"resourceLimits\s*=\s*\[[^\]]*cpus:\s*(\d+)", text)
        limit = int(m.group(1)) if m else limit
    return min(cpus, limit) if limit else cpus


# ---- process declarations -------------------------------------------------------------------

@dataclasses.dataclass
class Item:
    kind: str      # val, path, eval, env, ...
    name: str      # variable (inputs) or pattern/command (outputs)
    options: dict  # stageAs, type, emit, optional ...


def _item(text):
    m = re.fullmatch(r"(\w+)\s*\((.*)\)|(\w+)\s+(.+)", text.strip(), re.S)
    kind, args = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    parts = split_top(args)
    options = {}
    for part in parts[1:]:
        key, value = part.split(":", 1)
        options[key.strip()] = _unquote(value.strip())
    return Item(kind, _unquote(parts[0]), options)


def _unquote(text):
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def declarations(section_text):
    """One (items, options such as emit/topic/optional) per input or output line."""
    found = []
    for line in strip_comments(section_text).splitlines():
        line = line.strip()
        if not line:
            continue
        bare = re.match(r"(\w+)\s+(?![(\s])", line)  # `val x`, `path "a.log", emit: log`
        if line.startswith("tuple"):
            parts = split_top(line[len("tuple"):])
        elif bare:
            parts = split_top(line[bare.end():])
            parts[0] = f"{bare.group(1)}({parts[0]})"
        else:
            parts = split_top(line)
        option = re.compile(r"^\w+\s*:")
        items = [_item(part) for part in parts if not option.match(part)]
        options = {k.strip(): _unquote(v.strip()) for k, v in (part.split(":", 1) for part in parts if option.match(part))}
        found.append((items, options))
    return found


# ---- staging --------------------------------------------------------------------------------

def _replace_stars(name, index, strip=False):
    return name.replace("*", "" if strip else str(index))


def _replace_questions(name, index):
    return re.sub(r"\?+", lambda m: str(index).zfill(len(m.group())), name)


def stage_names(pattern, sources):
    """Names Nextflow stages the files under, for a `stageAs` pattern (or none)."""
    names = [pathlib.Path(s).name for s in sources]
    if not pattern or pattern == "*":
        return names
    if "*" not in pattern and "?" not in pattern and len(sources) > 1:
        pattern += "*"
    staged = []
    for index, source_name in enumerate(names, 1):
        parent, _, name = pattern.rpartition("/")
        if name in ("*", ""):
            name = source_name
        else:
            name = _replace_questions(_replace_stars(name, index, strip=len(sources) <= 1), index)
        if parent:
            name = _replace_questions(_replace_stars(parent, index), index) + "/" + name
        staged.append(name)
    return staged


# ---- running one task -----------------------------------------------------------------------

class TaskFailed(AssertionError):
    pass


@dataclasses.dataclass
class Task:
    process: str         # name as Nextflow knows it (alias, with the subworkflow: WF:NAME)
    module: str          # modules/<module>/main.nf
    inputs: list         # one value per input declaration (a list for a tuple)
    command: str = ""
    emits: dict = None


def render(groovy, module, process, variables, params, profile="test", stub=False):
    """(command, output path patterns) of one task: the script (or stub) block evaluated by Groovy
    with task, params and the input variables (files as {"__file__"/"__files__": stage names})."""
    outputs = declarations(module.sections["output"])
    answer = groovy.render({
        "body": module.sections["stub" if stub else "script"], "ext": ext_expressions(process, profile),
        "params": params, "vars": variables, "outputs": [item.name for items, _ in outputs for item in items
                                                         if item.kind == "path"],
        "task": {"process": process, "name": process, "cpus": cpus_for(module, profile), "attempt": 1, "index": 1}})
    if "error" in answer:
        raise TaskFailed(f"{process}: rendering the {'stub' if stub else 'script'} failed: {answer['error']}")
    return textwrap.dedent(answer["command"]).strip("\n") + "\n", answer["outputs"]


def run_task(groovy, task, work, params, profile="test", stub=False, env=None):
    """Render, stage, run and check one task; task.emits gets {emit: value} as main.nf sees it."""
    module = parse_module(ROOT / "modules" / task.module / "main.nf")
    inputs = declarations(module.sections["input"])
    assert len(inputs) == len(task.inputs), \
        f"{task.process}: {len(task.inputs)} inputs given, {len(inputs)} declared"
    work.mkdir(parents=True)
    variables = {}
    for (items, _), value in zip(inputs, task.inputs):
        values = value if len(items) > 1 else [value]
        assert len(values) == len(items), f"{task.process}: tuple of {len(items)} expected, got {value!r}"
        for item, v in zip(items, values):
            if item.kind == "val":
                variables[item.name] = v
            elif item.kind == "path":
                sources = [str(s) for s in (v if isinstance(v, list) else [v])]
                names = stage_names(item.options.get("stageAs"), sources)
                for source, name in zip(sources, names):
                    target = work / name
                    assert not target.exists(), f"{task.process}: two inputs staged as {name}"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.symlink_to(os.path.abspath(source))
                # one file is a path (a list of one too), none or several a blank-separated list
                variables[item.name] = {"__file__": names[0]} if len(names) == 1 else {"__files__": names}
            else:
                raise AssertionError(f"{task.process}: input kind {item.kind} not handled by the renderer")
    outputs = declarations(module.sections["output"])
    task.command, patterns = render(groovy, module, task.process, variables, params, profile, stub)
    (work / ".command.sh").write_text(task.command)
    with open(work / ".command.log", "w") as log:
        done = subprocess.run(["bash", "-euo", "pipefail", ".command.sh"], cwd=work, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = (work / ".command.log").read_text()[-3000:]
        raise TaskFailed(f"{task.process}: exit {done.returncode}\n--- .command.sh\n{task.command}--- output\n{tail}")
    task.emits = _collect(task, work, outputs, iter(patterns), variables, env, stub)
    return task


def _collect(task, work, outputs, patterns, variables, env, stub):
    """Emits from the declared outputs; a real (not stub) run must leave no empty output."""
    emits = {}
    for items, options in outputs:
        values = []
        for item in items:
            if item.kind == "path":
                pattern = next(patterns)
                found = [f for f in sorted(glob.glob(str(work / pattern))) if not os.path.islink(f)]  # not inputs
                if item.options.get("type") == "dir":
                    found = [f for f in found if os.path.isdir(f)]
                if not found:
                    if options.get("optional") == "true":
                        values = None
                        break
                    raise TaskFailed(f"{task.process}: output {pattern!r} missing; the work directory holds "
                                     f"{sorted(str(p.relative_to(work)) for p in work.rglob('*'))}")
                empty = [f for f in found if not (os.listdir(f) if os.path.isdir(f) else os.path.getsize(f))]
                if empty and not stub:
                    raise TaskFailed(f"{task.process}: output(s) {empty} empty")
                values.append(found[0] if len(found) == 1 else found)
            elif item.kind == "eval":
                done = subprocess.run(["bash", "-c", item.name], cwd=work, env=env, capture_output=True, text=True)
                if done.returncode or not done.stdout.strip():
                    raise TaskFailed(f"{task.process}: eval({item.name!r}) gave exit {done.returncode}, "
                                     f"output {done.stdout!r}, {done.stderr[-500:]}")
                values.append(done.stdout.strip())
            elif item.kind == "val":
                values.append(variables.get(item.name, item.name))
        if values is not None and "emit" in options:
            emits[options["emit"]] = values if len(items) > 1 else values[0]
    return emits


# ---- main.nf for one parameter set ----------------------------------------------------------

def genome_rows(p):
    """main.nf's rows, one per genome (--input's CSV, or --fasta and its options):
    [meta, fasta, gff3 or [], bams, bais, strandedness, reference gff3 or []]."""
    def row(species, fasta, gff3, bams, strandedness, reference):
        bais = [f"{bam}.bai" for bam in bams if os.path.exists(f"{bam}.bai")]
        return [{"id": species}, fasta, gff3 or [], bams, bais, strandedness or p["strandedness"], reference or []]

    if p.get("input"):
        with open(p["input"], newline="") as sheet:
            return [row(r["species"].strip(), r["fasta"].strip(), (r.get("gff3") or "").strip(),
                        [b.strip() for b in (r.get("bam") or "").split(";") if b.strip()],
                        (r.get("strandedness") or "").strip(), (r.get("reference_gff3") or "").strip())
                    for r in csv.DictReader(sheet)]
    if not p["fasta"]:
        return []
    bams = [f for pattern in str(p["bam"] or "").split(",") if pattern.strip() for f in sorted(glob.glob(pattern.strip()))]
    return [row(p["species"], p["fasta"], p["gff3"], bams, p["strandedness"], p["reference_gff3"])]


def pipeline(params):
    """main.nf's workflow as a generator: yields each Task (process, module, inputs) in an order
    Nextflow could run them, and receives back its emits. Kept in step with main.nf by
    test_plan_covers_main_nf and by reading both side by side."""
    p = params
    rows = genome_rows(p)
    ids = [r[0]["id"] for r in rows]
    by_id = dict(zip(ids, rows))
    labelled = [r for r in rows if r[2] or p["pseudolabels"]]
    coverage = any(r[3] for r in labelled)
    assert not coverage or all(r[3] for r in labelled), "main.nf stops: BAMs for all labelled genomes or none"
    assert not p["train_data_dir"], "the plan does not cover --train_data_dir"
    model = None
    if p["model"]:
        model = p["model"]
    elif p["lineage"]:
        model = (yield Task("FETCH_HELIXER_MODELS", "fetch_helixer_models", [[{"id": p["lineage"]}, p["lineage"]]]))["model"][1]

    genome_h5, predictions, gene_models, labels = {}, {}, {i: [] for i in ids}, {}
    for i in ids:
        genome_h5[i] = (yield Task("FASTA2H5", "fasta2h5", [[by_id[i][0], by_id[i][1]]]))["h5"]
    if rows and (p["model"] or p["pseudolabels"]):
        for i in ids:
            predictions[i] = (yield Task("HYBRIDMODEL_PREDICT", "hybridmodel_predict", [genome_h5[i] + [model], []]))["predictions"]
            gene_models[i].append((yield Task("HELIXER_POST", "helixer_post", [genome_h5[i] + predictions[i][1:]]))["gff3"])
    elif rows:
        for i in ids:
            helixer = yield Task("HELIXER", "helixer", [[by_id[i][0], by_id[i][1]], model if p["lineage"] else []])
            gene_models[i].append(helixer["gff3"])
    for meta, fasta, gff3, *_ in rows:
        if gff3:
            db = (yield Task("ANNOTATION_TO_H5:IMPORT2GEENUFF", "import2geenuff", [[meta, gff3, fasta]]))["db"]
            labels[meta["id"]] = (yield Task("ANNOTATION_TO_H5:GEENUFF2H5", "geenuff2h5", [db]))["h5"]
    if rows and p["pseudolabels"]:
        for meta, fasta, gff3, *_ in rows:
            if not gff3:
                i = meta["id"]
                db = (yield Task("PSEUDOLABELS_TO_H5:IMPORT2GEENUFF", "import2geenuff", [gene_models[i][0] + [fasta]]))["db"]
                pseudolabels = (yield Task("PSEUDOLABELS_TO_H5:GEENUFF2H5", "geenuff2h5", [db]))["h5"]
                labels[i] = (yield Task("FILTER_TO_MOST_CERTAIN", "filter_to_most_certain",
                                        [pseudolabels + predictions[i][1:] + genome_h5[i][1:]]))["h5"]
    if rows and coverage:
        for i in [i for i in ids if i in labels]:
            meta, _, _, bams, bais, strandedness, _ = by_id[i]
            labels[i] = (yield Task("ADD_NGS_COVERAGE", "add_ngs_coverage",
                                    [[meta, labels[i][1], bams, bais], strandedness]))["h5"]
    sets = []
    for i in sorted(labels):
        split = yield Task("N90_TRAIN_VAL_SPLIT", "n90_train_val_split", [labels[i]])
        sets.append((split["training"][1], split["validation"][1]))
    tuned_id = ids[0] if len(ids) == 1 else "multi_species"
    tuned = None
    if sets:
        pretrained = [{"id": "pretrained"}, model] if p["model"] or p["lineage"] else [{"id": "none"}, []]
        tuned = (yield Task("HYBRIDMODEL_TRAIN", "hybridmodel_train",
                            [[{"id": tuned_id, "coverage": coverage}, [t for t, _ in sets], [v for _, v in sets]],
                             pretrained]))["model"]
    if rows and tuned:
        tuned_inputs, tuned_from = {i: genome_h5[i] for i in ids}, []
        if coverage:  # the genome's coverage added, the model it was tuned from beside the tuned one
            tuned_from = model if p["model"] or p["lineage"] else []
            tuned_inputs = {}
            for meta, _, _, bams, bais, strandedness, _ in rows:
                if bams:
                    tuned_inputs[meta["id"]] = (yield Task("GENOME_COVERAGE", "add_ngs_coverage", [
                        [dict(meta, coverage=True), genome_h5[meta["id"]][1], bams, bais], strandedness]))["h5"]
        for i in [i for i in ids if i in tuned_inputs]:
            tuned_predictions = (yield Task("PREDICT_TUNED", "hybridmodel_predict",
                                            [tuned_inputs[i] + tuned[1:], tuned_from]))["predictions"]
            gene_models[i].append((yield Task("POST_TUNED", "helixer_post", [genome_h5[i] + tuned_predictions[1:]]))["gff3"])
    for meta, fasta, _, _, _, _, reference in rows:
        if reference:
            gff3s = [m[1] for m in gene_models[meta["id"]]]
            yield Task("COMPARE_ANNOTATIONS", "compare_annotations", [[meta, reference, gff3s, [], fasta]])


def run_pipeline(params, workdir, profile="test", stub=False, env=None):
    """Every task of main.nf for params, in order; returns the tasks that ran."""
    groovy = Groovy()
    tasks = []
    try:
        steps = pipeline(params)
        task = next(steps, None)
        while task:
            run_task(groovy, task, pathlib.Path(workdir) / f"{len(tasks) + 1:02d}_{task.process.replace(':', '_')}",
                     params, profile, stub, env)
            tasks.append(task)
            task = _send(steps, task.emits)
    finally:
        groovy.close()
    return tasks


def _send(steps, value):
    try:
        return steps.send(value)
    except StopIteration:
        return None


# Parameter sets run on top of the test profile; together they start every process main.nf calls.
SCENARIOS = {
    "test": {},  # as conf/test.config: pseudolabels of the lineage's model, RNA-seq coverage
    "test_gff3": {"gff3": str(ROOT / "example" / "spombe_chrI_1-100000.gff3.gz"), "pseudolabels": False,
                  "bam": None},  # labels from an annotation, Helixer.py, the tuned model annotates
    # --input with two genomes (annotated / pseudolabelled, both with RNA-seq): one model tuned on both
    "samplesheet": {"input": "{workdir}/samplesheet.csv", "fasta": None, "species": None, "bam": None,
                    "reference_gff3": None},
}


def scenario_params(name, workdir):
    """The test profile's params with a scenario's changes; writes the scenario's samplesheet."""
    params = params_for("test", {k: v.format(workdir=workdir) if isinstance(v, str) else v
                                 for k, v in SCENARIOS[name].items()})
    if params.get("input"):
        example = ROOT / "example" / "spombe_chrI_1-100000"
        pathlib.Path(params["input"]).write_text(
            "species,fasta,gff3,bam,strandedness,reference_gff3\n"
            f"spombe_annotated,{example}.fa.gz,{example}.gff3.gz,{example}.bam,,{example}.gff3.gz\n"
            f"spombe_pseudo,{example}.fa.gz,,{example}.bam,second-read-is-sense-strand,{example}.gff3.gz\n")
    return params


def process_calls():
    """Every process task name main.nf can start: WF:NAME for processes called in a subworkflow."""
    main = strip_comments((ROOT / "main.nf").read_text())
    includes = {alias or name: source for name, alias, source in
                re.findall(r"include\s*\{\s*(\w+)(?:\s+as\s+(\w+))?\s*\}\s*from\s*'([^']+)'", main)}
    calls = set()
    for name, source in includes.items():
        if not re.search(rf"\b{name}\s*\(", main):
            continue
        if source.startswith("./subworkflows/"):
            sub = strip_comments((ROOT / f"{source}.nf").read_text())
            for inner in re.findall(r"include\s*\{\s*(\w+)\s*\}", sub):
                if re.search(rf"\b{inner}\s*\(", sub):
                    calls.add(f"{name}:{inner}")
        else:
            calls.add(name)
    return calls


if __name__ == "__main__":  # by hand: render.py WORKDIR [SCENARIO] [--stub]
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    names = [a for a in sys.argv[2:] if not a.startswith("--")] or ["test"]
    pathlib.Path(sys.argv[1]).mkdir(parents=True)
    for t in run_pipeline(scenario_params(names[0], sys.argv[1]), sys.argv[1], stub="--stub" in sys.argv, env=env):
        print(t.process, t.emits)
