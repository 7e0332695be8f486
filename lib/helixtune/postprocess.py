"""Helixer predictions to gene models (GFF3), byte-identical to HelixerPost: reading the genome
and predictions files sequence by sequence, the HMM decoding of candidate regions
(:mod:`helixtune.postprocess_hmm`) and the GFF3 lines. Used by helixer_post_bin and Helixer.py.
"""
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np

from helixtune import cli, h5layout

log = logging.getLogger("helixtune.postprocess")

DEFAULTS = {"window_size": 100, "edge_threshold": 0.1, "peak_threshold": 0.8,
            "min_coding_length": 60}
GENOME_DATASETS = ("data/X", "data/seqids", "data/species", "data/start_ends")
PREDICTION_DATASETS = ("predictions", "predictions_phase")
#: what :func:`read_strand` reads: data/X of the genome file, then the two predictions
STREAM_DATASETS = ("data/X",) + PREDICTION_DATASETS


# --- input --------------------------------------------------------------------------------------
class Sequence:
    """The rows of one sequence: forward rows by start, reverse rows by end descending."""

    def __init__(self, seqid, rows, start_ends):
        self.seqid = seqid
        self.rows = rows
        se = start_ends[rows]
        fwd = rows[se[:, 0] < se[:, 1]]
        rev = rows[se[:, 0] > se[:, 1]]
        self.fwd = fwd[np.argsort(start_ends[fwd, 0], kind="stable")]
        self.rev = rev[np.argsort(-start_ends[rev, 1], kind="stable")]
        self.length = int(start_ends[self.fwd, 1].max()) if len(self.fwd) else 0



def require_genome(h5, path):
    """UserError unless the genome file has every dataset HelixerPost reads."""
    _require(h5, GENOME_DATASETS, path)


def _require(h5, names, path):
    for name in names:
        if name not in h5 or not isinstance(h5[name], h5py.Dataset):
            raise cli.UserError(f"{path}: dataset {name!r} is missing")


def index_sequences(genome, preds, genome_path, preds_path):
    """Check that the two files correspond and group the rows into sequences."""
    _require(genome, GENOME_DATASETS, genome_path)
    _require(preds, PREDICTION_DATASETS, preds_path)
    p, ph, x = preds["predictions"], preds["predictions_phase"], genome["data/X"]
    if p.ndim != 3 or p.shape[2] != 4:
        raise cli.UserError(f"{preds_path}: 'predictions' has shape {p.shape}, expected (N, L, 4)")
    n, L = p.shape[:2]
    if ph.shape != p.shape:
        raise cli.UserError(f"{preds_path}: 'predictions_phase' has shape {ph.shape}, "
                            f"'predictions' {p.shape}")
    if x.shape != p.shape:
        raise cli.UserError(f"{genome_path} and {preds_path} do not correspond: data/X has shape "
                            f"{x.shape}, predictions {p.shape} (rows or subsequence length differ)")
    sequences, species, start_ends = index_genome(genome, genome_path, n, L)
    # Prediction files may carry the row identity (seqids/start_ends, at the root or in data/):
    # then it must be the genome file's.
    for name in ("seqids", "start_ends"):
        for key in (name, f"data/{name}"):
            if key in preds and isinstance(preds[key], h5py.Dataset):
                ours = (start_ends if name == "start_ends"
                        else h5layout.read_all(genome["data/seqids"]))
                theirs = h5layout.read_all(preds[key])
                if theirs.shape != ours.shape or (theirs != ours).any():
                    row = (int(np.flatnonzero((theirs != ours).reshape(len(ours), -1).any(1))[0])
                           if theirs.shape == ours.shape else None)
                    raise cli.UserError(
                        f"{genome_path} and {preds_path} do not correspond: {key} differs from "
                        f"data/{name}" + (f" (first at row {row})" if row is not None else ""))
    return sequences, species, L, start_ends


