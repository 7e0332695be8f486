"""Helpers for tests/galaxy: the wrappers to test and a real Galaxy server's configuration.

Wrappers are found by glob (``galaxy/*.xml`` with a ``<tool>`` root), so a new wrapper is tested
without editing this file. Data managers are the tools of ``galaxy/data_manager/data_manager_conf.xml``,
loaded the way planemo loads them: ``data_manager_config_file``, the data tables of its
``tool_data_table_conf.xml.sample`` with empty ``.loc`` files, and the test user an admin (data
manager tools run for admins only). Select wrappers with ``-k <tool id>`` or
``HELIXTUNE_GALAXY_TOOLS=helixtune_fasta2h5,...`` (tool ids or file stems; Galaxy then loads only
those). The server runs from ``.venv-galaxy`` (``$HELIXTUNE_GALAXY_VENV``) with the suite's
``bin/`` first on PATH, on 127.0.0.1 at a free port, with all its state in a temporary directory.
"""
import os
import pathlib
import socket
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

GALAXY_DIR = ROOT / "galaxy"
DATA_MANAGER_DIR = GALAXY_DIR / "data_manager"
DATA_MANAGER_CONF = DATA_MANAGER_DIR / "data_manager_conf.xml"
DATA_TABLE_CONF = DATA_MANAGER_DIR / "tool_data_table_conf.xml.sample"
# galaxy-tool-test runs the tests as this user.
TEST_USER = "test@bx.psu.edu"
GALAXY_VENV = pathlib.Path(os.environ.get("HELIXTUNE_GALAXY_VENV", ROOT / ".venv-galaxy"))
STARTUP_TIMEOUT_S = float(os.environ.get("HELIXTUNE_GALAXY_STARTUP_TIMEOUT", 600))


def _selected(tool_id, path):
    wanted = [w.strip() for w in os.environ.get("HELIXTUNE_GALAXY_TOOLS", "").split(",") if w.strip()]
    return not wanted or tool_id in wanted or path.stem in wanted


def data_managers():
    """(tool id, path) of every data manager tool in data_manager_conf.xml."""
    if not DATA_MANAGER_CONF.exists():
        return []
    found = []
    for elem in ET.parse(DATA_MANAGER_CONF).getroot().findall("data_manager"):
        path = DATA_MANAGER_DIR / elem.get("tool_file")
        found.append((ET.parse(path).getroot().get("id"), path))
    return found


def is_data_manager(path):
    return path.parent.parent == DATA_MANAGER_DIR


def wrappers():
    """(tool id, path) of every Galaxy tool wrapper in galaxy/, sorted by file name, then the
    data managers."""
    found = []
    for path in sorted(GALAXY_DIR.glob("*.xml")):
        root = ET.parse(path).getroot()
        if root.tag == "tool":
            found.append((root.get("id"), path))
    return found + data_managers()


def selected_wrappers():
    return [(tid, path) for tid, path in wrappers() if _selected(tid, path)]


def galaxy_tool(name):
    """Path of an executable of the Galaxy venv; skips (fails under CI) when it is missing."""
    exe = GALAXY_VENV / "bin" / name
    if not exe.exists():
        msg = f"{exe} not found: run ./.ci/setup (or set HELIXTUNE_GALAXY_VENV)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path, n=80):
    try:
        lines = pathlib.Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


class GalaxyServer:
    def __init__(self, url, api_key, log, workdir):
        self.url, self.api_key, self.log, self.workdir = url, api_key, log, workdir

    def log_tail(self, n=80):
        return f"--- Galaxy log tail ({self.log}) ---\n{_log_tail(self.log, n)}"


def data_table_files():
    """The .loc file names the data tables of DATA_TABLE_CONF read (in Galaxy's tool_data_path)."""
    if not DATA_TABLE_CONF.exists():
        return []
    return [pathlib.Path(f.get("path")).name for f in ET.parse(DATA_TABLE_CONF).getroot().iter("file")]


def data_manager_data_path(workdir):
    """Galaxy's tool_data_path, where the data managers install their files."""
    return workdir / "data" / "tool-data"


def write_config(workdir, port, api_key):
    selected = selected_wrappers()
    tool_conf = workdir / "tool_conf.xml"
    entries = "\n".join(f'    <tool file="{path}"/>' for _, path in selected if not is_data_manager(path))
    tool_conf.write_text(f'<toolbox>\n  <section id="helixtune" name="helixtune">\n{entries}\n'
                         f"  </section>\n</toolbox>\n")
    data = workdir / "data"
    tool_data = data_manager_data_path(workdir)
    tool_data.mkdir(parents=True)
    extra = ""
    if DATA_TABLE_CONF.exists():
        # Empty .loc files (the samples' comments) that the data managers append to.
        for name in data_table_files():
            (tool_data / name).write_text((DATA_MANAGER_DIR / "tool-data" / f"{name}.sample").read_text())
        extra += f"  tool_data_table_config_path: {DATA_TABLE_CONF}\n"
    if any(is_data_manager(path) for _, path in selected):
        extra += (f"  data_manager_config_file: {DATA_MANAGER_CONF}\n"
                  f"  galaxy_data_manager_data_path: {tool_data}\n")
    config = workdir / "galaxy.yml"
    config.write_text(f"""galaxy:
  data_dir: {data}
  database_connection: "sqlite:///{data}/universe.sqlite?isolation_level=IMMEDIATE"
  tool_config_file: {tool_conf}
  tool_data_path: {tool_data}
  admin_users: admin@example.org,{TEST_USER}
  bootstrap_admin_api_key: {api_key}
  conda_auto_init: false
  conda_auto_install: false
  enable_celery_tasks: false
  galaxy_infrastructure_url: http://127.0.0.1:{port}
  allow_local_account_creation: true
  allow_path_paste: true
  check_migrate_databases: true
  watch_tools: "false"
{extra}""")
    return config
