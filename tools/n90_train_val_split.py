#!/usr/bin/env python3
"""Split a Helixer HDF5 file into training_data.h5 and validation_data.h5 by whole sequences.

Sequences are sorted by size (subsequences, both strands); those that together hold 90 % of all
subsequences (the "long" group, up to and including the one crossing N90) and the rest (the
"short" group) are each split at random (--seed) so that --val-fraction of each group goes to
validation: both sets then get long and short sequences where possible. A whole sequence (both
strands) goes to one side, so no region is in both sets. If validation would be empty (e.g. a
single chromosome), the tool stops and explains; --split-within-sequences instead cuts sequences
into contiguous blocks at subsequence boundaries (both strands of a region stay together) and
assigns whole blocks. Never copy the training file to be the validation file: identical training
and validation data guarantee over-fitting and make validation scores meaningless. The assignment
(sequence or block -> set, sizes) is written to train_val_assignment.tsv beside the outputs.
"""
import contextlib
import logging
import math
import os

import h5py
import numpy as np

import helixtune
from helixtune import cli, h5layout, h5rows

log = logging.getLogger("helixtune.n90_train_val_split")

OUTPUTS = ("training_data.h5", "validation_data.h5")
ASSIGNMENT = "train_val_assignment.tsv"


def get_parser():
    """The command-line parser (option names of Helixer's n90_train_val_split.py)."""
    parser = cli.new_parser("n90_train_val_split.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("-i", "--h5-to-split", required=True,
                    help="HDF5 file to split (e.g. filter-to-most-certain.py output)")
    io.add_argument("-o", "--output-pfx", default="./",
                    help="prefix of the outputs training_data.h5, validation_data.h5 and "
                         "train_val_assignment.tsv; for a directory give an existing one with a "
                         "trailing slash (DIR/)")
    split = parser.add_argument_group("Split")
    split.add_argument("--val-fraction", type=cli.number_in(0, 1, False, False), default=0.2,
                       help="fraction of the sequences (or blocks) of each size group that goes "
                            "to validation (rounded up, at least one stays in training)")
    split.add_argument("--seed", type=int, default=1,
                       help="random seed of the assignment; the same seed gives the same split")
    split.add_argument("--split-within-sequences", action="store_true",
                       help="assign contiguous blocks of --block-length bases (cut at "
                            "subsequence boundaries, both strands together) instead of whole "
                            "sequences; needed when there are too few sequences (one chromosome)")
    split.add_argument("--block-length", type=cli.positive_int, default=500_000,
                       help="with --split-within-sequences: bases per block, rounded down to "
                            "whole subsequences (at least one)")
    split.add_argument("--write-by", type=cli.positive_int, default=500_000,
                       help="bases read into memory at a time per dataset (bounds memory)")
    cli.add_common_args(parser)
    return parser


def output_paths(prefix):
    """Output paths for ``--output-pfx`` (string concatenation, as documented)."""
    if prefix.endswith(("/", os.sep)):
        if not os.path.isdir(prefix):
            raise cli.UserError(f"--output-pfx {prefix!r}: directory does not exist; create it "
                                f"first (mkdir -p {prefix.rstrip('/')})")
    elif os.path.isdir(prefix):
        raise cli.UserError(f"--output-pfx {prefix!r} is a directory; add a trailing slash "
                            f"({prefix}/) to write into it", code=2)
    else:
        parent = os.path.dirname(os.path.abspath(prefix))
        if not os.path.isdir(parent):
            raise cli.UserError(f"--output-pfx {prefix!r}: directory {parent!r} does not exist")
    return [prefix + name for name in OUTPUTS + (ASSIGNMENT,)]


def units_of_rows(species, seqids, start_ends, block_rows, L):
    """Unit (sequence or block) of every row: returns (unit index per row, unit keys).

    A unit key is (species, seqid, block); block is -1 for whole sequences. Blocks are found from
    the forward coordinate of each row, so a minus row joins the plus rows of the same region."""
    lo = np.minimum(start_ends[:, 0], start_ends[:, 1])
    block = lo // (block_rows * L) if block_rows else np.full(len(lo), -1)
    keys = {}
    unit = np.empty(len(seqids), dtype=np.int64)
    for i, key in enumerate(zip(species.tolist(), seqids.tolist(), block.tolist())):
        unit[i] = keys.setdefault(key, len(keys))
    return unit, list(keys)


def assign(sizes, names, val_fraction, seed):
    """Validation flag per unit, and group ('long'/'short') per unit (N90 on sizes)."""
    order = sorted(range(len(sizes)), key=lambda i: (-sizes[i], names[i]))
    target = int(0.9 * sum(sizes))
    running, cut = 0, len(order) - 1
    for pos, i in enumerate(order):
        running += sizes[i]
        if running >= target:
            cut = pos
            break
    groups = {"long": order[:cut + 1], "short": order[cut + 1:]}
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(sizes), dtype=bool)
    group_of = [""] * len(sizes)
    for gname, members in groups.items():
        for i in members:
            group_of[i] = gname
        if len(members) < 2:
            continue
        n_val = min(math.ceil(val_fraction * len(members)), len(members) - 1)
        chosen = rng.permutation(len(members))[:n_val]
        is_val[[members[c] for c in chosen]] = True
    return is_val, group_of


