"""Prediction and evaluation with a HybridModel (HybridModel.py test mode). Work in progress."""
from helixtune import cli


def run(args):
    raise cli.UserError("prediction is not implemented yet")
