#!/usr/bin/env python3
"""Annotate a genome in one command: genome FASTA -> HybridModel predictions (with --overlap
unless --no-overlap) -> HelixerPost gene models (GFF3), as Helixer 0.3.6's Helixer.py.

Beyond 0.3.6: every input is checked before any model work; predictions go from the network
to the post-processor sequence by sequence (no predictions file unless --keep-predictions), so
disk use and memory are bounded by the largest sequence; a failing step is a failure.
Needs TensorFlow, an optional extra: pip install "helixtune[model]".
"""
import collections
import contextlib
import json
import logging
import os
import pathlib
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

from helixtune import (cli, fasta, genome_h5, h5layout, model_inputs, models, network,
                       postprocess, prediction)

log = logging.getLogger("helixtune.Helixer")

#: --subsequence-length by lineage when not given (Helixer 0.3.6's; "default": the bundled model)
LINEAGE_SUBSEQUENCE_LENGTH = {"vertebrate": 213840, "invertebrate": 213840,
                              "land_plant": 64152, "fungi": 21384, "default": 21384}
DEFAULT_LINEAGE = "default"
REQUIRED = ("gff_output_path",)


def get_parser():
    """The command-line parser (Helixer 0.3.6's options and defaults, plus helixtune's)."""
    parser = cli.new_parser("Helixer.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("--fasta-path", default=None,
                    help="genome FASTA (plain, gzip or bgzip); required unless --h5-path")
    io.add_argument("--h5-path", default=None,
                    help="a ready genome HDF5 file (fasta2h5.py output) instead of --fasta-path")
    io.add_argument("--gff-output-path", default=None, help="GFF3 output file (required)")
    io.add_argument("--species", default="",
                    help="species name: data/species, the GFF3 ##species header and the gene "
                         "ID prefix (ignored with --h5-path: the file's)")
    io.add_argument("--temporary-dir", default=None,
                    help="directory for the intermediate genome HDF5 files (one part of the "
                         "genome at a time, removed at the end); default: beside "
                         "--gff-output-path")
    io.add_argument("--keep-predictions", metavar="PATH", default=None,
                    help="also write the predictions HDF5 file (HybridModel.py's) to PATH")
    io.add_argument("--config-path", default=None,
                    help="YAML file of these options (keys with underscores, e.g. "
                         "'fasta_path: genome.fa'); the command line wins over it")
    model = parser.add_argument_group("Model")
    model.add_argument("--lineage", default=None,
                       help="use the installed model of this lineage: vertebrate, land_plant, "
                            "fungi, invertebrate (fetch_helixer_models.py installs them) or "
                            "default (the bundled model; used when no model is given and no "
                            "other lineage is installed)")
    model.add_argument("--model-filepath", default=None,
                       help="a model .h5 file, used instead of a lineage's model; "
                            "--subsequence-length is then required, unless --lineage gives "
                            "its default")
    model.add_argument("--downloaded-model-path", default=None,
                       help="where lineage models are looked up (<dir>/<lineage>/<file>); "
                            "default ~/.local/share/Helixer/models ($XDG_DATA_HOME respected)")
    data = parser.add_argument_group("Data layout")
    data.add_argument("--subsequence-length", type=cli.positive_int, default=None,
                      help="row length; default by lineage: "
                           + ", ".join(f"{k} {v}" for k, v in LINEAGE_SUBSEQUENCE_LENGTH.items())
                           + "; must be divisible by the model's pool size")
    data.add_argument("--write-by", type=cli.positive_int, default=20_000_000,
                      help="bases encoded at a time in the conversion, and the most bases of "
                           "whole sequences converted and predicted as one part (a longer "
                           "sequence is a part alone): bounds memory and temporary disk")
    data.add_argument("--compression", choices=["gzip", "lzf"], default="gzip",
                      help="HDF5 compression of the intermediate files")
    data.add_argument("--no-multiprocess", action="store_true",
                      help="accepted for compatibility (the conversion uses no worker processes)")
    pred = parser.add_argument_group("Prediction")
    pred.add_argument("--batch-size", type=cli.positive_int, default=32,
                      help="rows or windows predicted at a time")
    pred.add_argument("--no-overlap", action="store_true",
                      help="predict rows as they are, without overlapping windows")
    pred.add_argument("--overlap-offset", type=cli.positive_int, default=None,
                      help="distance between overlapping windows; must divide the subsequence "
                           "length (default: subsequence length / 2)")
    pred.add_argument("--overlap-core-length", type=cli.positive_int, default=None,
                      help="central part of each window that is kept; smaller than the "
                           "subsequence length (default: subsequence length * 3 / 4)")
    post = parser.add_argument_group("Post-processing (HelixerPost)")
    post.add_argument("--window-size", type=cli.positive_int, default=100,
                      help="width of the sliding window that finds genic regions")
    post.add_argument("--edge-threshold", type=cli.number_in(0, 1), default=0.1,
                      help="mean genic probability at which a genic region starts and ends")
    post.add_argument("--peak-threshold", type=cli.number_in(0, 1), default=0.8,
                      help="mean genic probability that some window of a region must exceed")
    post.add_argument("--min-coding-length", type=cli.positive_int, default=100,
                      help="minimum coding length (bp) of a gene")
    run = parser.add_argument_group("Run control")
    run.add_argument("--threads", type=cli.positive_int, default=None,
                     help="CPU threads for the network, compression and decoding (default: "
                          "the CPUs available)")
    cli.add_common_args(parser)
    return parser


