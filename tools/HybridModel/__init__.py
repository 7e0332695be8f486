#!/usr/bin/env python3
"""Train, fine-tune, predict with and evaluate Helixer's HybridModel (option-compatible with Helixer 0.3.6).

Modes (chosen from the options, as in Helixer; [...] is optional):
  training from scratch      -d DIR [-s best_model.h5] [--predict-phase] [architecture options]
  training with coverage     -d DIR --input-coverage --coverage-norm log [architecture options]
  resume training            -d DIR -l MODEL.h5 --resume-training
  fine-tune the head         -d DIR -l MODEL.h5 --resume-training --fine-tune
  fine-tune with coverage    -d DIR -l MODEL.h5 --resume-training --fine-tune --input-coverage
                               --coverage-norm log [--post-coverage-hidden-layer]
  continue a fine-tuning     -d DIR -l TUNED.h5 --fine-tune-resume [coverage options as tuned]
  prediction                 -l MODEL.h5 -t DATA.h5 [-p predictions.h5] [--overlap]
  prediction with coverage   -l TUNED.h5 -t DATA.h5 --input-coverage --coverage-norm log
                               --pretrained-model-path PRETRAINED.h5 [-p predictions.h5] [--overlap]
  evaluation                 -l MODEL.h5 -t DATA.h5 --eval
A loaded model keeps its architecture, phase output included. A coverage model needs the
coverage options it was tuned with (--input-coverage, the same --coverage-norm) in every mode.
TensorFlow is imported only when a mode needs it, so --help and --version stay fast. Every mode
needs TensorFlow, an optional extra: pip install "helixtune[model]".

Recommended fine-tuning settings (measured: benchmarks/finetune_experiment/RESULTS.md):
  --fine-tune (new final layer): --learning-rate 3e-3 --epochs 15 --patience 5 (best check at
    epoch 2-4 on S. pombe; on A. thaliana still creeping up at 15). Not 1e-4 for 3 epochs: the new layer starts random and stays far
    below the starting model (genic F1 0.45 against 0.84 on S. pombe, 0.17 against 0.51 on
    A. thaliana).
  --resume-training (whole network): --learning-rate 3e-4 --epochs 15 --patience 5; no better
    than the final layer with ~50-60 training rows of 21,384 bp, 2-3x the time.
  class weights: "[1.0, 1.5, 0.6, 2.0]" in every mode (not varied in the experiment).
  Score the starting model on a few annotated regions first (compare_annotations.py): tuning
  lifted a poor one (S. pombe 0.21 -> 0.84) and did not improve a fair one (A. thaliana 0.51).
  Pseudolabels (filter-to-most-certain.py) from those starting models made them worse.
"""
import argparse
import logging
import math

from helixtune import cli, network

log = logging.getLogger("helixtune.HybridModel")

COVERAGE_NORMS = ("log", "linear", "None")


