"""helixtune's executables (see README.md's layout table)."""
import os
import sys

# [project.scripts] of pyproject.toml (tests/test_signals.py checks): run as one of them, the
# process stops cleanly on SIGTERM/SIGINT from here on, not only once the tool's imports are done.
EXECUTABLES = frozenset({
    "fasta2h5.py", "import2geenuff.py", "geenuff2h5.py", "helixer_post_bin", "add_ngs_coverage.py",
    "filter-to-most-certain.py", "n90_train_val_split.py", "HybridModel.py",
    "fetch_helixer_models.py", "Helixer.py", "compare_annotations.py"})

if sys.argv and os.path.basename(sys.argv[0]) in EXECUTABLES:
    from helixtune import cli

    cli.install_signal_handlers(early=True)