# ---- options -----------------------------------------------------------------------------------

def read_config(path):
    """The options in a YAML config file: PyYAML when installed, else the ``key: value`` subset
    (comments, blank lines, plain or quoted scalars)."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError as e:
        raise cli.UserError(f"--config-path {path!r}: cannot read it ({e.strerror})") from None
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise cli.UserError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(values, dict):
            raise cli.UserError(f"{path}: expected 'key: value' lines")
        return values
    values = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split(" #")[0].strip() if not line.lstrip().startswith("#") else ""
        if not line or line == "---":
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or key != key.rstrip() or " " in key.strip():
            raise cli.UserError(f"{path}: line {n}: expected 'key: value' (install PyYAML for "
                                f"other YAML), found {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif value.lower() in ("true", "yes", "on", "false", "no", "off"):
            value = value.lower() in ("true", "yes", "on")
        elif value.lower() in ("", "null", "~"):
            value = None
        values[key.strip()] = value
    return values


def parse_args(argv):
    """Parse ``argv`` over the defaults of ``--config-path``; check what options alone decide."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.config_path:
        config = read_config(args.config_path)
        dests = {a.dest: a for a in parser._actions}
        unknown = sorted(set(config) - set(dests) - {"help", "version", "config_path"})
        if unknown:
            raise cli.UserError(f"{args.config_path}: unknown option(s) "
                                + ", ".join(unknown), code=2)
        parser.set_defaults(**{k: v if v is None or isinstance(v, bool) else str(v)
                               for k, v in config.items() if k in dests})
        args = parser.parse_args(argv)
    for name in REQUIRED:
        if getattr(args, name) is None:
            raise cli.UserError(f"--{name.replace('_', '-')} is required", code=2)
    if (args.fasta_path is None) == (args.h5_path is None):
        raise cli.UserError("give either --fasta-path or --h5-path", code=2)
    if (args.model_filepath and not args.subsequence_length and not args.h5_path
            and args.lineage not in LINEAGE_SUBSEQUENCE_LENGTH):
        raise cli.UserError("--subsequence-length is required with --model-filepath (or "
                            "--lineage for its default)", code=2)
    return args


def choose_model(args):
    """(model path, lineage or None) from --model-filepath (its lineage: --lineage, which then
    only sets the default subsequence length), --lineage or the bundled default."""
    if args.model_filepath:
        return args.model_filepath, args.lineage
    entries = models.load_model_list()
    model_dir = args.downloaded_model_path
    lineage = args.lineage
    if lineage is None:
        installed = [name for name in models.lineages(entries) if name != DEFAULT_LINEAGE
                     and models.installed_model_path(name, model_dir, entries)]
        if installed:
            raise cli.UserError("no --lineage or --model-filepath given, and models of "
                                f"{', '.join(installed)} are installed: choose one with "
                                "--lineage (or --lineage default for the bundled model)", code=2)
        lineage = DEFAULT_LINEAGE
    if lineage not in models.lineages(entries):
        raise cli.UserError(f"unknown lineage {lineage!r}; known: "
                            f"{', '.join(models.lineages(entries))}; to install one run: "
                            f"{models.FETCH} --lineage LINEAGE", code=2)
    return models.resolve_lineage_model(lineage, model_dir, entries), lineage


