"""Turn Helixer's base-wise predictions into gene models (GFF3), with output identical to HelixerPost.

Usage, exactly as HelixerPost's helixer_post_bin:
  helixer_post_bin GENOME.h5 PREDICTIONS.h5 WINDOW EDGE PEAK MIN_CODING_LENGTH OUT.gff3
or with named options (defaults 100, 0.1, 0.8, 60):
  helixer_post_bin --genome-h5 GENOME.h5 --predictions-h5 PREDICTIONS.h5 --gff-output-path OUT.gff3
"""
import argparse
import logging
import os

from helixtune import cli, postprocess
from helixtune.postprocess import DEFAULTS

log = logging.getLogger("helixtune.helixer_post")

POSITIONALS = ("genome", "predictions", "window", "edge", "peak", "min_length", "output")




def non_negative_int(text):
    """argparse type: an integer >= 0."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def get_parser():
    """The command-line parser: HelixerPost's 7 positional arguments, or the named options."""
    parser = cli.new_parser("helixer_post_bin", __doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    pos = parser.add_argument_group(
        "Positional form (HelixerPost's command line; give all seven or none)")
    pos.add_argument("genome", nargs="?", metavar="GENOME.h5",
                     help="genome HDF5 file (fasta2h5.py/geenuff2h5.py output)")
    pos.add_argument("predictions", nargs="?", metavar="PREDICTIONS.h5",
                     help="predictions HDF5 file (HybridModel.py output)")
    pos.add_argument("window", nargs="?", type=cli.positive_int, metavar="WINDOW_SIZE",
                     help="as --window-size")
    pos.add_argument("edge", nargs="?", type=cli.number_in(0, 1), metavar="EDGE_THRESHOLD",
                     help="as --edge-threshold")
    pos.add_argument("peak", nargs="?", type=cli.number_in(0, 1), metavar="PEAK_THRESHOLD",
                     help="as --peak-threshold")
    pos.add_argument("min_length", nargs="?", type=non_negative_int, metavar="MIN_CODING_LENGTH",
                     help="as --min-coding-length")
    pos.add_argument("output", nargs="?", metavar="OUTPUT.gff3", help="as --gff-output-path")
    io = parser.add_argument_group("Named form: input and output")
    io.add_argument("--genome-h5", help="genome HDF5 file (data/X, seqids, species, start_ends)")
    io.add_argument("--predictions-h5",
                    help="predictions HDF5 file (predictions, predictions_phase)")
    io.add_argument("--gff-output-path", help="GFF3 output file")
    post = parser.add_argument_group("Named form: post-processing parameters")
    post.add_argument("--window-size", type=cli.positive_int, default=None,
                      help="width of the sliding window that finds genic regions "
                           f"(default {DEFAULTS['window_size']})")
    post.add_argument("--edge-threshold", type=cli.number_in(0, 1), default=None,
                      help="mean genic probability in a window at which a genic region starts "
                           f"and ends (default {DEFAULTS['edge_threshold']})")
    post.add_argument("--peak-threshold", type=cli.number_in(0, 1), default=None,
                      help="mean genic probability that some window of a region must exceed "
                           f"(default {DEFAULTS['peak_threshold']})")
    post.add_argument("--min-coding-length", type=non_negative_int, default=None,
                      help="minimum coding length (bp, start and stop codons included) of a "
                           f"gene (default {DEFAULTS['min_coding_length']})")
    run = parser.add_argument_group("Run control")
    run.add_argument("--threads", type=cli.positive_int, default=1,
                     help="decode regions of several strands in parallel (default: "
                          "%(default)s)")
    run.add_argument("--minus-padding", choices=["auto", "end", "start"], default="auto",
                     help="where the padding of padded minus-strand prediction rows is: 'end' "
                          "(aligned with data/X; HelixerPost and Helixer <= 0.3.5), 'start' "
                          "(Helixer 0.3.6) or 'auto' (detect)")
    cli.add_common_args(parser)
    return parser


def resolve_args(args):
    """Merge the positional and the named form into one set of settings (or raise UserError)."""
    given = [getattr(args, name) for name in POSITIONALS]
    n_given = sum(v is not None for v in given)
    named = {"genome": args.genome_h5, "predictions": args.predictions_h5,
             "output": args.gff_output_path, "window": args.window_size,
             "edge": args.edge_threshold, "peak": args.peak_threshold,
             "min_length": args.min_coding_length}
    if n_given == len(POSITIONALS):
        clash = [k for k, v in named.items() if v is not None]
        if clash:
            raise cli.UserError("give the settings either as the 7 positional arguments or as "
                                "named options, not both (also named: "
                                + ", ".join(sorted(clash)) + ")", code=2)
        values = dict(zip(POSITIONALS, given))
    elif n_given == 0:
        missing = [opt for opt, key in (("--genome-h5", "genome"),
                                        ("--predictions-h5", "predictions"),
                                        ("--gff-output-path", "output")) if named[key] is None]
        if missing:
            raise cli.UserError("missing " + ", ".join(missing) + " (or give HelixerPost's 7 "
                                "positional arguments)", code=2)
        values = dict(named)
        for key, default in zip(("window", "edge", "peak", "min_length"), DEFAULTS.values()):
            if values[key] is None:
                values[key] = default
    else:
        raise cli.UserError(f"expected 7 positional arguments (genome.h5 predictions.h5 "
                            f"window_size edge_threshold peak_threshold min_coding_length "
                            f"output.gff3), got {n_given}", code=2)
    return argparse.Namespace(**values)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    opts = resolve_args(args)
    for path, what in ((opts.genome, "genome file"), (opts.predictions, "predictions file")):
        if not os.path.isfile(path):
            raise cli.UserError(f"{what} {path!r} does not exist")
    cli.check_writable_output(opts.output)
    with cli.atomic_output(opts.output) as tmp:
        with open(tmp, "w", newline="\n") as out:
            postprocess.post_process(opts.genome, opts.predictions, out, opts.window, opts.edge, opts.peak,
                         opts.min_length, cli.thread_budget(args.threads), args.minus_padding)
    log.info("wrote %s", opts.output)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
