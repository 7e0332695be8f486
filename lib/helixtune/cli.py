"""Command-line plumbing shared by every helixtune executable.

Each tool has ``get_parser()`` (pure, used for man pages and contract tests), ``main(argv) -> int``
and ``main_cli()`` = ``run(main)``. User mistakes raise :class:`UserError`; ``run`` turns them
into one line ``<prog>: error: <message>`` on stderr and a non-zero exit code.

Stopping (SIGTERM from a cluster or Galaxy, SIGINT from Ctrl-C): ``run`` turns the first signal
into :class:`Interrupted` in the main thread, so every ``with`` block (``atomic_output``,
``atomic_update``, ``temporary_dir``, ``private_tempdir``) removes its temporary files on the way
out; the tool prints ``<prog>: interrupted (SIGTERM)`` and exits 128 + the signal number. Code
busy in C for longer (a numba loop, a large HDF5 write) is not waited for: a watchdog thread,
woken by the signal itself, removes every registered temporary path, kills child processes and
exits after ``STOP_GRACE_S``. Temporary paths carry the host and process id
(``.<output>.<host>.<pid>.<random>.part``), so a later run removes what a killed (SIGKILL) run
left of the same output, and nothing else.
"""
import _thread
import argparse
import contextlib
import logging
import math
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

log = logging.getLogger("helixtune")


class UserError(Exception):
    """A problem with the user's input or options; printed as one line, exit ``code``."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def add_common_args(parser):
    """Add ``--version``, ``--quiet`` and ``--debug`` (the same on every tool)."""
    group = parser.add_argument_group("Logging and version")
    group.add_argument("--version", action=_VersionAction)
    group.add_argument("--quiet", action="store_true",
                       help="only print warnings and errors (no progress)")
    group.add_argument("--debug", action="store_true",
                       help="print debug messages and full tracebacks")
    return parser


class _VersionAction(argparse._VersionAction):
    """argparse's ``version`` action, looking the version up only when ``--version`` is given."""

    def __call__(self, parser, namespace, values, option_string=None):
        from helixtune import __version__

        self.version = f"{parser.prog} {__version__}"
        super().__call__(parser, namespace, values, option_string)


def new_parser(prog, description):
    """An ``ArgumentParser`` with the suite's formatting and the common options."""
    return argparse.ArgumentParser(prog=prog, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


class _Formatter(logging.Formatter):
    def format(self, record):
        msg = super().format(record)
        return msg if record.levelno < logging.WARNING else f"{record.levelname}: {msg}"


def setup_logging(quiet=False, debug=False):
    """Log to stderr: INFO plain, WARNING and above prefixed. Skipped if a handler exists."""
    root = logging.getLogger()
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    log.setLevel(level)


def run(main, argv=None):
    """Call ``main(argv)`` and exit with its code, mapping errors to one-line messages; SIGTERM
    and SIGINT stop the tool cleanly (see the module docstring)."""
    prog = os.path.basename(sys.argv[0])
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    install_signal_handlers(prog)
    try:
        _raise_early_signal()
        stage("start")
        code = main(argv)
    except KeyboardInterrupt as e:
        _stop(prog, getattr(e, "signum", signal.SIGINT))
    except Exception as e:
        interrupted = _interruption_behind(e)
        if interrupted is not None:  # C code (h5py's type conversions) made it its own error
            _stop(prog, interrupted.signum)
        if isinstance(e, BrokenPipeError):
            code = 1
        elif isinstance(e, (UserError, OSError, MemoryError)) and not debug:
            print(f"{prog}: error: {e}", file=sys.stderr)
            code = e.code if isinstance(e, UserError) else 1
        else:
            raise
    if _state.installed:  # the outputs are in place: a signal now just ends the teardown
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(code)


# --------------------------------------------------------------------------------------------
# stopping on SIGTERM / SIGINT

STOP_GRACE_S = 1.0  # the watchdog's wait for the main thread's own cleanup (the limit is 2 s)
REDELIVER_AFTER_S = 0.01  # a discarded Interrupted is raised again this much later


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM or SIGINT once ``run`` has set up the handlers."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopState:
    installed = False
    early = False  # installed before run(): signals wait for it
    signum = None  # the first SIGTERM/SIGINT received
    raised = False  # Interrupted has been raised for it
    deferred = 0  # > 0 while an output is being renamed into place
    announced = False
    lock = threading.RLock()  # held while the registry changes or an output is renamed
    announce_lock = threading.Lock()
    temporary = {}  # path -> process id that registered it


_state = _StopState()


def _on_signal(signum, frame):
    if _state.signum is not None and _state.raised:
        return  # already stopping: let the cleanup run
    _state.signum = _state.signum or signum
    if _state.deferred:
        return  # raised when the rename is done (see _critical)
    _state.raised = True
    raise Interrupted(_state.signum)


def install_signal_handlers(prog=None, early=False):
    """SIGTERM/SIGINT raise Interrupted; a watchdog thread, woken through the signal's wakeup fd
    even while the main thread is busy in C, forces the stop after STOP_GRACE_S. Done once, by
    ``run`` or ``early`` (``helixtune_tools``, before a tool's imports: a signal then waits for
    ``run``, which stops at once)."""
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return
    _state.installed = True
    if early:
        _state.early = True
        _state.deferred += 1
    prog = prog or os.path.basename(sys.argv[0])
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)
    sys.unraisablehook = _redeliver_swallowed_interruption
    threading.Thread(target=_watchdog, args=(prog, read_fd), daemon=True,
                     name="helixtune-stop-watchdog").start()
    os.register_at_fork(after_in_child=_reset_after_fork)