def check_model_file(path):
    """The pool size of a model file, read without TensorFlow; UserError unless it is a readable
    HybridModel with 4 input channels and a phase output."""
    if not os.path.isfile(path):
        raise cli.UserError(f"model file {str(path)!r} does not exist")
    try:
        config = json.loads(network.model_config_of_file(path))
        layers = config["config"]["layers"]
        inputs = [layer["config"] for layer in layers if layer["class_name"] == "InputLayer"]
        shape = inputs[0].get("batch_input_shape") or inputs[0].get("batch_shape")
        n_outputs = len(config["config"]["output_layers"])
    except OSError as e:
        raise cli.UserError(f"{path}: not an HDF5 model file ({e})") from None
    except (KeyError, IndexError, TypeError, ValueError):
        raise cli.UserError(f"{path}: not a Keras model file (no usable model_config "
                            "attribute)") from None
    if shape[-1] != 4:
        raise cli.UserError(f"{path}: the model takes {shape[-1]} input channels; Helixer.py "
                            "needs a model of the 4 bases (not a coverage model)")
    if n_outputs != 2:
        raise cli.UserError(f"{path}: the model has no phase output; HelixerPost needs it "
                            "(train with --predict-phase)")
    return network.pool_size_from_file(path)


def check_layout(args, L, P):
    """Overlap settings against the subsequence length L and the pool size P."""
    if L % P:
        raise cli.UserError(f"--subsequence-length {L} is not divisible by the model's pool "
                            f"size {P}", code=2)
    if args.no_overlap:
        return None, None
    offset = args.overlap_offset or L // 2
    core = args.overlap_core_length or L * 3 // 4
    if L % offset:
        raise cli.UserError(f"--overlap-offset {offset} does not divide the subsequence length "
                            f"{L}", code=2)
    if core >= L:
        raise cli.UserError(f"--overlap-core-length {core} must be smaller than the "
                            f"subsequence length {L}", code=2)
    if offset > core:
        raise cli.UserError(f"--overlap-offset {offset} must not exceed --overlap-core-length "
                            f"{core}", code=2)
    return offset, core


def check_genome_h5(path, L):
    """Rows of a ready genome file (--h5-path): sequences, species, start_ends, length."""
    with h5layout.open_h5(path, "--h5-path") as h5:
        postprocess.require_genome(h5, path)
        n, length = h5["data/X"].shape[:2]
        if L and L != length:
            raise cli.UserError(f"{path}: rows of {length} bp, but --subsequence-length is {L}",
                                code=2)
        return postprocess.index_genome(h5, path, n, length) + (length,)


