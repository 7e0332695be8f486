"""fetch_helixer_models.py and helixtune.models against a local HTTP server on 127.0.0.1."""
import hashlib
import http.server
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import h5py
import numpy as np
import pytest

from helixtune import cli, models
from helixtune_tools import fetch_helixer_models as fetch

HEADER = "lineage,priority,download_link,model,model_file_name,available_since,synonyms"


class ModelServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path -> bytes); Range requests unless ``ranges`` is False;
    ``drop_after``: send that many bytes of the next response, then close the connection;
    ``stall_after``: send that many bytes, then hang (until the test ends)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.requests = {}, []
        self.ranges, self.drop_after, self.stall_after = True, None, None
        self.stop = threading.Event()

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and server.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(data) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
        self.end_headers()
        body = data[start:]
        cut = server.drop_after if server.drop_after is not None else server.stall_after
        if cut is None:
            self.wfile.write(body)
            return
        self.wfile.write(body[:cut])
        self.wfile.flush()
        if server.stall_after is not None:
            server.stop.wait(30)
        server.drop_after = None
        self.close_connection = True


@pytest.fixture
def server():
    srv = ModelServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.stop.set()
    srv.shutdown()
    srv.server_close()


def tiny_model(path, seed=0):
    """A small HDF5 file standing in for a model (~200 kB)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("weights", data=np.random.default_rng(seed).random(25_000))
    return path.read_bytes()


@pytest.fixture
def served(server, tmp_path):
    """Two fungi models and one land_plant model on the server; returns {file name: bytes}."""
    data = {}
    for seed, name in enumerate(["fungi_a.h5", "fungi_b.h5", "plant_a.h5"]):
        data[name] = tiny_model(tmp_path / name, seed)
        server.files[f"/files/{name}"] = data[name]
    return data


def write_list(tmp_path, server, rows=None, sha256=None):
    """A model list on the server's files: fungi_a (best), fungi_b, plant_a; ``sha256`` maps
    file names to a checksum column value."""
    rows = rows or [("fungi", 100, "fungi_a.h5"), ("fungi", 200, "fungi_b.h5"),
                    ("land_plant", 80, "plant_a.h5")]
    lines = ["# test list", HEADER + (",sha256" if sha256 is not None else "")]
    for lineage, priority, name in rows:
        line = (f"{lineage},{priority},{server.url('/files/' + name)},{name[:-3]},{name},"
                "v0.3.0,")
        if sha256 is not None:
            line += "," + sha256.get(name, "")
        lines.append(line)
    path = tmp_path / "model_list.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fetch_tool(run_tool, tmp_path, server, monkeypatch):
    """Run fetch_helixer_models.py in-process into tmp_path/models with the test list."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    def _run(*argv, model_list=None):
        model_list = model_list or write_list(tmp_path, server)
        return run_tool(fetch.main, ["--model-list", model_list, *argv])
    return _run


def test_normal_download(fetch_tool, tmp_path, served):
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "models")
    assert code == 0, err
    target = tmp_path / "models" / "fungi" / "fungi_a.h5"
    assert target.read_bytes() == served["fungi_a.h5"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["fungi_a.h5"]
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "models")
    assert code == 0 and "installed already" in err


def test_verified_sha256(fetch_tool, tmp_path, server, served):
    sums = {n: hashlib.sha256(d).hexdigest() for n, d in served.items()}
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m",
                           model_list=write_list(tmp_path, server, sha256=sums))
    assert code == 0, err
    assert (tmp_path / "m" / "fungi" / "fungi_a.h5").read_bytes() == served["fungi_a.h5"]


def test_interrupted_then_resumed(fetch_tool, tmp_path, server, served):
    half = len(served["fungi_a.h5"]) // 2
    server.drop_after = half
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "models")
    target = tmp_path / "models" / "fungi" / "fungi_a.h5"
    part = target.with_name("fungi_a.h5.part")
    assert code == 1 and "run the same command again to resume" in err
    assert not target.exists() and part.stat().st_size == half
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "models")
    assert code == 0, err
    assert server.requests[-1] == ("/files/fungi_a.h5", f"bytes={half}-")
    assert target.read_bytes() == served["fungi_a.h5"] and not part.exists()


def test_resume_without_range_support_restarts(fetch_tool, tmp_path, server, served):
    server.ranges = False
    server.drop_after = 1000
    assert fetch_tool("-l", "fungi", "-c", tmp_path / "m")[0] == 1
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m")
    assert code == 0 and "cannot resume" in err
    assert (tmp_path / "m" / "fungi" / "fungi_a.h5").read_bytes() == served["fungi_a.h5"]


def test_checksum_mismatch_installs_nothing(fetch_tool, tmp_path, server, served):
    wrong = hashlib.sha256(b"something else").hexdigest()
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m",
                           model_list=write_list(tmp_path, server, sha256={"fungi_a.h5": wrong}))
    assert code == 1 and "checksum mismatch" in err and "nothing was installed" in err
    assert "model_list.csv:3" in err
    assert list((tmp_path / "m" / "fungi").iterdir()) == []


