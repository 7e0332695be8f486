"""The suite's shape: no import cycles in tools/ and lib/, and the README's layout table names
every module that exists (and nothing that does not)."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {"helixtune": ROOT / "lib" / "helixtune", "helixtune_tools": ROOT / "tools"}


def modules():
    """Module name -> file of every module of both packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package] + parts)] = path
    return found


def imports_of(path, name, known):
    """Our modules that ``path`` imports (at any depth of the file: lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def test_no_import_cycles():
    known = modules()
    graph = {name: imports_of(path, name, known) for name, path in known.items()}
    # a package's __init__ is not an edge for its own submodules (Python imports it first)
    graph = {n: {t for t in ts if not n.startswith(t + ".")} for n, ts in graph.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_lib_does_not_import_tools():
    known = modules()
    for name, path in known.items():
        if name.startswith("helixtune."):
            assert not any(t.startswith("helixtune_tools") for t in imports_of(path, name, known)), name


def test_readme_layout_lists_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`((?:lib/helixtune|tools)/[\w./]+\.py)`", layout))
    files = {str(p.relative_to(ROOT)) for folder in PACKAGES.values() for p in folder.rglob("*.py")
             if p.name not in ("__init__.py", "__main__.py") or p.parent.name != folder.name
             and p.name == "__init__.py"}
    assert named - files == set(), "README layout names modules that do not exist"
    assert files - named == set(), "modules missing from the README layout table"
