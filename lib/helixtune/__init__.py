"""helixtune: shared library of the helixtune tool suite (Helixer-compatible)."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("helixtune")
except PackageNotFoundError:  # running from a source checkout that is not installed
    __version__ = "0.1.0"
