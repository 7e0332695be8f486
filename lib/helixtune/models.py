"""Pretrained models: the model list, where models are installed, which one a lineage uses.

The list is a CSV in Helixer's format (``#`` comment lines; header
``lineage,priority,download_link,model,model_file_name,available_since,synonyms`` and an optional
``sha256`` column). A lineage's best model is the one with the lowest priority. Lineage models
live in ``<model dir>/<lineage>/<model_file_name>``, the layout Helixer uses, so installs are
shared both ways. A ``download_link`` of ``bundled:<file>`` names a model shipped inside this
package (``helixtune/data/models/<file>``), used in place.
"""
import csv
import dataclasses
import logging
import os
import pathlib
import urllib.error
import urllib.request

from helixtune.cli import UserError

log = logging.getLogger("helixtune.models")

COLUMNS = ("lineage", "priority", "download_link", "model", "model_file_name", "available_since",
           "synonyms")
OPTIONAL_COLUMNS = ("sha256",)
BUNDLED = "bundled:"
DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"
BUNDLED_LIST = DATA_DIR / "model_list.csv"
FETCH = "fetch_helixer_models.py"
# Root attribute of a bundled model file describing what it is and what it was trained on.
PROVENANCE_ATTR = "provenance"


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One row of the model list."""

    lineage: str
    priority: int
    download_link: str
    model: str
    model_file_name: str
    available_since: str
    synonyms: tuple
    sha256: str | None
    source: str  # "<list>:<line>", for messages

    @property
    def bundled(self):
        return self.download_link.startswith(BUNDLED)

    def bundled_path(self):
        """Path of a bundled model inside the package (it may be missing in a source checkout)."""
        return DATA_DIR / "models" / self.download_link[len(BUNDLED):]

    def file_names(self):
        """The model's file name followed by the file names of its synonyms."""
        names = [self.model_file_name]
        names += [s if s.endswith(".h5") else s + ".h5" for s in self.synonyms]
        return names


def parse_model_list(text, source):
    """The entries of a model list given as ``text``; ``source`` names it in error messages."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise UserError(f"{source}: empty model list (expected the header {','.join(COLUMNS)})")
    header_line, header = lines[0][0], next(csv.reader([lines[0][1]]))
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise UserError(f"{source}:{header_line}: bad header {','.join(header)!r}: expected "
                        f"{','.join(COLUMNS)}[,sha256]")
    entries, seen = [], {}
    for n, line in lines[1:]:
        where = f"{source}:{n}"
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            raise UserError(f"{where}: {len(fields)} fields, the header has {len(header)}")
        row = {k: v.strip() for k, v in zip(header, fields)}
        try:
            priority = int(row["priority"])
        except ValueError:
            raise UserError(f"{where}: priority {row['priority']!r} is not an integer") from None
        for column in ("lineage", "download_link", "model", "model_file_name"):
            if not row[column]:
                raise UserError(f"{where}: empty {column}")
        name = row["model_file_name"]
        if "/" in name or os.sep in name or name.startswith("."):
            raise UserError(f"{where}: model_file_name {name!r} must be a plain file name")
        sha256 = row.get("sha256", "").lower() or None
        if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
            raise UserError(f"{where}: sha256 {sha256!r} is not 64 hexadecimal digits")
        key = (row["lineage"], name)
        if key in seen:
            raise UserError(f"{where}: {name} of lineage {row['lineage']} is listed twice "
                            f"(also on line {seen[key]})")
        seen[key] = n
        entries.append(ModelEntry(row["lineage"], priority, row["download_link"], row["model"],
                                  name, row["available_since"], tuple(row["synonyms"].split()),
                                  sha256, where))
    return entries


def load_model_list(location=None, timeout=30):
    """The model list at ``location`` (a path or URL; default: the list bundled with helixtune)."""
    location = str(location or BUNDLED_LIST)
    if "://" in location:
        try:
            with urllib.request.urlopen(location, timeout=timeout) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as e:
            raise UserError(f"cannot read the model list {location}: "
                            f"{getattr(e, 'reason', e)}") from None
    else:
        try:
            text = pathlib.Path(location).read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read the model list {location}: {e.strerror}") from None
    return parse_model_list(text, location)


def lineages(entries):
    """The lineages of the list, in order of first appearance."""
    return list(dict.fromkeys(e.lineage for e in entries))


def models_of(entries, lineage):
    """The models of ``lineage``, best (lowest priority) first; UserError for an unknown one."""
    found = sorted((e for e in entries if e.lineage == lineage), key=lambda e: e.priority)
    if not found:
        raise UserError(f"unknown lineage {lineage!r}; known lineages: "
                        f"{', '.join(lineages(entries))}")
    return found


def best_model(entries, lineage):
    """The preferred (lowest priority) model of ``lineage``."""
    return models_of(entries, lineage)[0]


def default_model_dir():
    """Helixer's model directory: ``$XDG_DATA_HOME/Helixer/models`` (default
    ``~/.local/share/Helixer/models``)."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                                 "share")
    return pathlib.Path(data_home) / "Helixer" / "models"