def empty_validation_message(path, n_units, split_within, groups):
    what = "blocks" if split_within else "sequences"
    count = f"is 1 {what[:-1]}" if n_units == 1 else f"are {n_units} {what}"
    sizes = f" (long group {groups.count('long')}, short group {groups.count('short')})" \
        if n_units > 1 else ""
    msg = (f"{path}: validation would be empty: there {count}{sizes}, and a size group "
           f"(above/below N90) needs at least 2 {what} to give one to validation. ")
    if split_within:
        return msg + "Use a smaller --block-length."
    return msg + ("Whole sequences go to one side so no region is in both sets. Use "
                  "--split-within-sequences to assign contiguous blocks of long sequences "
                  "(--block-length) instead. Do not copy training_data.h5 to "
                  "validation_data.h5: identical training and validation data guarantee "
                  "over-fitting.")


def write_assignment(path, keys, sizes, bases, spans, is_val, groups):
    with open(path, "w") as fh:
        fh.write("species\tseqid\tstart\tend\tset\tgroup\trows\tbases\n")
        for u, (species, seqid, _block) in enumerate(keys):
            fh.write("\t".join([species.decode(errors="replace"), seqid.decode(errors="replace"),
                                str(spans[u][0]), str(spans[u][1]),
                                "validation" if is_val[u] else "training", groups[u],
                                str(sizes[u]), str(bases[u])]) + "\n")


def split(args, paths):
    src_path = args.h5_to_split
    try:
        src = h5py.File(src_path, "r")
    except OSError as e:
        raise cli.UserError(f"cannot read {src_path}: {e}") from None
    with src:
        n = h5rows.row_count(src, src_path)
        if n == 0:
            raise cli.UserError(f"{src_path} has no rows")
        L = h5rows.subsequence_length(src, src_path)
        seqids = h5layout.read_all(src["data/seqids"])
        species = (h5layout.read_all(src["data/species"]) if "data/species" in src
                   else np.full(n, b"", "S1"))
        se = h5layout.read_all(src["data/start_ends"])
        block_rows = max(1, args.block_length // L) if args.split_within_sequences else 0
        unit, keys = units_of_rows(species, seqids, se, block_rows, L)
        n_units = len(keys)
        sizes = np.bincount(unit, minlength=n_units).tolist()
        length = np.abs(se[:, 0] - se[:, 1])
        bases = np.bincount(unit, weights=length, minlength=n_units).astype(np.int64).tolist()
        lo = np.minimum(se[:, 0], se[:, 1])
        hi = np.maximum(se[:, 0], se[:, 1])
        span_lo = np.full(n_units, np.iinfo(np.int64).max)
        span_hi = np.zeros(n_units, dtype=np.int64)
        np.minimum.at(span_lo, unit, lo)
        np.maximum.at(span_hi, unit, hi)
        spans = list(zip(span_lo.tolist(), span_hi.tolist()))
        names = [(k[1], k[0], k[2]) for k in keys]
        is_val, groups = assign(sizes, names, args.val_fraction, args.seed)
        if not is_val.any():
            raise cli.UserError(empty_validation_message(src_path, n_units,
                                                         args.split_within_sequences, groups))
        val_rows = is_val[unit]
        masks = [~val_rows, val_rows]
        counts = [int(m.sum()) for m in masks]
        for name, m in zip(("training", "validation"), masks):
            units = sorted({int(u) for u in unit[m]})
            log.info("%s: %d %s, %d rows, %d bases", name, len(units),
                     "blocks" if block_rows else "sequences", int(m.sum()), int(length[m].sum()))
        block = h5rows.rows_per_block(args.write_by, L, log)
        with contextlib.ExitStack() as stack:
            tmps = [stack.enter_context(cli.atomic_output(p)) for p in paths]
            with h5py.File(tmps[0], "w") as train, h5py.File(tmps[1], "w") as val:
                names_rows = h5rows.copy_structure(src, [train, val], counts, n)
                progress = cli.Progress("writing", n * len(names_rows), "dataset rows")
                h5rows.copy_rows(src, [train, val], masks, names_rows, block, progress)
                for out, which in ((train, "training"), (val, "validation")):
                    out.attrs["n90_split_set"] = which
                    out.attrs["n90_split_seed"] = str(args.seed)
                    out.attrs["n90_split_val_fraction"] = str(args.val_fraction)
                    out.attrs["n90_split_block_length"] = \
                        str(block_rows * L) if block_rows else "whole sequences"
                    out.attrs["n90_split_version"] = helixtune.__version__
            write_assignment(tmps[2], keys, sizes, bases, spans, is_val, groups)
    for p in paths:
        log.info("wrote %s", p)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    paths = output_paths(args.output_pfx)
    if not os.path.exists(args.h5_to_split):
        raise cli.UserError(f"{args.h5_to_split}: no such file")
    split(args, paths)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
