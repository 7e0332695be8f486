#!/usr/bin/env python3
"""Encode a genome FASTA as a Helixer-compatible HDF5 file (data/X, seqids, species, start_ends)."""
import logging

import h5py
import numpy as np

from helixtune import cli, h5layout
from helixtune.fasta import iter_blocks, scan
from helixtune.sequence import COMPLEMENT, encode

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


def _row_codes(block, subsequence_length):
    """Byte codes of the plus rows (k, L) of a block of bases and of the matching minus rows in
    file order (byte 0 = padding).

    Minus rows are reverse-complemented on the 1-byte codes; each strand is then encoded once, so
    no float16 array is copied or flipped (encode(COMPLEMENT[c]) is encode(c) channel-reversed)."""
    L = subsequence_length
    n = len(block)
    k = -(-n // L)
    plus = np.zeros((k, L), dtype=np.uint8)
    plus.reshape(-1)[:n] = np.frombuffer(block, dtype=np.uint8)
    # Minus rows: each chunk reverse-complemented, padding kept at the end, rows in descending order.
    minus = COMPLEMENT[plus[::-1, ::-1]]
    tail = n - (k - 1) * L
    if tail < L:  # the short last chunk: after flipping, its padding came first; move it back
        minus[0] = np.roll(minus[0], -(L - tail))
    return plus, minus


def convert(fasta_path, out_path, species, subsequence_length, write_by, compression):
    """Write the HDF5 file for ``fasta_path`` to ``out_path``."""
    L = subsequence_length
    h5layout.check_name_length(species, h5layout.SPECIES_BYTES, "species", "--species")
    records = scan(fasta_path)
    for rec in records:
        h5layout.check_name_length(rec.seqid, h5layout.SEQID_BYTES, "sequence ID",
                                   f"{fasta_path}: line {rec.line}")
    n_total = sum(h5layout.rows_of_sequence(rec.length, L) for rec in records)
    first_row = np.cumsum([0] + [h5layout.rows_of_sequence(rec.length, L) for rec in records])
    progress = cli.Progress("fasta2h5", sum(rec.length for rec in records), "bp")
    with h5py.File(out_path, "w") as h5:
        data = h5.create_group("data")
        dsets = {name: h5layout.create_dataset(data, name, n_total, L, compression)
                 for name in ("X", "seqids", "species", "start_ends")}
        for i, rec in enumerate(records):
            rows = slice(first_row[i], first_row[i + 1])
            n = rows.stop - rows.start
            dsets["seqids"][rows] = np.full(n, rec.seqid.encode(), dtype="S50")
            dsets["species"][rows] = np.full(n, species.encode(), dtype="S25")
            dsets["start_ends"][rows] = h5layout.start_ends(rec.length, L)
        chunk_in_seq = 0
        current = -1
        # X's rows are encoded from byte codes and compressed in threads, and stored as HDF5's
        # filters would store them (h5layout.RowWriter)
        with h5layout.RowWriter(dsets["X"]) as X:
            for index, block in iter_blocks(fasta_path, write_by):
                if index != current:
                    current, chunk_in_seq = index, 0
                n_chunks = h5layout.rows_of_sequence(records[index].length, L) // 2
                plus, minus = _row_codes(block, L)
                k = len(plus)
                base = first_row[index]
                X.write_from(base + chunk_in_seq, plus, encode)
                X.write_from(base + 2 * n_chunks - chunk_in_seq - k, minus, encode)
                chunk_in_seq += k
                progress.update(len(block))
        h5layout.write_root_attrs(h5, fasta_path)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    L = args.subsequence_length
    write_by = h5layout.data_layout_write_by(args, POOL_SIZE)
    with cli.atomic_output(args.h5_output_path) as tmp:
        convert(args.fasta_path, tmp, args.species, L, write_by, args.compression)
    log.info("wrote %s", args.h5_output_path)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
