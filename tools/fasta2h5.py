#!/usr/bin/env python3
"""Encode a genome FASTA as a Helixer-compatible HDF5 file (data/X, seqids, species, start_ends)."""
import logging

from helixtune import cli, genome_h5, h5layout

log = logging.getLogger("helixtune.fasta2h5")

POOL_SIZE = 9  # time-step width of the released Helixer models


def get_parser():
    """The command-line parser (Helixer 0.3.6 option names)."""
    parser = cli.new_parser("fasta2h5.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("--fasta-path", required=True,
                    help="FASTA file (plain, gzip or bgzip) with the genome assembly")
    io.add_argument("--h5-output-path", required=True, type=cli.h5_output_path,
                    help="HDF5 output file (must end in .h5)")
    io.add_argument("--species", required=True,
                    help="species name stored in data/species (ASCII, at most 25 bytes)")
    h5layout.add_data_layout_args(parser, write_by_verb="encoded")
    cli.add_common_args(parser)
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    L = args.subsequence_length
    write_by = h5layout.data_layout_write_by(args, POOL_SIZE)
    with cli.atomic_output(args.h5_output_path) as tmp:
        genome_h5.convert(args.fasta_path, tmp, args.species, L, write_by, args.compression)
    log.info("wrote %s", args.h5_output_path)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
