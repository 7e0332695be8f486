"""python -m helixtune_tools.add_ngs_coverage: the same as add_ngs_coverage.py."""
from helixtune_tools.add_ngs_coverage import main_cli

main_cli()