def test_tampered_partial_is_rejected(fetch_tool, tmp_path, server, served):
    """A resumed download is verified as a whole: a tampered .part is caught."""
    sums = {n: hashlib.sha256(d).hexdigest() for n, d in served.items()}
    part = tmp_path / "m" / "fungi" / "fungi_a.h5.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x89HDF\r\n\x1a\n" + b"x" * 1000)
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m",
                           model_list=write_list(tmp_path, server, sha256=sums))
    assert code == 1 and "checksum mismatch" in err
    assert list(part.parent.iterdir()) == []


def test_not_hdf5_is_rejected(fetch_tool, tmp_path, server, served):
    server.files["/files/fungi_a.h5"] = b"<html>login required</html>"
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m")
    assert code == 1 and "not an HDF5 model file" in err
    assert list((tmp_path / "m" / "fungi").iterdir()) == []


def test_http_404(fetch_tool, tmp_path, server, served):
    del server.files["/files/fungi_a.h5"]
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m")
    assert code == 1 and "HTTP 404" in err and server.url("/files/fungi_a.h5") in err
    assert list((tmp_path / "m" / "fungi").iterdir()) == []


def test_unreachable_host_says_where_to_put_the_file(fetch_tool, tmp_path, server, served):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model_list = tmp_path / "offline.csv"
    model_list.write_text(f"{HEADER}\nfungi,1,http://127.0.0.1:{port}/f.h5,f,f.h5,v0.3.0,\n")
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m", model_list=model_list)
    target = tmp_path / "m" / "fungi" / "f.h5"
    assert code == 1 and f"http://127.0.0.1:{port}/f.h5" in err and f"put it at {target}" in err


def test_unknown_lineage(fetch_tool, tmp_path, served):
    code, err = fetch_tool("-l", "mammal", "-c", tmp_path / "m")
    assert code == 1 and "unknown lineage 'mammal'; known lineages: fungi, land_plant" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("row, message", [
    ("fungi,high,http://x/f.h5,f,f.h5,v0.3.0,", "model_list.csv:3: priority 'high' is not an"),
    ("fungi,1,http://x/f.h5,f,f.h5", "model_list.csv:3: 5 fields, the header has 7"),
    ("fungi,1,http://x/f.h5,f,../f.h5,v0.3.0,", "model_list.csv:3: model_file_name '../f.h5'"),
])
def test_malformed_list_names_file_and_line(fetch_tool, tmp_path, row, message):
    model_list = tmp_path / "model_list.csv"
    model_list.write_text(f"# comment\n{HEADER}\n{row}\n")
    code, err = fetch_tool("--list", model_list=model_list)
    assert code == 1 and message in err


def test_list_shows_known_installed_and_best(fetch_tool, tmp_path, server, served, capsys):
    assert fetch_tool("-l", "fungi", "-a", "-c", tmp_path / "m")[0] == 0
    (tmp_path / "m" / "fungi" / "mine.h5").write_bytes(served["plant_a.h5"])
    code = fetch.main(["--list", "-c", str(tmp_path / "m"),
                       "--model-list", str(write_list(tmp_path, server))])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"# model directory: {tmp_path / 'm'}\n")
    lines = {line.split()[1]: line for line in out.splitlines()[2:]}
    assert "best, installed:" in lines["fungi_a"] and "used by Helixer.py" in lines["fungi_a"]
    assert "best" not in lines["fungi_b"] and "installed:" in lines["fungi_b"]
    assert "best, not installed" in lines["plant_a"]
    assert "not in the list" in lines["mine"]


