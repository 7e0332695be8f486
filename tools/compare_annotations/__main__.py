"""python -m helixtune_tools.compare_annotations: the same as compare_annotations.py."""
from helixtune_tools.compare_annotations import main_cli

main_cli()