def index_genome(genome, genome_path, n, L):
    """Check the genome file's row identity (n rows of length L) and group its rows into
    sequences: (sequences, species, start_ends)."""
    seqids = h5layout.read_all(genome["data/seqids"])
    species = h5layout.read_all(genome["data/species"])
    start_ends = h5layout.read_all(genome["data/start_ends"])
    if len(seqids) != n or len(species) != n or start_ends.shape != (n, 2):
        raise cli.UserError(f"{genome_path}: data/seqids, data/species and data/start_ends must "
                            f"have one entry per row of data/X ({n})")
    if n == 0:
        raise cli.UserError(f"{genome_path}: the file has no rows")
    if (species != species[0]).any():
        other = species[np.flatnonzero(species != species[0])[0]]
        raise cli.UserError(f"{genome_path}: more than one species ({species[0].decode()!r}, "
                            f"{other.decode()!r}); HelixerPost allows one species per file")
    # contiguous runs of the same seqid are sequences
    change = np.flatnonzero(seqids[1:] != seqids[:-1]) + 1
    bounds = np.concatenate(([0], change, [n]))
    sequences, seen = [], set()
    for a, b in zip(bounds[:-1], bounds[1:]):
        seqid = seqids[a].decode("ascii", "replace")
        if seqid in seen:
            log.warning("%s: sequence %r appears in two separate groups of rows; each group is "
                        "processed as its own sequence (as HelixerPost does)", genome_path, seqid)
        seen.add(seqid)
        seq = Sequence(seqid, np.arange(a, b), start_ends)
        _check_sequence(seq, start_ends, L, genome_path)
        sequences.append(seq)
    return sequences, species[0].decode("ascii", "replace"), start_ends


def _check_sequence(seq, start_ends, L, path):
    where = f"{path}: sequence {seq.seqid!r}"
    se = start_ends[seq.rows]
    if (se[:, 0] == se[:, 1]).any():
        raise cli.UserError(f"{where}: a row has start == end ({se[se[:, 0] == se[:, 1]][0]})")
    if (np.abs(se[:, 0] - se[:, 1]) > L).any() or (se < 0).any():
        raise cli.UserError(f"{where}: a row's start_ends exceed the subsequence length {L}")
    f, r = start_ends[seq.fwd], start_ends[seq.rev]
    if len(seq.fwd) != len(seq.rev):
        raise cli.UserError(f"{where}: {len(seq.fwd)} plus-strand rows but {len(seq.rev)} "
                            "minus-strand rows (perhaps using filtered data?)")
    if len(np.unique(f[:, 0])) != len(f) or len(np.unique(r[:, 1])) != len(r):
        raise cli.UserError(f"{where}: two rows cover the same subsequence")
    if f[0, 0] != 0 or (f[1:, 0] != f[:-1, 1]).any():
        raise cli.UserError(f"{where}: plus-strand rows are not contiguous from position 0 "
                            "(perhaps using filtered data?)")
    if r[-1, 1] != 0 or (r[1:, 0] != r[:-1, 1]).any():
        raise cli.UserError(f"{where}: minus-strand rows are not contiguous down to position 0 "
                            "(perhaps using filtered data?)")
    if f[-1, 1] != r[0, 0]:
        raise cli.UserError(f"{where}: the plus strand ends at {f[-1, 1]} but the minus strand "
                            f"starts at {r[0, 0]}")


def _padding_votes(preds, sequences, start_ends, L, limit=64):
    """Evidence on where the padding of padded minus-strand prediction rows is.

    A padded minus row and its plus-strand mirror cover the same bases with the same valid
    length n. With the padding at the row end (aligned with data/X) both rows hold the model's
    output for all-zero input at positions n .. L-1; with Helixer 0.3.6's padding-first layout the
    minus row holds it at 0 .. L-n-1 instead (mirrored). Returns the summed mean distances to
    the plus-strand padding under both hypotheses and the number of row pairs used."""
    dist_end = dist_start = 0.0
    used = 0
    for seq in sequences:
        mirror = {(int(a), int(b)): int(r) for r, (a, b) in zip(seq.fwd, start_ends[seq.fwd])}
        for r in seq.rev:
            start, end = (int(v) for v in start_ends[r])
            n = start - end
            if n >= L or (end, start) not in mirror:
                continue
            a = preds["predictions"][mirror[end, start]].astype(np.float32)[n:]
            b = preds["predictions"][int(r)].astype(np.float32)
            dist_end += float(np.abs(b[n:] - a).mean())
            dist_start += float(np.abs(b[:L - n][::-1] - a).mean())
            used += 1
            if used >= limit:
                return dist_end, dist_start, used
    return dist_end, dist_start, used


