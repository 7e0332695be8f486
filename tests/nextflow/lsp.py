"""A minimal LSP client for the Nextflow language server: open files, collect diagnostics.

Usage as a script:  python tests/nextflow/lsp.py [JAR] FILE...   (prints one line per diagnostic)
"""
import json
import pathlib
import queue
import subprocess
import sys
import threading
import time

SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}


class LanguageServer:
    def __init__(self, jar, root):
        self.root = pathlib.Path(root).resolve()
        self.proc = subprocess.Popen(["java", "-jar", str(jar)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.inbox = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain its log

    def _read(self):
        out = self.proc.stdout
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line or length is None:
                return
            self.inbox.put(json.loads(out.read(length)))

    def send(self, method, params, request=False):
        msg = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            msg["id"] = self.next_id
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def diagnostics(self, files, settings, quiet_s=8.0, max_s=60.0):
        """{path: [(severity, line, message)]} for every file the server reported on."""
        uri = self.root.as_uri()
        self.send("initialize", {"processId": None, "rootUri": uri, "capabilities": {},
                                 "workspaceFolders": [{"uri": uri, "name": self.root.name}]}, request=True)
        self.send("initialized", {})
        self.send("workspace/didChangeConfiguration", {"settings": {"nextflow": settings}})
        for f in files:
            f = pathlib.Path(f).resolve()
            self.send("textDocument/didOpen", {"textDocument": {
                "uri": f.as_uri(), "languageId": "nextflow", "version": 1, "text": f.read_text()}})
        found, t0, last = {}, time.monotonic(), time.monotonic()
        while time.monotonic() - t0 < max_s and time.monotonic() - last < quiet_s:
            try:
                msg = self.inbox.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"language server exited with {self.proc.returncode}")
                continue
            if "id" in msg and "method" in msg:  # a request from the server: answer with null
                body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": None}).encode()
                self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self.proc.stdin.flush()
            elif msg.get("method") == "textDocument/publishDiagnostics":
                last = time.monotonic()
                path = msg["params"]["uri"].removeprefix("file://")
                found[path] = [(SEVERITY.get(d.get("severity", 1), "error"), d["range"]["start"]["line"] + 1,
                                d["message"]) for d in msg["params"]["diagnostics"]]
        return found

    def close(self):
        self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    jar, *paths = sys.argv[1:]
    server = LanguageServer(jar, pathlib.Path.cwd())
    try:
        for path, diags in sorted(server.diagnostics(paths, {"errorReportingMode": "paranoid"}).items()):
            for sev, line, message in diags:
                print(f"{path}:{line}: {sev}: {message}")
    finally:
        server.close()