class _Deprecated(argparse.Action):
    """Accept a deprecated Helixer option, warn, and keep its default (as Helixer does)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace._deprecated = getattr(namespace, "_deprecated", []) + [option_string]


def weight_list(n):
    """argparse type for --class-weights (n=4) / --transition-weights (n=6): 'None' or a list of
    n finite numbers >= 0. Helixer eval()s the string; we parse it safely (a Python/JSON list)."""
    import ast

    def parse(text):
        if text is None or text.strip() in ("", "None"):
            return None
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not 'None' or a list of {n} numbers, e.g. \"[{', '.join(['1'] * n)}]\"")
        if len(value) != n:
            raise argparse.ArgumentTypeError(f"expected {n} weights, got {text!r}")
        if not all(math.isfinite(v) and v >= 0 for v in value):
            raise argparse.ArgumentTypeError(f"weights must be finite and >= 0, got {text!r}")
        return [float(v) for v in value]

    parse.__name__ = f"list of {n} weights"
    return parse


def get_parser():
    """The command-line parser (Helixer 0.3.6 option names and defaults)."""
    parser = cli.new_parser("HybridModel.py", __doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(_deprecated=[])

    data = parser.add_argument_group("Data and model paths")
    data.add_argument("-d", "--data-dir", type=str, default=None,
                      help="directory with training_data*.h5 and validation_data*.h5 (training "
                           "modes) (default: None)")
    data.add_argument("-s", "--save-model-path", type=str, default="./best_model.h5",
                      help="where the best model is saved (Keras 2 HDF5) (default: %(default)s)")

    train = parser.add_argument_group("Training")
    train.add_argument("-e", "--epochs", type=cli.positive_int, default=10000,
                       help="maximum number of epochs (default: %(default)s)")
    train.add_argument("-b", "--batch-size", type=cli.positive_int, default=8,
                       help="training batch size in rows (default: %(default)s)")
    train.add_argument("--val-test-batch-size", type=cli.positive_int, default=32,
                       help="batch size for validation, prediction and evaluation "
                            "(default: %(default)s)")
    train.add_argument("--loss", type=str, default="",
                       help="parsed for compatibility and ignored, as in Helixer")
    train.add_argument("--patience", type=cli.positive_int, default=3,
                       help="checks without improvement of the validation genic F1 before "
                            "training stops (default: %(default)s)")
    train.add_argument("--check-every-nth-batch", type=cli.positive_int, default=1_000_000,
                       help="also validate every n training batches (default: %(default)s)")
    train.add_argument("--save-every-check", action="store_true",
                       help="save a model file at every validation check")
    train.add_argument("--optimizer", choices=["adam", "adamw"], default="adamw",
                       help="optimizer (default: %(default)s)")
    train.add_argument("--learning-rate", type=cli.number_in(0, math.inf), default=3e-4,
                       help="learning rate (default: %(default)s)")
    train.add_argument("--weight-decay", type=cli.number_in(0, math.inf), default=3.5e-5,
                       help="weight decay of adamw (default: %(default)s)")
    train.add_argument("--clip-norm", type=cli.number_in(0, math.inf), default=3.0,
                       help="gradient clipping norm (default: %(default)s)")
    train.add_argument("--class-weights", type=weight_list(4), default="None",
                       help="'None' or a list of 4 weights for intergenic, UTR, CDS, intron, "
                            "e.g. \"[0.7, 1.6, 1.2, 1.2]\" (default: %(default)s)")
    train.add_argument("--transition-weights", type=weight_list(6), default="None",
                       help="'None' or a list of 6 transition weights, e.g. "
                            "\"[1, 12, 3, 1, 12, 3]\" (default: %(default)s)")
    train.add_argument("--predict-phase", action="store_true",
                       help="train/predict the phase output as well (a loaded model that "
                            "has one keeps it without this option)")
    train.add_argument("--resume-training", action="store_true",
                       help="continue training the model of --load-model-path (all layers "
                            "trainable)")
    train.add_argument("--seed", type=int, default=None,
                       help="random seed for weights, shuffling and dropout (default: random)")
    train.add_argument("--restart-training", action="store_true",
                       help="ignore a training-state checkpoint (<save-model-path>"
                            ".train_state.npz) left by a killed run and start afresh; without "
                            "it, re-running the same command resumes that run exactly")

    tune = parser.add_argument_group("Fine tuning")
    tune.add_argument("--fine-tune", action="store_true",
                      help="with --resume-training: freeze the loaded model and train a new "
                           "final layer")
    tune.add_argument("--fine-tune-resume", action="store_true",
                      help="continue a fine-tuning run (only the final layer(s) trainable)")
    tune.add_argument("--pretrained-model-path", type=str, default=None,
                      help="the model a coverage model was tuned from (needed for inference "
                           "with coverage models)")
    tune.add_argument("--input-coverage", action="store_true",
                      help="feed evaluation/rnaseq_coverage and rnaseq_spliced_coverage into the "
                           "new final layer(s)")
    tune.add_argument("--coverage-norm", choices=COVERAGE_NORMS, default=None,
                      help="normalisation of the coverage: None (raw counts), linear (x/100) or "
                           "log (ln(x+1.1), recommended) (default: None)")
    tune.add_argument("--post-coverage-hidden-layer", action="store_true",
                      help="add a hidden Dense layer after the coverage is concatenated")
    tune.add_argument("--helixer-coverage-quirks", action="store_true",
                      help="build coverage models exactly as Helixer 0.3.6 does: drop the "
                           "pretrained model's last BiLSTM and leave the hidden layer linear")

    test = parser.add_argument_group("Testing and inference")
    test.add_argument("-l", "--load-model-path", type=str, default="",
                      help="model file (Keras 2 HDF5) to predict with or to resume from")
    test.add_argument("-t", "--test-data", type=str, default="",
                      help="HDF5 data file to predict on / evaluate")
    test.add_argument("-p", "--prediction-output-path", type=str, default="predictions.h5",
                      help="predictions file to write (default: %(default)s)")
    test.add_argument("--compression", choices=["gzip", "lzf"], default="gzip",
                      help="compression of the predictions (default: %(default)s)")
    test.add_argument("--eval", action="store_true",
                      help="evaluate against data/y instead of writing predictions: prints the "
                           "confusion matrix and F1 scores and writes them as JSON")
    test.add_argument("--eval-output", type=str, default=None,
                      help="where --eval writes its JSON (default: --prediction-output-path "
                           "with .h5 replaced by .eval.json)")
    test.add_argument("--overlap", action="store_true",
                      help="predict overlapping windows and average their cores")
    test.add_argument("--overlap-offset", type=cli.positive_int, default=None,
                      help="distance between overlapping windows (default: L//2)")
    test.add_argument("--core-length", type=cli.positive_int, default=None,
                      help="central part of each window kept for averaging "
                           "(default: int(0.75*L))")

    res = parser.add_argument_group("Resources and miscellaneous")
    res.add_argument("--float-precision", choices=["float16", "float32", "float64",
                                                   "mixed_float16"], default="float32",
                     help="Keras float type (default: %(default)s)")
    res.add_argument("--gpu-id", type=int, default=-1,
                     help="GPU to use; -1 lets TensorFlow choose (default: %(default)s)")
    res.add_argument("--workers", type=cli.positive_int, default=1,
                     help="training: processes reading and preparing batches (1: one "
                          "background thread) (default: %(default)s)")
    res.add_argument("--nni", action="store_true", help="accepted for compatibility; ignored")
    res.add_argument("-v", "--verbose", action="store_true",
                     help="print more information (Keras progress bars, model summary)")

    arch = parser.add_argument_group("Architecture (ignored when a model is loaded)")
    arch.add_argument("--cnn-layers", type=cli.positive_int, default=1,
                      help="number of convolution layers (default: %(default)s)")
    arch.add_argument("--lstm-layers", type=cli.positive_int, default=1,
                      help="number of bidirectional LSTM layers (default: %(default)s)")
    arch.add_argument("--units", type=cli.positive_int, default=32,
                      help="LSTM units per direction (default: %(default)s)")
    arch.add_argument("--filter-depth", type=cli.positive_int, default=32,
                      help="convolution filters (default: %(default)s)")
    arch.add_argument("--kernel-size", type=cli.positive_int, default=26,
                      help="convolution kernel size (default: %(default)s)")
    arch.add_argument("--pool-size", type=cli.positive_int, default=9,
                      help="bases per LSTM time step (default: %(default)s)")
    arch.add_argument("--dropout1", type=cli.number_in(0, 1, include_high=False), default=0.0,
                      help="dropout after the convolutions (default: %(default)s)")
    arch.add_argument("--dropout2", type=cli.number_in(0, 1, include_high=False), default=0.0,
                      help="dropout after the LSTMs (default: %(default)s)")

    dep = parser.add_argument_group("Deprecated (accepted with a warning, no effect)")
    for flag in ("--large-eval-folder", "--cpus", "--stretch-transition-weights",
                 "--coverage-weights", "--coverage-offset"):
        dep.add_argument(flag, action=_Deprecated, nargs="?", metavar="X", help=argparse.SUPPRESS)
    for flag in ("--calculate-uncertainty", "--no-utrs", "--load-predictions"):
        dep.add_argument(flag, action=_Deprecated, nargs=0, help=argparse.SUPPRESS)
    cli.add_common_args(parser)
    return parser


def mode_of(args):
    """'test' or 'train'; raises UserError for combinations Helixer rejects or ignores."""
    if args.load_model_path and args.test_data and not args.resume_training:
        if args.data_dir:
            raise cli.UserError("--data-dir and --test-data cannot be combined (training and "
                                "test mode)", code=2)
        if args.fine_tune or args.fine_tune_resume:
            raise cli.UserError("--fine-tune/--fine-tune-resume are training options; "
                                "prediction needs none", code=2)
        if args.input_coverage and not args.pretrained_model_path:
            raise cli.UserError("prediction with a coverage model (--input-coverage) needs "
                                "--pretrained-model-path (the model it was tuned from)", code=2)
        if args.core_length is not None and args.overlap_offset is not None \
                and args.overlap_offset > args.core_length:
            raise cli.UserError(f"--overlap-offset ({args.overlap_offset}) must not exceed "
                                f"--core-length ({args.core_length})", code=2)
        return "test"
    if args.test_data and not args.load_model_path:
        raise cli.UserError("--test-data needs --load-model-path (the model to predict with)",
                            code=2)
    if not args.data_dir:
        raise cli.UserError("nothing to do: give -d/--data-dir to train, or --load-model-path "
                            "with --test-data to predict", code=2)
    if args.resume_training and not args.load_model_path:
        raise cli.UserError("--resume-training needs --load-model-path", code=2)
    if args.fine_tune and not args.resume_training:
        raise cli.UserError("--fine-tune needs --resume-training and --load-model-path", code=2)
    if args.fine_tune and args.fine_tune_resume:
        raise cli.UserError("--fine-tune and --fine-tune-resume exclude each other", code=2)
    if args.fine_tune_resume and not args.load_model_path:
        raise cli.UserError("--fine-tune-resume needs --load-model-path (the tuned model)",
                            code=2)
    if args.load_model_path and not (args.resume_training or args.fine_tune_resume):
        raise cli.UserError("--load-model-path with --data-dir needs --resume-training "
                            "(or --fine-tune-resume)", code=2)
    if args.eval or args.overlap:
        raise cli.UserError("--eval/--overlap belong to test mode (--load-model-path with "
                            "--test-data)", code=2)
    return "train"


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    for flag in args._deprecated:
        log.warning("%s is deprecated and has no effect", flag)
    if args.coverage_norm == "None":
        args.coverage_norm = None
    if args.coverage_norm is not None and not args.input_coverage:
        log.warning("--coverage-norm has no effect without --input-coverage")
    mode = mode_of(args)
    network.require_tensorflow("HybridModel.py")
    if mode == "test":
        from helixtune import prediction
        output = (prediction.eval_output_path(args) if args.eval
                  else args.prediction_output_path)
        # TensorFlow's autograph modules go to a temporary directory of the run's own
        with cli.private_tempdir(beside=output):
            return prediction.run(args)
    from helixtune_tools.HybridModel import train
    with cli.private_tempdir(beside=args.save_model_path):
        return train.train(args)


def main_cli():
    cli.run(main)