def temporary_dir(args):
    """A directory for intermediate files (and TensorFlow's) in --temporary-dir (default:
    beside the GFF3), removed at the end, on SIGTERM/SIGINT, and after SIGKILL by the next run."""
    parent = args.temporary_dir or os.path.dirname(os.path.abspath(args.gff_output_path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise cli.UserError(f"--temporary-dir {parent!r} is not a writable directory")
    return cli.private_tempdir(os.path.join(parent, os.path.basename(args.gff_output_path)))


# ---- stages ------------------------------------------------------------------------------------

class StrandStream:
    """Collects a prediction stream (model layout, any row blocks) into whole strands of the
    sequences in file layout, so a strand is decoded while the network predicts the next rows.

    ``add`` returns the strands completed so far, in file order, as (seq, strand, arrays,
    first row), where ``arrays`` maps data/X, predictions and predictions_phase to the rows
    from the strand's first to its last."""

    def __init__(self, data, sequences):
        self.data = data
        strands = [(seq, strand, rows) for seq in sequences
                   for strand, rows in (("+", seq.fwd), ("-", seq.rev))]
        self.strands = collections.deque(sorted(strands, key=lambda s: int(s[2].max())))
        self.pieces = []  # [(first row, X, predictions, phase)] not yet handed out

    def add(self, a, outs, block):
        shifts = self.data.shifts[a:a + len(outs[0])]
        rows = [model_inputs.to_file_layout(o, shifts) for o in (block["x"], *outs)]
        self.pieces.append((a, *(np.asarray(r, np.float16) for r in rows)))
        done = []
        stop = a + len(outs[0])
        while self.strands and self.strands[0][2].max() < stop:
            seq, strand, strand_rows = self.strands.popleft()
            first, end = int(strand_rows.min()), int(strand_rows.max()) + 1
            later = min((int(r.min()) for _, _, r in self.strands), default=stop)
            parts = [[], [], []]
            keep = []
            for p0, *arrays in self.pieces:
                lo, hi = max(first, p0) - p0, min(end, p0 + len(arrays[0])) - p0
                if lo < hi:
                    for part, arr in zip(parts, arrays):
                        part.append(arr[lo:hi])
                if p0 + len(arrays[0]) > later:  # rows a later strand still needs
                    keep.append((p0, *arrays))
            self.pieces = keep
            done.append((seq, strand, dict(zip(postprocess.STREAM_DATASETS,
                                               (np.concatenate(p) for p in parts))), first))
        return done


def submit_strand(pool, seq, strand, arrays, first, start_ends, L, opts):
    """Submit HelixerPost's decoding of one strand of a sequence (its rows held in memory from
    row ``first`` on) to ``pool``, one job per candidate region, so the regions of a strand are
    decoded in parallel; returns [(offset, job)]."""
    rows = seq.fwd if strand == "+" else seq.rev
    n = int(rows.max()) + 1 - first
    x, cls, phase = postprocess.read_strand(arrays, arrays, rows - first,
                                            start_ends[first:first + n], L, False)
    return [(a, pool.submit(postprocess.decode_region, x, cls, phase, a, b))
            for a, b in postprocess.candidate_regions(cls, opts.window_size,
                                                      opts.edge_threshold, opts.peak_threshold)]


class Annotator:
    """The model's predictions of genome files, post-processed into GFF3 lines on ``out``
    sequence by sequence; ``annotate`` once per genome file (part), in genome order."""

    def __init__(self, args, model_path, n_rows, L, overlap, species, out, genome_label):
        """``overlap``: (offset, core length), or None to predict rows as they are."""
        # the network gets half the thread budget (HELIXTUNE_TF_THREADS overrides): the decoder
        # runs beside it, and TensorFlow's threads on busy cores slowed it by ~20 %
        # (benchmarks/README.md, Helixer.py)
        tf_threads = (network.tf_threads() if os.environ.get("HELIXTUNE_TF_THREADS")
                      else max(1, cli.thread_budget(args.threads) // 2))
        network.setup_tensorflow(threads=tf_threads)
        self.args, self.L, self.species, self.out = args, L, species, out
        self.overlap = overlap
        self.predictor = prediction.Predictor(network.load_model(str(model_path)),
                                              np.float32 if self.overlap else np.float16)
        md5 = prediction.md5sum_line(str(model_path))
        out.write(postprocess.gff3_header(species, f"# {md5}\n"))
        self.counts = [0, 0]  # genes, mRNAs
        self.rows = cli.Progress("Helixer.py predict", n_rows, "rows")
        self.threads = args.threads or h5layout.compression_threads()
        self.stack = contextlib.ExitStack()
        self.writer = None
        if args.keep_predictions:
            attrs = {"model_config": network.model_config_of_file(model_path),
                     "n_bases_removed": np.int64(0 if self.overlap
                                                 else L % self.predictor.pool_size),
                     "test_data_path": str(genome_label), "model_path": str(model_path),
                     "timestamp": time.strftime("%Y-%m-%d %H:%M:%S"), "model_md5sum": md5}
            keep = self.stack.enter_context(cli.atomic_output(args.keep_predictions))
            self.writer = prediction.PredictionsWriter(keep, n_rows, L, True, args.compression,
                                                       attrs)
            self.stack.callback(self.writer.close)  # before the rename
        self.pool = ThreadPoolExecutor(self.threads)
        self.stack.callback(self.pool.shutdown, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)

    def annotate(self, genome_path, sequences, start_ends, first_row, progress):
        """Predict the genome file (whose rows start at row ``first_row`` of the genome) and
        write its sequences' genes; ``progress`` counts the sequences."""
        args, L = self.args, self.L
        data = model_inputs.DataFile(genome_path, "genome", coordinates=True)
        pending = []  # [(seq, [(strand, [(offset, decoding job)])])], in file order

        def flush():
            seq, strands = pending.pop(0)
            strands.sort(key=lambda item: "+-".index(item[0]))
            decoded = [(strand, [(a, job.result()) for a, job in jobs])
                       for strand, jobs in strands]
            for line in postprocess.sequence_lines(seq, decoded, self.species,
                                                   args.min_coding_length):
                self.out.write(line)
                kind = line.split("\t", 3)[2:3]
                if kind == ["gene"]:
                    self.counts[0] += 1
                elif kind == ["mRNA"]:
                    self.counts[1] += 1
            progress.update(1)

        try:
            stream = (prediction.predict_overlap(data, self.predictor, args.batch_size,
                                                 *self.overlap)
                      if self.overlap else prediction.predict_plain(data, self.predictor,
                                                                    args.batch_size))
            collector = StrandStream(data, sequences)
            for a, outs, block in stream:
                if self.writer is not None:
                    self.writer.write(first_row + a, outs, data.shifts[a:a + len(outs[0])])
                self.rows.update(len(outs[0]))
                for seq, strand, arrays, first in collector.add(a, outs, block):
                    # a strand's regions are decoded in the pool while the next rows are
                    # predicted
                    jobs = submit_strand(self.pool, seq, strand, arrays, first, start_ends, L,
                                         args)
                    if pending and pending[-1][0] is seq:
                        pending[-1][1].append((strand, jobs))
                    else:
                        pending.append((seq, [(strand, jobs)]))
                    # bounded: at most `threads` sequences held beyond the one being finished
                    while len(pending) > self.threads and len(pending[0][1]) == 2:
                        flush()
            while pending:
                flush()
        finally:
            data.close()


def fasta_parts(args, records, L, tmp_dir):
    """(genome file, sequences, start_ends, first row) per part of the FASTA, converted a part
    at a time into ``tmp_dir`` (each part removed after its use)."""
    first_row = 0
    for path in genome_h5.convert_parts(args.fasta_path, tmp_dir, args.species, L,
                                        args.write_by // L * L, args.compression, records,
                                        progress_name="Helixer.py convert"):
        with h5py.File(path, "r") as h5:
            n = h5["data/X"].shape[0]
            sequences, _, start_ends = postprocess.index_genome(h5, path, n, L)
        yield path, sequences, start_ends, first_row
        first_row += n


def main(argv=None):
    t0 = time.monotonic()
    args = parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    network.require_tensorflow("Helixer.py")
    if args.threads:
        os.environ["HELIXTUNE_THREADS"] = str(args.threads)
    # -- everything is checked before any model work
    model_path, lineage = choose_model(args)
    P = check_model_file(model_path)
    cli.check_writable_output(args.gff_output_path)
    if args.keep_predictions:
        cli.check_writable_output(args.keep_predictions)
    if args.h5_path:
        sequences, species, start_ends, L = check_genome_h5(args.h5_path,
                                                            args.subsequence_length)
        records = None
        n_rows, n_sequences = sum(len(s.rows) for s in sequences), len(sequences)
        total_bp = sum(s.length for s in sequences)
    else:
        L = args.subsequence_length or LINEAGE_SUBSEQUENCE_LENGTH.get(lineage)
        if L is None:
            raise cli.UserError(f"lineage {lineage} has no default subsequence length: give "
                                "--subsequence-length", code=2)
        if args.write_by < L:
            raise cli.UserError(f"--write-by ({args.write_by}) must be at least "
                                f"--subsequence-length ({L})", code=2)
        h5layout.check_name_length(args.species, h5layout.SPECIES_BYTES, "species", "--species")
        records = fasta.scan(args.fasta_path)
        for rec in records:
            h5layout.check_name_length(rec.seqid, h5layout.SEQID_BYTES, "sequence ID",
                                       f"{args.fasta_path}: line {rec.line}")
        species = args.species
        n_rows = sum(h5layout.rows_of_sequence(rec.length, L) for rec in records)
        n_sequences, total_bp = len(records), sum(rec.length for rec in records)
    offset, core = check_layout(args, L, P)
    log.info("model %s (pool size %d), subsequence length %d, %s", model_path, P, L,
             "no overlap" if args.no_overlap else f"overlap offset {offset}, core {core}")
    log.info("predicting %d rows of %d bp (%d sequences)", n_rows, L, n_sequences)
    with temporary_dir(args) as tmp_dir, cli.atomic_output(args.gff_output_path) as tmp, \
            open(tmp, "w", newline="\n") as out:
        progress = cli.Progress("Helixer.py post-process", n_sequences, "sequences")
        overlap = None if args.no_overlap else (offset, core)
        with Annotator(args, model_path, n_rows, L, overlap, species, out,
                       args.h5_path or args.fasta_path) as annotator:
            parts = ([(args.h5_path, sequences, start_ends, 0)] if args.h5_path
                     else fasta_parts(args, records, L, tmp_dir))
            for part in parts:
                annotator.annotate(*part, progress)
        genes, mrnas = annotator.counts
    seconds = time.monotonic() - t0
    log.info("wrote %s: %d genes, %d mRNAs on %d bp in %d sequences; %.1f s, %.0f bp/s",
             args.gff_output_path, genes, mrnas, total_bp, n_sequences, seconds,
             total_bp / max(seconds, 1e-9))
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
