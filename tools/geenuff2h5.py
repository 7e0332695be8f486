#!/usr/bin/env python3
"""Export a GeenuFF database to a Helixer-compatible training HDF5 file (every data/ dataset)."""
import logging
import os

from helixtune import cli, h5layout
from helixtune.labels import export

log = logging.getLogger("helixtune.geenuff2h5")

POOL_SIZE = 9
MODES = ("X", "y", "anno_meta", "transitions")


def get_parser():
    """The command-line parser (Helixer 0.3.6 option names)."""
    parser = cli.new_parser("geenuff2h5.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("--input-db-path", required=True,
                    help="GeenuFF SQLite database (from import2geenuff.py)")
    io.add_argument("--h5-output-path", required=True, type=cli.h5_output_path,
                    help="HDF5 output file (must end in .h5)")
    data = h5layout.add_data_layout_args(parser, write_by_verb="labelled")
    data.add_argument("--modes", default="all",
                      help="'all' or a comma list of X, y, anno_meta, transitions; as in "
                           "Helixer only leaving out X changes the output (no data/X)")
    cli.add_common_args(parser)
    return parser


def parse_modes(text):
    if text == "all":
        return set(MODES)
    modes = {m.strip() for m in text.split(",") if m.strip()}
    bad = modes - set(MODES)
    if bad or not modes:
        raise cli.UserError(f"--modes {text!r}: use 'all' or a comma list of {', '.join(MODES)}",
                            code=2)
    return modes


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    L = args.subsequence_length
    modes = parse_modes(args.modes)
    write_by = h5layout.data_layout_write_by(args, POOL_SIZE)
    if not os.path.isfile(args.input_db_path):
        raise cli.UserError(f"--input-db-path {args.input_db_path}: no such file")
    with cli.atomic_output(args.h5_output_path) as tmp:
        export(args.input_db_path, tmp, L, write_by, args.compression, "X" in modes)
    log.info("wrote %s", args.h5_output_path)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