def detect_minus_padding(preds, sequences, start_ends, L, path):
    """'end' or 'start': where padded minus-strand prediction rows keep their padding."""
    dist_end, dist_start, used = _padding_votes(preds, sequences, start_ends, L)
    if used == 0:
        return "end"
    choice = "start" if dist_start < dist_end else "end"
    log.info("%s: padded minus-strand rows have their padding at the row %s%s (%d rows "
             "checked; mean distance to the plus-strand padding %.4g if at the end, %.4g if at "
             "the start)", path, choice,
             " (Helixer 0.3.6 layout)" if choice == "start" else "", used,
             dist_end / used, dist_start / used)
    return choice


READ_ROWS = 32  # rows read at a time (bounds memory beside the strand streams)


def read_strand(genome, preds, rows, start_ends, L, shifted):
    """One strand's streams (X, classes, phases) as float16 (n, 4), 5'->3' on that strand.

    Only the |start - end| valid positions of each row are read: from the row start, or from
    the row end when ``shifted`` (Helixer 0.3.6's minus-strand predictions, padding first)."""
    lengths = np.abs(start_ends[rows, 1] - start_ends[rows, 0])
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    out = []
    for ds, shift in ((genome["data/X"], False), (preds["predictions"], shifted),
                      (preds["predictions_phase"], shifted)):
        stream = np.empty((int(offsets[-1]), 4), ds.dtype)
        i = 0
        while i < len(rows):
            j = i + 1  # a batch of consecutive file rows
            while j < len(rows) and j - i < READ_ROWS and rows[j] == rows[j - 1] + 1:
                j += 1
            block = ds[int(rows[i]):int(rows[j - 1]) + 1]
            for k in range(i, j):
                n = int(lengths[k])
                stream[offsets[k]:offsets[k + 1]] = block[k - i, L - n:] if shift else block[k - i, :n]
            i = j
        out.append(stream)
    return out


# --- decoding -----------------------------------------------------------------------------------
def candidate_regions(cls, window, edge, peak):
    """[(start, end), ...]: the candidate regions of one strand (HelixerPost's sliding window
    over the genic probability), each decoded on its own by :func:`decode_region`."""
    from helixtune import postprocess_hmm as hmm
    return hmm.candidate_regions(cls[:, 0], window, edge, peak)


def decode_region(x, cls, phase, a, b):
    """The label runs of the candidate region [a, b) of one strand's streams."""
    from helixtune import postprocess_hmm as hmm
    return hmm.decode_region(cls[a:b], phase[a:b], x[a:b])


def decode_strand(x, cls, phase, window, edge, peak, advance=None, budget=None):
    """Decode all candidate regions of one strand: [(offset, runs), ...].

    ``advance(n)``, if given, is called as the decoding passes n more positions of the strand
    (after each region and at the end; n sums to the strand length). ``budget``, if given (a
    :class:`MemoryBudget`), is held for each region's decoding memory while it is decoded."""
    results = []
    done = 0
    for a, b in candidate_regions(cls, window, edge, peak):
        if budget is not None:
            budget.acquire_region(REGION_BYTES_PER_BASE * (b - a))
        try:
            runs = decode_region(x, cls, phase, a, b)
        finally:
            if budget is not None:
                budget.release_region(REGION_BYTES_PER_BASE * (b - a))
        results.append((a, runs))
        if advance is not None:
            advance(b - done)
            done = b
    if advance is not None:
        advance(len(cls) - done)
    return results