def test_list_shows_bundled_default(tmp_path, capsys):
    assert fetch.main(["--list", "-l", "default", "-c", str(tmp_path / "m")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    path = models.best_model(models.load_model_list(), "default").bundled_path()
    expected = (models.provenance(path) or "bundled with helixtune") if path.is_file() \
        else "bundled with helixtune, not installed yet"
    assert line.startswith("default ") and f"best, {expected}" in line


def test_default_lineage_copies_nothing(run_tool, tmp_path):
    code, err = run_tool(fetch.main, ["-l", "default", "-c", tmp_path / "m"])
    assert code == 0 and "bundled with helixtune" in err and "nothing to" in err
    assert not (tmp_path / "m").exists()


def test_xdg_data_home_is_respected(fetch_tool, tmp_path, served):
    code, err = fetch_tool("-l", "land_plant")
    assert code == 0, err
    target = tmp_path / "xdg" / "Helixer" / "models" / "land_plant" / "plant_a.h5"
    assert target.read_bytes() == served["plant_a.h5"]


def test_default_dir_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models.default_model_dir() == tmp_path / ".local" / "share" / "Helixer" / "models"


def test_all_fetches_every_model_of_the_lineage(fetch_tool, tmp_path, served):
    assert fetch_tool("-l", "fungi", "-c", tmp_path / "best")[0] == 0
    assert sorted(p.name for p in (tmp_path / "best" / "fungi").iterdir()) == ["fungi_a.h5"]
    assert fetch_tool("-l", "fungi", "-a", "-c", tmp_path / "all")[0] == 0
    assert sorted(p.name for p in (tmp_path / "all" / "fungi").iterdir()) == ["fungi_a.h5",
                                                                              "fungi_b.h5"]


def test_without_lineage_fetches_the_best_of_each(fetch_tool, tmp_path, served):
    assert fetch_tool("-c", tmp_path / "m")[0] == 0
    assert sorted(str(p.relative_to(tmp_path / "m")) for p in (tmp_path / "m").rglob("*.h5")) \
        == ["fungi/fungi_a.h5", "land_plant/plant_a.h5"]


def test_mirror_and_list_from_url(fetch_tool, tmp_path, server, served):
    server.files["/mirror/fungi_a.h5"] = server.files.pop("/files/fungi_a.h5")
    model_list = write_list(tmp_path, server)
    server.files["/lists/models.csv"] = model_list.read_bytes()
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m", "--mirror",
                           server.url("/mirror/"), model_list=server.url("/lists/models.csv"))
    assert code == 0, err
    assert server.requests[-1][0] == "/mirror/fungi_a.h5"
    assert (tmp_path / "m" / "fungi" / "fungi_a.h5").read_bytes() == served["fungi_a.h5"]


def test_mirror_as_local_directory(fetch_tool, tmp_path, served):
    mirror = tmp_path / "share"
    mirror.mkdir()
    (mirror / "fungi_a.h5").write_bytes(served["fungi_a.h5"])
    code, err = fetch_tool("-l", "fungi", "-c", tmp_path / "m", "--mirror", mirror)
    assert code == 0, err
    assert (tmp_path / "m" / "fungi" / "fungi_a.h5").read_bytes() == served["fungi_a.h5"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_and_keeps_the_partial_file(tmp_path, server, served, signum):
    server.stall_after = 50_000
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    proc = subprocess.Popen([shutil.which("fetch_helixer_models.py"), "-l", "fungi", "--model-list",
                             str(write_list(tmp_path, server))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "xdg" / "Helixer" / "models" / "fungi" / "fungi_a.h5.part"
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signum)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2
    assert proc.returncode != 0 and err.strip().splitlines()[-1].endswith(
        f"interrupted ({signal.Signals(signum).name})")
    assert part.exists() and not part.with_name("fungi_a.h5").exists()


# helixtune.models: what Helixer.py calls.

def test_bundled_list_has_the_released_models_and_default():
    entries = models.load_model_list()
    assert set(models.lineages(entries)) == {"land_plant", "vertebrate", "invertebrate", "fungi",
                                             "default"}
    assert models.best_model(entries, "land_plant").download_link == \
        "https://zenodo.org/records/10836346/files/land_plant_v0.3_a_0080.h5"
    assert models.best_model(entries, "default").bundled


def test_resolve_lineage_model(tmp_path, server, served, caplog):
    entries = models.load_model_list(write_list(tmp_path, server))
    with pytest.raises(cli.UserError, match=r"run: fetch_helixer_models.py --lineage fungi -c "):
        models.resolve_lineage_model("fungi", tmp_path / "m", entries)
    with pytest.raises(cli.UserError, match="known lineages: fungi, land_plant"):
        models.resolve_lineage_model("mammal", tmp_path / "m", entries)
    second = tmp_path / "m" / "fungi" / "fungi_b.h5"
    second.parent.mkdir(parents=True)
    second.write_bytes(served["fungi_b.h5"])
    with caplog.at_level(logging.WARNING):
        assert models.resolve_lineage_model("fungi", tmp_path / "m", entries) == second
    assert "not the best one known (fungi_a, priority 100)" in caplog.text
    best = second.with_name("fungi_a.h5")
    best.write_bytes(served["fungi_a.h5"])
    caplog.clear()
    assert models.resolve_lineage_model("fungi", tmp_path / "m", entries) == best
    assert models.installed_model_path("land_plant", tmp_path / "m", entries) is None
    assert "not the best" not in caplog.text


def test_partial_download_is_not_a_model(tmp_path, server, served):
    entries = models.load_model_list(write_list(tmp_path, server))
    part = tmp_path / "m" / "fungi" / "fungi_a.h5.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(served["fungi_a.h5"][:100])
    assert models.installed_model_path("fungi", tmp_path / "m", entries) is None


def test_provenance_attribute(tmp_path):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs[models.PROVENANCE_ATTR] = "small demonstration model bundled with helixtune"
    assert models.provenance(path) == "small demonstration model bundled with helixtune"
    assert models.provenance(tmp_path / "missing.h5") is None



def test_path_prints_the_model_a_lineage_uses(tmp_path, run_tool, capsys, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    (tmp_path / "Helixer" / "models" / "fungi").mkdir(parents=True)
    model = tmp_path / "Helixer" / "models" / "fungi" / "fungi_v0.3_a_0100.h5"
    model.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert fetch.main(["--lineage", "fungi", "--path"]) == 0
    assert capsys.readouterr().out == f"{model}\n"
    code, err = run_tool(fetch.main, ["--lineage", "vertebrate", "--path"])
    assert code == 1 and "fetch_helixer_models.py --lineage vertebrate" in err
    code, err = run_tool(fetch.main, ["--path"])
    assert code == 2 and "--path needs --lineage" in err
