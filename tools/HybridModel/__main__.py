"""python -m helixtune_tools.HybridModel: the same as HybridModel.py."""
from helixtune_tools.HybridModel import main_cli

main_cli()
