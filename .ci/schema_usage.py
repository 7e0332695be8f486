#!/usr/bin/env python3
"""Write the pipeline's parameter table (from nextflow_schema.json) into README.md.

Usage: python .ci/schema_usage.py [--check]   (--check: fail if README's table is stale)
The table sits between the START and END marker lines below, in README's Nextflow section.
"""
import difflib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
START = "<!-- parameters from nextflow_schema.json: python .ci/schema_usage.py -->"
END = "<!-- end of parameters -->"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def usage(schema):
    """Markdown: one table per $defs group, a row per param (type, default, description)."""
    lines = []
    for group in schema["$defs"].values():
        lines += [f"**{group['title']}**: {group['description']}", "",
                  "| param | type | default | description |", "|---|---|---|---|"]
        for name, prop in group["properties"].items():
            kind = prop["type"]
            if "enum" in prop:
                kind = " | ".join(f"`{v}`" for v in prop["enum"])
            elif prop.get("format"):
                kind += f" ({prop['format']})"
            default = prop.get("default")
            default = "" if default is None else f"`{default if isinstance(default, str) else json.dumps(default)}`"
            lines.append(f"| `--{name}` | {cell(kind)} | {cell(default)} | {cell(prop['description'])} |")
        lines.append("")
    return "\n".join(lines)


def render(readme, schema):
    """``readme`` with the text between the markers replaced by the usage tables."""
    head, found, rest = readme.partition(START + "\n")
    _, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise SystemExit(f"README.md lacks the marker lines {START!r} ... {END!r}")
    return head + START + "\n" + usage(schema) + END + tail


def main(argv):
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    text = render(readme, json.loads((ROOT / "nextflow_schema.json").read_text()))
    if "--check" in argv:
        if text != readme:
            sys.stdout.writelines(difflib.unified_diff(readme.splitlines(True), text.splitlines(True),
                                                       "README.md", "generated", n=1))
            print("README's parameter table is stale; run python .ci/schema_usage.py", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
