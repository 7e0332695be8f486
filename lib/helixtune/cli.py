"""Command-line plumbing shared by every helixtune executable.

Each tool has ``get_parser()`` (pure, used for man pages and contract tests), ``main(argv) -> int``
and ``main_cli()`` = ``run(main)``. User mistakes raise :class:`UserError`; ``run`` turns them
into one line ``<prog>: error: <message>`` on stderr and a non-zero exit code.
"""
import argparse
import contextlib
import logging
import os
import shutil
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
    """Call ``main(argv)`` and exit with its code, mapping errors to one-line messages."""
    prog = os.path.basename(sys.argv[0])
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        code = main(argv)
    except UserError as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        code = e.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        code = 1
    except (OSError, MemoryError) as e:
        if debug:
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


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

    On any exception the temporary file is removed, so no half-written output is left.
    """
    check_writable_output(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    os.close(fd)
    os.unlink(tmp)  # the writer creates it; h5py refuses to open an empty non-HDF5 file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_update(path):
    """Yield a temporary copy of ``path`` to change; it replaces ``path`` only on success.

    The original file stays untouched (same bytes) if anything fails or the process is killed.
    """
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        shutil.copymode(path, tmp)
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