def _interruption_behind(exc):
    """The Interrupted that ``exc`` was raised while handling, if any (a signal landing in a
    callback that C code turns into an error of its own)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Interrupted):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _redeliver_swallowed_interruption(unraisable, default=sys.unraisablehook):
    """Interrupted raised where Python discards exceptions (a signal landing in a garbage-
    collection callback or a finaliser) is raised again in the main thread once that code has
    returned, instead of printing "Exception ignored" and leaving the stop to the watchdog."""
    if not isinstance(unraisable.exc_value, Interrupted):
        default(unraisable)
        return
    _state.raised = False
    threading.Timer(REDELIVER_AFTER_S, _thread.interrupt_main,
                    args=(unraisable.exc_value.signum,)).start()


def _raise_early_signal():
    """``run`` takes over from an early installation: a signal received meanwhile stops now."""
    if _state.early:
        _state.early = False
        _state.deferred -= 1
        if _state.signum is not None and not _state.raised and not _state.deferred:
            _state.raised = True
            raise Interrupted(_state.signum)


def _reset_after_fork():
    """A forked child (a worker) does not inherit the parent's stopping: default handlers,
    no watchdog, and not the parent's temporary paths."""
    _state.temporary = {}
    _state.signum, _state.raised, _state.deferred = None, False, 0
    _state.installed = _state.early = False
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _watchdog(prog, read_fd):
    while True:
        received = [b for b in os.read(read_fd, 64) if b in (signal.SIGTERM, signal.SIGINT)]
        if received:
            break
    time.sleep(STOP_GRACE_S)
    signum = _state.signum or received[0]
    # the main thread has not finished: clean up for it and go (waiting briefly for a rename)
    _remove_registered(locked=_state.lock.acquire(timeout=0.2))
    _kill_children()
    _announce(prog, signum)
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(128 + signum)


def _stop(prog, signum):
    """What ``run`` does on an interruption once the main thread has unwound: remove what is
    left, say so and exit at once. The interpreter's teardown is skipped: nothing remains to be
    written, and it can take seconds (TensorFlow) while the watchdog can no longer run."""
    _remove_registered()
    _kill_children()
    _announce(prog, signum)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(128 + signum)


def _announce(prog, signum):
    """The one line on stderr, printed once (by the main thread or the watchdog)."""
    if _state.announce_lock.acquire(timeout=0.2) and not _state.announced:
        _state.announced = True
        with contextlib.suppress(Exception):
            print(f"{prog}: interrupted ({signal.Signals(signum).name})", file=sys.stderr,
                  flush=True)