def installed_models(lineage, model_dir=None, entries=None):
    """(path, entry or None) of every model of ``lineage`` installed under ``model_dir``: the
    listed ones best first, then unlisted ``.h5`` files of the lineage directory by name (e.g.
    from a newer Helixer list). A bundled model counts when its file is in the package."""
    entries = load_model_list() if entries is None else entries
    model_dir = pathlib.Path(model_dir or default_model_dir())
    lineage_dir = model_dir / lineage
    found, known_names = [], set()
    for entry in sorted((e for e in entries if e.lineage == lineage), key=lambda e: e.priority):
        known_names.update(entry.file_names())
        if entry.bundled:
            candidates = [entry.bundled_path()]
        else:
            candidates = [lineage_dir / name for name in entry.file_names()]
        path = next((p for p in candidates if p.is_file()), None)
        if path is not None:
            found.append((path, entry))
    if lineage_dir.is_dir():
        found += [(p, None) for p in sorted(lineage_dir.glob("*.h5"))
                  if p.name not in known_names and p.is_file()]
    return found


def installed_model_path(lineage, model_dir=None, entries=None):
    """Path of the model ``lineage`` would use (the best installed one), or None."""
    found = installed_models(lineage, model_dir, entries)
    return found[0][0] if found else None


def fetch_command(lineage, model_dir=None):
    """The command that installs ``lineage``'s best model into ``model_dir``."""
    command = f"{FETCH} --lineage {lineage}"
    if model_dir is not None and pathlib.Path(model_dir) != default_model_dir():
        command += f" -c {model_dir}"
    return command


def warn_if_not_best(lineage, path, entries):
    """Log a warning when ``path`` is not the best model of ``lineage`` in the list."""
    best = best_model(entries, lineage)
    if path.name not in best.file_names() and not (best.bundled and path == best.bundled_path()):
        log.warning("the installed model %s of lineage %s is not the best one known (%s, "
                    "priority %d); to get it run: %s", path, lineage, best.model, best.priority,
                    fetch_command(lineage, path.parent.parent))


def resolve_lineage_model(lineage, model_dir=None, entries=None):
    """Path of the model to use for ``lineage``; warns when it is not the best one listed.

    Raises UserError (saying how to fetch it) when the lineage is unknown or not installed."""
    entries = load_model_list() if entries is None else entries
    best = best_model(entries, lineage)
    model_dir = pathlib.Path(model_dir or default_model_dir())
    path = installed_model_path(lineage, model_dir, entries)
    if path is None:
        if best.bundled:
            raise UserError(f"the bundled model of lineage {lineage} is missing "
                            f"({best.bundled_path()}); reinstall helixtune")
        raise UserError(f"no model of lineage {lineage} is installed in {model_dir / lineage}; "
                        f"run: {fetch_command(lineage, model_dir)}")
    warn_if_not_best(lineage, path, entries)
    return path


def provenance(path):
    """The provenance text stored in a model file's attributes, or None."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(PROVENANCE_ATTR)
    except OSError:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return None if value is None else str(value)