def genes_of_runs(offset, runs, min_coding_length):
    """Split label runs of one region into genes: lists of (start, end, label), strand-local."""
    from helixtune.postprocess_hmm import L_CODING, L_INTERGENIC
    genes = []
    current, coding = [], 0
    for s, e, lab in zip(*runs):
        if lab == L_INTERGENIC:
            if current and coding >= min_coding_length:
                genes.append(current)
            current, coding = [], 0
            continue
        current.append((int(s) + offset, int(e) + offset, int(lab)))
        if lab == L_CODING:
            coding += int(e - s)
    if current and coding >= min_coding_length:
        genes.append(current)
    return genes


FEATURE = {1: "five_prime_UTR", 2: "CDS", 4: "three_prime_UTR"}  # by label


def gene_lines(gene, number, seqid, species, strand, length):
    """GFF3 lines of one gene (HelixerPost's records, IDs and order)."""
    from helixtune.postprocess_hmm import L_CODING, L_INTRON
    gid = f"{species}_{seqid}_{number:06d}"
    tid = f"{gid}.1"
    parts = [(s, e, lab) for s, e, lab in gene if lab != L_INTRON]

    def coords(s, e):  # strand-local [s, e) -> GFF 1-based inclusive
        if strand == "+":
            return s + 1, e
        return length + 1 - e, length - s

    def line(kind, s, e, phase, attrs):
        a, b = coords(s, e)
        return f"{seqid}\tHelixer\t{kind}\t{a}\t{b}\t.\t{strand}\t{phase}\t{attrs}\n"

    lines = [line("gene", parts[0][0], parts[-1][1], ".", f"ID={gid}"),
             line("mRNA", parts[0][0], parts[-1][1], ".", f"ID={tid};Parent={gid}")]
    counts = {"exon": 0, "five_prime_UTR": 0, "CDS": 0, "three_prime_UTR": 0}
    cds_done = 0
    i = 0
    while i < len(parts):
        j = i
        while j + 1 < len(parts) and parts[j + 1][0] == parts[j][1]:
            j += 1
        counts["exon"] += 1
        lines.append(line("exon", parts[i][0], parts[j][1], ".",
                          f"ID={tid}.exon.{counts['exon']};Parent={tid}"))
        for s, e, lab in parts[i:j + 1]:
            kind = FEATURE[lab]
            counts[kind] += 1
            phase = "."
            if lab == L_CODING:
                phase = str((3 - cds_done % 3) % 3)
                cds_done += e - s
            lines.append(line(kind, s, e, phase, f"ID={tid}.{kind}.{counts[kind]};Parent={tid}"))
        i = j + 1
    return lines


def gff3_header(species, md5_line):
    """The GFF3 header lines (``md5_line``: :func:`model_md5_line`'s result)."""
    return f"##gff-version 3.2.1\n##species {species}\n{md5_line}"


def sequence_lines(seq, strand_results, species, min_length):
    """The GFF3 lines of one sequence from its decoded strands [(strand, decode_strand(...))]:
    the sequence-region line, then its genes numbered in order."""
    yield f"##sequence-region {seq.seqid} 1 {seq.length}\n"
    number = 0
    for strand, results in strand_results:
        for offset, runs in results:
            for gene in genes_of_runs(offset, runs, min_length):
                number += 1
                yield from gene_lines(gene, number, seq.seqid, species, strand, seq.length)


def model_md5_line(preds):
    """'# <model_md5sum>' if the attribute exists as a variable-length UTF-8 string."""
    if "model_md5sum" not in preds.attrs:
        return ""
    tid = preds.attrs.get_id("model_md5sum").get_type()
    if not (isinstance(tid, h5py.h5t.TypeStringID) and tid.is_variable_str()
            and tid.get_cset() == h5py.h5t.CSET_UTF8):
        return ""
    value = preds.attrs["model_md5sum"]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return f"# {value}\n"


