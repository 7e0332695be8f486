"""Session fixture: one real Galaxy server for all tests under tests/galaxy (see galaxy_harness)."""
import os
import secrets
import subprocess
import sys
import time
import urllib.request

import pytest

from galaxy_harness import GALAXY_VENV, STARTUP_TIMEOUT_S, GalaxyServer, free_port, galaxy_tool, write_config


@pytest.fixture(scope="session")
def galaxy_server(tmp_path_factory):
    """A running Galaxy with the selected wrappers loaded; stopped at the end of the session."""
    galaxy_web = galaxy_tool("galaxy-web")
    workdir = tmp_path_factory.mktemp("galaxy")
    port = free_port()
    api_key = secrets.token_hex(16)
    config = write_config(workdir, port, api_key)
    log = workdir / "galaxy.log"
    env = dict(os.environ)
    # The suite's executables first (Galaxy resolves no <requirement>s here), then Galaxy's venv.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), str(GALAXY_VENV / "bin"),
                                   env.get("PATH", "")])
    env["GALAXY_VIRTUAL_ENV"] = str(GALAXY_VENV)
    env.pop("PYTHONPATH", None)
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([str(galaxy_web), "--config", str(config), "--bind", f"127.0.0.1:{port}"],
                                cwd=workdir, env=env, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = GalaxyServer(url, api_key, log, workdir)
    try:
        t0 = time.monotonic()
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Galaxy exited with code {proc.returncode} during startup\n"
                            f"{server.log_tail()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{url}/api/version", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - t0 > STARTUP_TIMEOUT_S:
                pytest.fail(f"Galaxy did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s\n"
                            f"{server.log_tail()}", pytrace=False)
            time.sleep(1)
        server.startup_s = time.monotonic() - t0
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
