#!/usr/bin/env python3
"""(Re)generate man/<executable>.1 for every console script in pyproject.toml with argparse-manpage.

Usage: python .ci/manpages.py [--check]   (--check: fail if a committed page is stale)
"""
import difflib
import importlib
import pathlib
import re
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

from build_manpages.manpage import Manpage

ROOT = pathlib.Path(__file__).resolve().parents[1]


def executables():
    """(executable name, module, parser) for every [project.scripts] entry."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name, target in meta["project"]["scripts"].items():
        module = importlib.import_module(target.split(":")[0])
        yield name, module, module.get_parser()


def render(name, module, parser):
    version = meta_version()
    page = Manpage(parser, format="pretty", _data={
        "project_name": "helixtune", "version": version, "prog": name,
        "description": (module.__doc__ or "").strip().splitlines()[0],
        "url": "https://github.com/helixtune/helixtune",
    })
    # The date line changes every day; pin it so the committed page is reproducible.
    return re.sub(r'^\.TH (\S+) "1" "[^"]*"', r'.TH \1 "1" "helixtune"', str(page), flags=re.M)


def meta_version():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def main(argv):
    check = "--check" in argv
    stale = []
    for name, module, parser in executables():
        path = ROOT / "man" / f"{name}.1"
        text = render(name, module, parser)
        if check:
            old = path.read_text() if path.exists() else ""
            if old != text:
                stale.append(name)
                sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                           str(path), "generated", n=1))
        else:
            path.write_text(text)
    if stale:
        print(f"stale man pages: {', '.join(stale)}; run python .ci/manpages.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