def post_process(genome_path, preds_path, out, window, edge, peak, min_length, threads,
                 minus_padding="auto"):
    """Write the GFF3 for the genome/predictions pair to the open text file ``out``."""
    with h5layout.open_h5(genome_path, "genome file") as genome, \
            h5layout.open_h5(preds_path, "predictions file") as preds:
        sequences, species, L, start_ends = index_sequences(genome, preds, genome_path,
                                                            preds_path)
        if minus_padding == "auto":
            minus_padding = detect_minus_padding(preds, sequences, start_ends, L, preds_path)
        out.write(gff3_header(species, model_md5_line(preds)))
        total = sum(s.length for s in sequences)
        log.info("helixer_post_bin: %d sequence(s), %d bp; decoding both strands with %d "
                 "thread(s)", len(sequences), total, threads)
        progress = cli.Progress("helixer_post_bin", 2 * total, "bp decoded (both strands)")
        progress_lock = threading.Lock()

        def advance(n):
            if n:
                with progress_lock:
                    progress.update(n)
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        budget = MemoryBudget(MEMORY_BUDGET) if pool else None
        pending = []  # (seq, [(strand, future or result)])

        def flush(item):
            seq, jobs = item
            out.writelines(sequence_lines(seq, [(strand, job.result() if pool else job)
                                                for strand, job in jobs], species, min_length))

        def decode_within_budget(cost, *args):
            try:
                return decode_strand(*args, budget=budget)
            finally:
                budget.release_streams(cost)

        try:
            for seq in sequences:
                jobs = []
                for strand, rows in (("+", seq.fwd), ("-", seq.rev)):
                    cost = STREAM_BYTES_PER_BASE * seq.length
                    if pool:  # strands in flight are bounded by their memory, not their count
                        budget.acquire_streams(cost)
                    x, cls, phase = read_strand(genome, preds, rows, start_ends, L,
                                                strand == "-" and minus_padding == "start")
                    if pool:
                        jobs.append((strand, pool.submit(decode_within_budget, cost, x, cls,
                                                         phase, window, edge, peak, advance)))
                    else:
                        jobs.append((strand, decode_strand(x, cls, phase, window, edge, peak,
                                                           advance)))
                    del x, cls, phase
                pending.append((seq, jobs))
                while len(pending) > (threads if pool else 0):
                    flush(pending.pop(0))
            while pending:
                flush(pending.pop(0))
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)


#: Bytes that strands in flight may hold together with --threads > 1: their float16 streams
#: (held from reading until decoded) and the decoder's working memory for the regions being
#: decoded. A region larger than that is decoded while no other region is.
MEMORY_BUDGET = 768 << 20
STREAM_BYTES_PER_BASE = 24  # x, classes, phases: 4 float16 each
#: Decoder memory per base of a region (postprocess_hmm.decode): a record of settled bits and
#: back-pointer codes (18 B), the map of tentative costs below the search window (2.5 slots of
#: 12 B; it grows by half when 80 % full), the heap (~2 entries of 13 B on noisy predictions) and
#: room for the map's growth. Fixed besides: the window and the page cache (~45 MB).
REGION_BYTES_PER_BASE = 96


class MemoryBudget:
    """Bytes shared by the strands in flight. Waits never deadlock: a strand's streams are
    admitted when nothing is held, a region when no other region is being decoded."""

    def __init__(self, total):
        self.total = self.left = total
        self.regions = 0
        self.cond = threading.Condition()

    def acquire_streams(self, n):
        with self.cond:
            self.cond.wait_for(lambda: self.left >= n or self.left == self.total)
            self.left -= n

    def release_streams(self, n):
        with self.cond:
            self.left += n
            self.cond.notify_all()

    def acquire_region(self, n):
        with self.cond:
            self.cond.wait_for(lambda: self.left >= n or self.regions == 0)
            self.left -= n
            self.regions += 1

    def release_region(self, n):
        with self.cond:
            self.left += n
            self.regions -= 1
            self.cond.notify_all()