def _kill_children():
    """Kill the worker processes still running (multiprocessing's, the only ones tools start)."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return
    with contextlib.suppress(Exception):
        for child in mp.active_children():
            with contextlib.suppress(Exception):
                child.kill()


@contextlib.contextmanager
def _critical():
    """Signals wait until the block is done (an output being renamed into place)."""
    with _state.lock:
        _state.deferred += 1
        try:
            yield
        finally:
            _state.deferred -= 1
    if _state.signum is not None and not _state.raised and not _state.deferred:
        _state.raised = True
        raise Interrupted(_state.signum)


def _register(path):
    with _state.lock:
        _state.temporary[path] = os.getpid()


def _unregister(path):
    with _state.lock:
        _state.temporary.pop(path, None)


def _remove_path(path):
    """Remove a temporary file (with SQLite's journal files) or directory, if it exists."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    for p in (path, path + "-journal", path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def _remove_registered(locked=True):
    """Remove every registered temporary path of this process (``locked``: the caller holds
    the registry lock, or gave up waiting for it)."""
    with _state.lock if locked else contextlib.nullcontext():
        paths = [p for p, pid in list(_state.temporary.items()) if pid == os.getpid()]
        for path in paths:
            with contextlib.suppress(OSError):
                _remove_path(path)
            _state.temporary.pop(path, None)


@contextlib.contextmanager
def _temporary(path):
    """Register ``path`` for removal on a forced stop; remove it when the block exits."""
    _register(path)
    try:
        yield path
    finally:
        try:
            _remove_path(path)
        finally:
            _unregister(path)


def _owner_tag():
    return f"{socket.gethostname()}.{os.getpid()}"


def _temporary_name_pattern(name):
    """Our temporary names for ``name``: ``.<name>.<host>.<pid>.<8 random>.{part,tmp}``, files
    named after them (``<that>.lines``) and SQLite's journals of both; group 1 is the pid."""
    return re.compile(rf"\.{re.escape(name)}\.{re.escape(socket.gethostname())}\.(\d+)"
                      r"\.[a-z0-9_]{8}\.(?:part|tmp)(?:\.[a-z]+)?(?:-journal|-wal|-shm)?$")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory, name):
    """Remove what killed runs (SIGKILL, power loss) left for output ``name`` in ``directory``:
    only names of our exact pattern (``.<name>.<this host>.<pid>.<random>.part``/``.tmp``)
    whose process no longer exists on this host; other hosts' files are left alone."""
    pattern = _temporary_name_pattern(name)
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry)
        if not match or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, entry)
        with contextlib.suppress(OSError):
            _remove_path(path)
            log.info("removed %s, left by an interrupted run (process %s on this host is gone)",
                     path, match.group(1))


def _new_temporary(directory, name, suffix):
    remove_stale_temporaries(directory, name)
    return tempfile.mkstemp(prefix=f".{name}.{_owner_tag()}.", suffix=suffix, dir=directory)


@contextlib.contextmanager
def temporary_dir(beside):
    """A temporary directory beside the file ``beside`` (same file system), removed on exit,
    on SIGTERM/SIGINT and, after SIGKILL, by the next run for the same file."""
    check_writable_output(beside)
    directory, name = os.path.split(os.path.abspath(beside))
    remove_stale_temporaries(directory, name)
    path = tempfile.mkdtemp(prefix=f".{name}.{_owner_tag()}.", suffix=".tmp", dir=directory)
    with _temporary(path):
        yield path


@contextlib.contextmanager
def private_tempdir(beside):
    """Point ``tempfile`` (and child processes, through ``TMPDIR``) at a :func:`temporary_dir`
    beside ``beside`` for the block: files libraries put in the temporary directory
    (TensorFlow's autograph modules) go with the run, even when it is stopped."""
    with temporary_dir(beside) as path:
        saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = os.environ["TMPDIR"] = path
        try:
            yield path
        finally:
            tempfile.tempdir = saved_dir
            if saved_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_env


def stage(name):
    """A named point of a run. Tests stop tools at such points: with
    ``HELIXTUNE_TEST_PAUSE_AT=<name>[,<name>...]`` the run says ``<prog>: paused at <name>`` on
    stderr there (once per name) and waits up to 60 s (for a signal). Stages: ``start`` (before
    ``main``), ``progress`` (the first progress update, amid the main work), ``commit`` (an
    output written, before it is renamed into place)."""
    wanted = os.environ.get("HELIXTUNE_TEST_PAUSE_AT")
    if not wanted or name not in wanted.split(",") or name in _paused:
        return
    _paused.add(name)
    # one write with its newline: print() writes the text and the newline separately, and a test
    # that reacts to the text alone can make the "interrupted" line land on the same line
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: paused at {name}\n")
    sys.stderr.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.02)


_paused = set()


# --------------------------------------------------------------------------------------------
# CPUs and threads


