"""Shared fixtures: the real data in ../shared/data and helpers to run tools in-process."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# `.venv/bin/python -m pytest` does not activate the venv: put its bin/ (the suite's executables)
# first on PATH so subprocesses, Galaxy jobs and shutil.which find them.
_BIN = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
SHARED_DATA = pathlib.Path(os.environ.get("HELIXTUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data; skips (fails under CI) when it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        msg = f"real data not found at {SHARED_DATA} (set HELIXTUNE_SHARED_DATA)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED_DATA


@pytest.fixture
def run_tool(capsys, caplog):
    """Run a tool's ``main(argv)`` in-process the way ``cli.run`` does.

    Returns (exit code, stderr text including log records)."""
    from helixtune import cli

    def _run(main, argv):
        try:
            code = main([str(a) for a in argv])
        except cli.UserError as e:
            print(f"error: {e}", file=__import__("sys").stderr)
            code = e.code
        except SystemExit as e:  # argparse errors
            code = e.code
        text = capsys.readouterr().err + "\n" + caplog.text
        caplog.clear()
        return code, text

    return _run


def pytest_sessionfinish(session, exitstatus):
    """Under CI a skipped test is a failure: every test must really run there."""
    if IN_CI and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and reporter.stats.get("skipped"):
            reporter.write_line("CI: tests were skipped; failing the run (all tests must run in CI)",
                                red=True)
            session.exitstatus = 1


def pytest_collection_modifyitems(config, items):
    """Every test that uses the real data (``shared_data``, directly or through a fixture) must be
    marked ``realdata``, so ``-m 'not realdata'`` leaves exactly the self-contained tests."""
    unmarked = [item.nodeid for item in items
                if "shared_data" in getattr(item, "fixturenames", ())
                and item.get_closest_marker("realdata") is None]
    if unmarked:
        raise pytest.UsageError("tests use shared_data without @pytest.mark.realdata: "
                                + ", ".join(unmarked))
