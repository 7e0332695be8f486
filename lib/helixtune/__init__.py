"""helixtune: shared library of the helixtune tool suite (Helixer-compatible)."""


def __getattr__(name):
    # ``__version__`` is looked up lazily: importlib.metadata costs ~20 ms at every tool start,
    # and most runs never print the version.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("helixtune")
        except PackageNotFoundError:  # running from a source checkout that is not installed
            value = "0.1.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