def available_cpus():
    """The CPUs this process may use: its CPU affinity, capped by a cgroup CPU quota
    (``cpu.max``, cgroup v2, or ``cpu.cfs_quota_us``, v1; rounded down, at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota():
    """The smallest CPU quota (in CPUs) of this process's cgroup and its parents, or None."""
    quotas = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0":  # v2
            parts = [p for p in path.split("/") if p]
            for depth in range(len(parts), -1, -1):
                quotas.append(_read_quota(os.path.join("/sys/fs/cgroup", *parts[:depth]),
                                          "cpu.max"))
        elif "cpu" in controllers.split(","):  # v1
            quotas.append(_read_quota("/sys/fs/cgroup/cpu", "cpu.cfs_quota_us"))
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def _read_quota(directory, name):
    try:
        if name == "cpu.max":
            with open(os.path.join(directory, name)) as f:
                quota, period = f.read().split()
        else:
            with open(os.path.join(directory, name)) as f:
                quota = f.read().strip()
            with open(os.path.join(directory, "cpu.cfs_period_us")) as f:
                period = f.read().strip()
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def thread_budget(requested=None):
    """How many threads (or worker processes) a tool may run: ``requested`` (its ``--threads``)
    if given, else ``HELIXTUNE_THREADS`` if set, else the CPUs available; never more than
    ``HELIXTUNE_THREADS`` or :func:`available_cpus`."""
    limit = available_cpus()
    env = os.environ.get("HELIXTUNE_THREADS")
    if env:
        try:
            allowed = int(env)
        except ValueError:
            raise UserError(f"HELIXTUNE_THREADS={env!r} is not a positive integer") from None
        limit = min(limit, max(1, allowed))
    return max(1, min(requested, limit)) if requested else limit


def check_writable_output(path, suffix=None):
    """Fail early (before any work) if ``path`` cannot be written or has the wrong suffix."""
    if suffix and not str(path).endswith(suffix):
        raise UserError(f"output path {path!r} must end in {suffix}", code=2)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UserError(f"cannot write {path!r}: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path!r}: directory {parent!r} is not writable")
    if os.path.isdir(path):
        raise UserError(f"cannot write {path!r}: it is a directory")


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    On any exception or SIGTERM/SIGINT the temporary file (and an SQLite journal of it) is
    removed, so no half-written output is left; one left by a killed run is removed by the next
    (see :func:`remove_stale_temporaries`)."""
    check_writable_output(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = _new_temporary(directory, name, ".part")
    os.close(fd)
    with _temporary(tmp):
        os.unlink(tmp)  # the writer creates it; h5py refuses to open an empty non-HDF5 file
        yield tmp
        stage("commit")
        with _critical():
            os.replace(tmp, path)


@contextlib.contextmanager
def atomic_update(path):
    """Yield a temporary copy of ``path`` to change; it replaces ``path`` only on success.

    The original file stays untouched (same bytes) if anything fails or the process is stopped
    or killed."""
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = _new_temporary(directory, name, ".part")
    os.close(fd)
    with _temporary(tmp):
        shutil.copyfile(path, tmp)
        shutil.copymode(path, tmp)
        yield tmp
        stage("commit")
        with _critical():
            os.replace(tmp, path)


def lower_thread_priority(steps=10):
    """Run the calling thread ``steps`` nice levels below the main thread (Linux, where the nice
    value is per thread; elsewhere nothing): for I/O threads that should use the cores a
    computation leaves idle instead of preempting it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + steps)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        pass


class Progress:
    """Progress messages on stderr (INFO level, so ``--quiet`` silences them), rate-limited."""

    def __init__(self, what, total, unit="", every_s=5.0):
        self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
        self.done = 0
        self.t0 = self._last = time.monotonic()

    def update(self, n):
        if not self.done:
            stage("progress")
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            pct = 100.0 * self.done / self.total if self.total else 100.0
            log.info("%s: %d/%d %s (%.0f%%, %.1f s)", self.what, self.done, self.total,
                     self.unit, pct, now - self.t0)


def positive_int(text):
    """argparse type: an integer > 0 (underscores allowed, as in 20_000_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def number_in(low, high, include_low=True, include_high=True):
    """argparse type: a number in the interval from ``low`` to ``high`` (bounds included or not),
    e.g. ``number_in(0, 1, include_low=False)`` for a fraction in (0, 1]."""
    interval = (f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}")

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value >= low if include_low else value > low
        below = value <= high if include_high else value < high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"{text!r} is not in {interval}")
        return value

    parse.__name__ = f"number in {interval}"
    return parse


def h5_output_path(text):
    """argparse type: an output path that ends in ``.h5``."""
    if not text.endswith(".h5"):
        raise argparse.ArgumentTypeError(f"{text!r} must end in .h5")
    return text
