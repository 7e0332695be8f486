"""Measurement helpers shared by the benchmark scripts (not a benchmark itself).

The scripts run as ``python benchmarks/<tool>.py``, so this module is importable as ``_measure``.

* :func:`measure` / :func:`measure_output`: one child process, its wall time, and its peak RSS and
  CPU time (user + system) from ``os.wait4`` (the child and the descendants it waited for).
* :func:`measure_children`: the same figures through a small Python wrapper process that runs
  the command and reads ``getrusage(RUSAGE_CHILDREN)``.
* :func:`self_peak_rss_mb`: peak RSS of the benchmark process itself.
* :func:`write_random_data_file`: a fasta2h5.py-style data file of given one-hot rows.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time


def measure_output(cmd, env=None):
    """(wall s, peak RSS MiB, CPU s, stdout text) of ``cmd`` run as one child process.

    stderr is kept in a temporary file and shown only if the command fails (SystemExit)."""
    cmd = [str(a) for a in cmd]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n"
                             f"{err.read().decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.decode()


def measure(cmd, env=None):
    """(wall s, peak RSS MiB, CPU s) of ``cmd`` run as one child process (stdout discarded)."""
    return measure_output(cmd, env)[:3]


_CHILDREN = ("import resource, subprocess, sys, time; t = time.monotonic(); "
             "rc = subprocess.run(sys.argv[1:]).returncode; w = time.monotonic() - t; "
             "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(w, r.ru_maxrss, r.ru_utime + r.ru_stime, rc)")


def measure_children(cmd, env=None):
    """(wall s, peak RSS MiB, CPU s) of ``cmd`` run under a wrapper Python process that reads
    ``getrusage(RUSAGE_CHILDREN)`` (the command must print nothing on stdout; use --quiet).

    Unlike :func:`measure`, the peak RSS is not raised to the calling process's own: a child
    inherits the peak of the process it was forked from, and the small wrapper is that process."""
    out = subprocess.run([sys.executable, "-c", _CHILDREN, *map(str, cmd)], capture_output=True,
                         text=True, check=True, env=env)
    wall, rss_kb, cpu, rc = out.stdout.split()
    assert rc == "0", out.stderr
    return float(wall), int(rss_kb) / 1024, float(cpu)


def self_peak_rss_mb():
    """Peak RSS of this (the benchmark's own) process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_random_data_file(path, x):
    """A data file laid out like fasta2h5.py's (gzip ``data/X`` float16, plus-strand coordinates,
    one sequence ``chr1``) holding the one-hot rows ``x`` (rows × length × 4)."""
    import h5py
    import numpy as np

    from helixtune import h5layout

    rows, length = x.shape[:2]
    with h5py.File(path, "w") as h5:
        g = h5.create_group("data")
        X = h5layout.create_dataset(g, "X", rows, length)
        for i in range(rows):
            X[i] = x[i]
        se = np.stack([np.arange(rows) * length, np.arange(1, rows + 1) * length], 1)
        h5layout.create_dataset(g, "start_ends", rows, length)[:] = se
        h5layout.create_dataset(g, "seqids", rows, length)[:] = b"chr1"
        h5layout.create_dataset(g, "species", rows, length)[:] = b"bench"
