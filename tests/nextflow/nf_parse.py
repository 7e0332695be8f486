"""Just enough parsing of nf-core style modules, main.nf and meta.yml for the contract tests.

Everything is found by glob (modules/*/main.nf), so a new module is checked without editing tests.
"""
import dataclasses
import importlib
import pathlib
import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SECTIONS = ("input", "output", "when", "script", "shell", "exec", "stub")
FLAG = re.compile(r"(?<![\w$-])(--[A-Za-z][\w-]*)")


@dataclasses.dataclass
class Output:
    line: str
    emit: str | None
    topic: str | None
    optional: bool
    paths: list


@dataclasses.dataclass
class Module:
    dir: pathlib.Path
    process: str
    text: str
    sections: dict
    outputs: list

    @property
    def name(self):
        return self.dir.name

    @property
    def emits(self):
        return {o.emit for o in self.outputs if o.emit}

    @property
    def topics(self):
        return {o.topic for o in self.outputs if o.topic}

    def directive(self, name):
        m = re.search(rf"^\s*{name}\s+['\"]([^'\"]+)['\"]", self.text, re.M)
        return m.group(1) if m else None


def _sections(body):
    """{section: text} of a process body, split at lines like `output:`."""
    out, current = {"directives": []}, "directives"
    for line in body.splitlines():
        m = re.match(rf"^\s*({'|'.join(SECTIONS)}):\s*$", line)
        if m:
            current = m.group(1)
            out[current] = []
        else:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def parse_module(path):
    text = pathlib.Path(path).read_text()
    m = re.search(r"^process\s+(\w+)\s*\{(.*)^\}", text, re.M | re.S)
    assert m, f"{path}: no `process NAME {{ ... }}`"
    sections = _sections(m.group(2))
    outputs = []
    for line in sections.get("output", "").splitlines():
        if not line.strip() or line.strip().startswith("//"):
            continue
        emit = re.search(r"emit:\s*(\w+)", line)
        topic = re.search(r"topic:\s*(\w+)", line)
        paths = re.findall(r"path\(\s*[\"']([^\"']+)[\"']", line) + re.findall(r"path\s+[\"']([^\"']+)[\"']", line)
        outputs.append(Output(line.strip(), emit and emit.group(1), topic and topic.group(1),
                              bool(re.search(r"optional:\s*true", line)), paths))
    return Module(pathlib.Path(path).parent, m.group(1), text, sections, outputs)


def modules():
    return [parse_module(p) for p in sorted(ROOT.glob("modules/*/main.nf"))]


def pipeline_files():
    """The Nextflow scripts that call modules (main.nf, workflows/, subworkflows/)."""
    files = [ROOT / "main.nf"] + sorted(ROOT.glob("workflows/**/*.nf")) + sorted(ROOT.glob("subworkflows/**/*.nf"))
    return [f for f in files if f.exists()]


def strip_comments(text):
    """Nextflow/Groovy text without /* */ blocks and // line comments."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(^|\s)//.*$", r"\1", text, flags=re.M)


def includes(text):
    """{name used in the script: process name} from `include { A; B as C } from '...'`."""
    text = strip_comments(text)
    names = {}
    for block in re.findall(r"include\s*\{([^}]*)\}", text):
        for item in re.split(r"[;\n]", block):
            parts = item.split()
            if len(parts) == 3 and parts[1] == "as":
                names[parts[2]] = parts[0]
            elif len(parts) == 1:
                names[parts[0]] = parts[0]
    return names


def emits_used(text):
    """(name, emit) of every `NAME.out.EMIT` in a script (comments left out)."""
    return set(re.findall(r"\b([A-Z][A-Z0-9_]*)\.out\.(\w+)", strip_comments(text)))


def meta_yml_keys(path, section):
    """Keys directly under a top-level section of a meta.yml (2-space indented `key:` lines)."""
    keys, inside = [], False
    for line in pathlib.Path(path).read_text().splitlines():
        if re.match(r"^\S", line):
            inside = line.rstrip() == f"{section}:"
        elif inside:
            m = re.match(r"^  ([\w.-]+):\s*$", line)
            if m:
                keys.append(m.group(1))
    return keys


def project_scripts():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def executable_of(script):
    """The suite executable a module's script runs (the first word that is one of ours)."""
    scripts = project_scripts()
    for word in re.findall(r"[\w.+-]+", script):
        if word in scripts:
            return word
    return None


def parser_of(executable):
    target = project_scripts()[executable]
    return importlib.import_module(target.split(":")[0]).get_parser()


def option_strings(parser):
    return {s for a in parser._actions for s in a.option_strings}


def required_options(parser):
    return {a.option_strings[-1] for a in parser._actions if a.required and a.option_strings}


def ext_args(process):
    """The ext.args strings conf/modules.config sets for a process name (withName: 'NAME')."""
    text = (ROOT / "conf" / "modules.config").read_text()
    found = []
    for m in re.finditer(r"withName:\s*['\"]?([\w:*|.]+)['\"]?\s*\{(.*?)\n\s*\}", text, re.S):
        pattern = m.group(1).replace("*", ".*")
        if re.fullmatch(rf"(.*:)?{pattern}", process):
            found += re.findall(r"ext\.args\s*=\s*['\"]([^'\"]*)['\"]", m.group(2))
    return found


def config_params(path=ROOT / "nextflow.config"):
    """{name: value} of the top-level `params { }` block of a Nextflow config (literal values:
    null, true/false, numbers, quoted strings)."""
    text = strip_comments(pathlib.Path(path).read_text())
    m = re.search(r"^params\s*\{(.*?)^\}", text, re.M | re.S)
    assert m, f"{path}: no params {{ }} block"
    found = {}
    for number, line in enumerate(m.group(1).splitlines(), 1):
        if not line.strip():
            continue
        assign = re.fullmatch(r"\s*(\w+)\s*=\s*(.+?)\s*", line)
        assert assign, f"{path}: params line {number}: not `name = value`: {line.strip()!r}"
        name, value = assign.groups()
        assert name not in found, f"{path}: param {name} set twice"
        found[name] = literal(value, f"{path}: param {name}")
    return found


def literal(value, where):
    """The Python value of a Groovy literal (null, boolean, number, string without `$`)."""
    if value == "null":
        return None
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*([eE]-?\d+)?", value):
        return float(value)
    quoted = re.fullmatch(r"'([^'\\$]*)'|\"([^\"\\$]*)\"", value)
    assert quoted, f"{where}: {value!r} is not a literal the schema can hold as its default"
    return quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
