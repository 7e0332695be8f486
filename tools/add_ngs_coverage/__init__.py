#!/usr/bin/env python3
"""Add RNA-seq (or other NGS) read coverage from BAM files to a Helixer HDF5 data file.

Writes evaluation/{prefix}_coverage and evaluation/{prefix}_spliced_coverage (rows x L x BAMs,
int64, -1 = padding or other species) and evaluation/{prefix}_meta/bam_files. A second run appends
columns. The file is changed atomically: on any error or interruption it stays as it was.
"""
import collections
import contextlib
import itertools
import logging
import os
import shutil
import signal
import sys

# numpy's OpenBLAS starts a thread per core when numpy is imported, which costs ~30 ms of CPU at
# every start; this tool never calls BLAS. Ask for one thread while numpy loads (unless the user
# chose a number), then restore the environment so child processes are not affected.
_BLAS_ENV = "OPENBLAS_NUM_THREADS"
_blas_set = _BLAS_ENV not in os.environ
if _blas_set:
    os.environ[_BLAS_ENV] = "1"
try:
    import h5py
    import numpy as np
finally:
    if _blas_set:
        del os.environ[_BLAS_ENV]

from helixtune import cli, h5layout
from helixtune.lzfchunks import row_chunks
from helixtune_tools.add_ngs_coverage import bam as _bam

log = logging.getLogger("helixtune.add_ngs_coverage")

MODES = {"second_read_is_sense_strand": "second", "first_read_is_sense_strand": "first",
         "unstranded": "unstranded"}
FLAG_OF_MODE = {"second": "--second-read-is-sense-strand", "first": "--first-read-is-sense-strand",
                "unstranded": "--unstranded"}
#: Below this agreement of reads with the annotated gene strand, the strand option is suspect.
AGREEMENT_WARN = 0.60
MIN_INFORMATIVE_READS = 100
SHIFT_PLUS, SHIFT_MINUS = 4, -5  # ATAC-seq Tn5 shift on '+' and '-' reads


def get_parser():
    """The command-line parser (Helixer 0.3.6 option names)."""
    parser = cli.new_parser("add_ngs_coverage.py", __doc__)
    io = parser.add_argument_group("Input and output")
    io.add_argument("-s", "--species", required=True,
                    help="species (as in data/species) whose rows get the coverage; its rows "
                         "must be contiguous, other species' rows stay -1")
    io.add_argument("-b", "--bam", required=True, nargs="+",
                    help="BAM file(s), one coverage column each, in this order; reference names "
                         "must be the file's sequence IDs. Unindexed or unsorted BAMs are "
                         "indexed/sorted into a temporary directory")
    io.add_argument("-d", "--h5-data", required=True,
                    help="HDF5 data file (fasta2h5.py or geenuff2h5.py output), changed in place "
                         "(atomically)")
    io.add_argument("--dataset-prefix", default="cage",
                    help="prefix of the datasets in evaluation/; HybridModel --input-coverage "
                         "reads 'rnaseq'")
    strand = parser.add_argument_group("Library strandedness (exactly one)")
    ex = strand.add_mutually_exclusive_group(required=True)
    ex.add_argument("--second-read-is-sense-strand", action="store_true",
                    help="dUTP / fr-firststrand / RF libraries: read 1 (and single-end reads) "
                         "are antisense to the transcript")
    ex.add_argument("--first-read-is-sense-strand", action="store_true",
                    help="fr-secondstrand / FR libraries: read 1 (and single-end reads) are "
                         "sense to the transcript")
    ex.add_argument("--unstranded", action="store_true",
                    help="unstranded libraries: coverage goes to the strand each read aligns to")
    other = parser.add_argument_group("Other options")
    other.add_argument("--shift", action="store_true",
                       help="ATAC-seq Tn5 shift: move '+' reads by +4 and '-' reads by -5 bp; "
                            "only with --unstranded; spliced coverage then stays 0")
    other.add_argument("--threads", type=int, default=8,
                       help="processes counting reads (one BAM and sequence each); <= 1: none")
    cli.add_common_args(parser)
    return parser


# --------------------------------------------------------------------------------------------
# The HDF5 side: which rows belong to which sequence


class Layout:
    """Rows of one species: per sequence its length and rows (strand, chunk index)."""

    def __init__(self, h5, species, path):
        data = h5.get("data")
        for name in ("species", "seqids", "start_ends"):
            if data is None or name not in data:
                raise cli.UserError(f"{path}: data/{name} is missing; is this a fasta2h5.py or "
                                    "geenuff2h5.py file?")
        all_species = h5layout.read_all(data["species"])
        rows = np.flatnonzero(all_species == species.encode())
        if len(rows) == 0:
            present = sorted({s.decode(errors="replace") for s in np.unique(all_species)})
            raise cli.UserError(f"{path}: species {species!r} not in data/species "
                                f"(present: {', '.join(present)})")
        if rows[-1] - rows[0] + 1 != len(rows):
            raise cli.UserError(f"{path}: the rows of species {species!r} are not contiguous "
                                f"(rows {rows[0]}..{rows[-1]} hold other species too)")
        self.n_total = len(all_species)
        self.L = data["X"].shape[1] if "X" in data else data["y"].shape[1]
        self.first, self.stop = int(rows[0]), int(rows[-1]) + 1
        seqids = h5layout.read_rows(data["seqids"], self.first, self.stop)
        se = h5layout.read_rows(data["start_ends"], self.first, self.stop)
        self.has_y = "y" in data
        self.seqids, self.lengths, self.row_slices = [], [], []
        change = np.flatnonzero(seqids[1:] != seqids[:-1]) + 1
        bounds = np.concatenate([[0], change, [len(seqids)]])
        seen = set()
        self.minus, self.chunk = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            sid = seqids[a].decode()
            if sid in seen:
                raise cli.UserError(f"{path}: the rows of sequence {sid!r} are not contiguous")
            seen.add(sid)
            s = se[a:b]
            minus = s[:, 0] > s[:, 1]
            self.seqids.append(sid)
            self.lengths.append(int(s.max()))
            self.row_slices.append(slice(self.first + a, self.first + b))
            self.minus.append(minus)
            self.chunk.append(np.where(minus, s[:, 1], s[:, 0]) // self.L)


def read_annotation(h5, layout, i, intergenic=True):
    """Per-strand genic and intergenic masks (forward coordinates) of sequence ``i`` from data/y.

    With ``intergenic=False`` only the genic mask is built (the intergenic one is None).
    """
    n, L = layout.lengths[i], layout.L
    genic = np.zeros((2, n), bool)
    inter = np.zeros((2, n), bool) if intergenic else None
    rows = layout.row_slices[i]
    for j, row in enumerate(h5layout.iter_rows(h5["data/y"], rows.start, rows.stop)):
        # One-hot [intergenic, UTR, CDS, intron] as one little-endian uint32 per base.
        row = np.ascontiguousarray(row, dtype=np.int8).view("<u4")[..., 0]
        c = layout.chunk[i][j]
        start, end = c * L, min(c * L + L, n)
        s = 1 if layout.minus[i][j] else 0
        step = -1 if s else 1
        row = row[:end - start]
        genic[s, start:end] = (row > 0xFF)[::step]
        if intergenic:
            inter[s, start:end] = (row == 1)[::step]
    return genic, inter


class MaskCounter:
    """Counts True bases of a boolean mask in [a, b) for many intervals, via its True runs."""

    def __init__(self, mask):
        change = np.flatnonzero(mask[1:] != mask[:-1]) + 1
        bounds = np.concatenate([[0], change, [len(mask)]])
        is_true = mask[bounds[:-1]] if len(mask) else np.zeros(0, bool)
        self.starts = bounds[:-1][is_true]
        self.ends = bounds[1:][is_true]
        self.cum = np.concatenate([[0], np.cumsum(self.ends - self.starts)])
        self.total = int(self.cum[-1])

    def before(self, x):
        k = np.searchsorted(self.starts, x, side="right") - 1
        inside = np.clip(x - self.starts[np.maximum(k, 0)], 0,
                         (self.ends - self.starts)[np.maximum(k, 0)]) if len(self.starts) else 0
        return np.where(k >= 0, self.cum[np.maximum(k, 0)] + inside, 0)

    def count(self, a, b):
        return self.before(b) - self.before(a)


# --------------------------------------------------------------------------------------------
# The BAM side: counting (runs in worker processes)


#: CIGAR operations (BAM codes) that consume the reference; counted as coverage; as spliced.
_CONSUMES = np.zeros(16, bool)
_CONSUMES[[_bam.MATCH, _bam.DEL, _bam.SKIP, _bam.EQUAL, _bam.DIFF]] = True
_ALIGNED = np.zeros(16, bool)
_ALIGNED[[_bam.MATCH, _bam.EQUAL, _bam.DIFF]] = True
_GAP = np.zeros(16, bool)
_GAP[[_bam.DEL, _bam.SKIP]] = True


def count_reads(task):
    """Coverage changes of the usable reads of one BAM on one sequence.

    The BAM is read in chunks and each chunk's aligned blocks are summed into coverage changes
    at once, so memory grows with the sequence's length, not with its number of reads.
    Returns a dict: 'cov' and 'spliced' = [(positions, changes) for + strand, for - strand],
    'strand_tally' = (keys, reads) with key = read midpoint * 2 + (1 if the read's transcript
    is on the minus strand when read 1 is sense, else 0), and the counters.
    """
    bam_path, tid, span, mode, shift = task
    parts = {"cov": ([], []), "spliced": ([], []), "strand_tally": []}
    counts = dict.fromkeys(("used", "unmapped", "secondary", "qc_fail", "spliced_blocks"), 0)
    for chunk in _bam.alignments(bam_path, tid, span) if span else ():
        _count_chunk(chunk, mode, shift, parts, counts)
    return {"cov": [_merged(p) for p in parts["cov"]],
            "spliced": [_merged(p) for p in parts["spliced"]],
            "strand_tally": _merged(parts["strand_tally"]), "counts": counts}


def _count_chunk(chunk, mode, shift, parts, counts):
    """Add one chunk of records to ``parts`` (lists of summed changes) and ``counts``."""
    flag, pos, read, op, length = chunk
    unmapped = (flag & 0x4) != 0
    secondary = ~unmapped & ((flag & 0x100) != 0)
    qcfail = ~unmapped & ~secondary & ((flag & 0x200) != 0)
    used = ~(unmapped | secondary | qcfail)
    rev = (flag & 0x10) != 0
    fs = rev != ((flag & 0x81) == 0x81)  # mate 2 lies on the transcript's other strand
    minus = fs if mode == "first" else (~fs if mode == "second" else rev)
    if shift:
        pos = pos + np.where(rev, SHIFT_MINUS, SHIFT_PLUS)

    keep = used[read]
    read, op, length = read[keep], op[keep], length[keep]
    ref_len = np.where(_CONSUMES[op], length, 0)
    before = np.cumsum(ref_len) - ref_len            # reference bases of earlier ops (chunk)
    per_read = np.bincount(read, weights=ref_len, minlength=len(flag)).astype(np.int64)
    read_base = np.cumsum(per_read) - per_read       # ... of the ops of earlier reads
    start = pos[read] + before - read_base[read]
    end = start + ref_len

    for key, sel in (("cov", _ALIGNED[op]), ("spliced", _GAP[op] & (not shift))):
        m = minus[read[sel]]
        s, e = start[sel], end[sel]
        for strand, on_strand in enumerate((~m, m)):
            n = int(on_strand.sum())
            parts[key][strand].append(_summed(
                np.concatenate([s[on_strand], e[on_strand]]),
                np.concatenate([np.ones(n, np.int64), np.full(n, -1, np.int64)])))
    mid = (pos + pos + per_read) >> 1
    keys = mid[used] * 2 + fs[used]
    parts["strand_tally"].append(_summed(keys, np.ones(len(keys), np.int64)))
    for name, n in (("used", used.sum()), ("unmapped", unmapped.sum()),
                    ("secondary", secondary.sum()), ("qc_fail", qcfail.sum()),
                    ("spliced_blocks", (op == _bam.SKIP).sum())):
        counts[name] += int(n)


def _summed(positions, changes):
    """Changes at equal positions summed: (sorted positions, sums), zero sums dropped."""
    if not len(positions):
        return positions, changes
    order = np.argsort(positions, kind="stable")  # timsort: fast on runs already in order
    positions, changes = positions[order], changes[order]
    first = np.flatnonzero(np.concatenate([[True], positions[1:] != positions[:-1]]))
    sums = np.add.reduceat(changes, first)
    nonzero = sums != 0
    return positions[first][nonzero], sums[nonzero]


def _merged(parts):
    """One (positions, sums) from the chunks' summed changes."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(parts) == 1:
        return parts[0]
    return _summed(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def coverage_runs(positions, changes, seq_len, L):
    """Coverage from its changes as runs (values, lengths, chunk index) cut at multiples of ``L``."""
    positions = np.clip(positions, 0, seq_len)
    cuts = np.append(np.arange(0, seq_len, L, dtype=np.int64), seq_len)
    pos = np.concatenate([positions, cuts])
    delta = np.concatenate([changes, np.zeros(len(cuts), np.int64)])
    order = np.argsort(pos, kind="stable")
    pos, value = pos[order], np.cumsum(delta[order])
    last = np.flatnonzero(np.append(pos[1:] != pos[:-1], True))
    pos, value = pos[last], value[last]
    # pos ends with seq_len; runs are [pos[k], pos[k+1]) with value[k]
    return value[:-1], np.diff(pos), pos[:-1] // L


def rows_as_runs(runs, layout, i):
    """Runs of every file row of sequence ``i`` (in file order) incl. the -1 padding run."""
    L, n = layout.L, layout.lengths[i]
    minus, chunk = layout.minus[i], layout.chunk[i]
    values = np.concatenate([runs[0][0], runs[1][0]])
    lengths = np.concatenate([runs[0][1], runs[1][1]])
    run_chunk = [runs[0][2], runs[1][2]]
    offset = np.array([0, len(runs[0][0])])
    n_chunks = -(-n // L)
    a = np.empty(len(minus), np.int64)
    b = np.empty(len(minus), np.int64)
    for s in (0, 1):
        first = np.searchsorted(run_chunk[s], np.arange(n_chunks + 1))
        sel = minus == bool(s)
        a[sel] = first[chunk[sel]] + offset[s]
        b[sel] = first[chunk[sel] + 1] + offset[s]
    count = b - a
    row = np.repeat(np.arange(len(minus)), count)
    j = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
    idx = np.where(minus[row], b[row] - 1 - j, a[row] + j)
    chunk_len = np.minimum(L, n - chunk * L)
    pad = np.flatnonzero(chunk_len < L)
    all_rows = np.concatenate([row, pad])
    order = np.argsort(all_rows, kind="stable")
    return (np.concatenate([values[idx], np.full(len(pad), -1, np.int64)])[order],
            np.concatenate([lengths[idx], L - chunk_len[pad]])[order],
            all_rows[order])


# --------------------------------------------------------------------------------------------
# Preparing BAMs


def prepare_bam(path, layout, tmpdir):
    """Check a BAM against the file's sequences; return the BAM to read (itself or a sorted
    temporary copy) and, per sequence of the file, its (reference id, index span) there."""
    if not os.path.exists(path):
        raise cli.UserError(f"BAM file {path!r} does not exist")
    base = os.path.join(tmpdir, f"{len(os.listdir(tmpdir))}_{os.path.basename(path)}.bam")
    readable, index = path, None
    try:
        text, refs = _bam.read_header(path)
    except _bam.NotBamError:  # SAM or CRAM: pysam converts it or says what is wrong
        readable, index = _convert(path, base)
        text, refs = _bam.read_header(readable)
    except OSError as e:
        raise cli.UserError(f"{path}: cannot be read ({e})") from None
    check_references(path, dict(refs), layout)
    if index is None:
        index = _bam.find_index(path)
        if index is None:
            readable, index = _index(path, base, text)
        elif os.path.getmtime(index) < os.path.getmtime(path):
            log.warning("%s: its index %s is older than the BAM file; if the BAM changed since, "
                        "re-index it with samtools index", path, index)
    spans = _bam.reference_spans(index, len(refs))
    tid = {name: k for k, (name, _) in enumerate(refs)}
    return readable, {s: (tid[s], spans[tid[s]]) for s in layout.seqids}


def check_references(path, refs, layout):
    """Every sequence of the file must be a reference of the BAM, with the same length."""
    missing = [s for s in layout.seqids if s not in refs]
    wrong = [f"{s} ({refs[s]} bp in the BAM, {n} bp in the HDF5 file)"
             for s, n in zip(layout.seqids, layout.lengths) if s in refs and refs[s] != n]
    if missing:
        extra = sorted(set(refs) - set(layout.seqids))
        raise cli.UserError(
            f"{path}: {len(missing)} of {len(layout.seqids)} sequence IDs of the HDF5 file are "
            f"not reference names of the BAM: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; BAM references not in the file: "
            f"{', '.join(extra[:5]) or 'none'}{' ...' if len(extra) > 5 else ''}. Align the "
            "reads to the same assembly (same FASTA headers, text before the first space)")
    if wrong:
        raise cli.UserError(f"{path}: sequence lengths differ (another assembly?): "
                            f"{'; '.join(wrong[:5])}")
    others = len(set(refs) - set(layout.seqids))
    if others:
        log.info("%s: %d BAM references are not sequences of this species in the file; their "
                 "reads are ignored", path, others)


def _index(path, base, header_text):
    """Index a BAM without an index into ``base``.bai, or sort it into ``base`` first if it is
    not sorted by coordinate. Returns the BAM to read and its index."""
    import pysam  # only for these rare cases: its import costs ~20 ms at every start

    try:
        pysam.index(path, base + ".bai")
        log.warning("%s has no index; indexed it into a temporary directory. To save this step "
                    "next time run: samtools index %s", path, path)
        return path, base + ".bai"
    except pysam.utils.SamtoolsError:
        pass
    hd = next((line for line in header_text.splitlines() if line.startswith("@HD")), "")
    sort_order = next((f[3:] for f in hd.split("\t") if f.startswith("SO:")), "unknown")
    log.warning("%s is not sorted by coordinate (header SO:%s); sorting it into a temporary "
                "directory. To save this step next time run: samtools sort -o sorted.bam %s "
                "&& samtools index sorted.bam", path, sort_order, path)
    return _sort(path, base)


def _convert(path, base):
    """A SAM or CRAM file (anything pysam reads) as a sorted, indexed temporary BAM ``base``."""
    import pysam

    try:
        pysam.AlignmentFile(path, "rb", check_sq=False).close()
    except (ValueError, OSError) as e:
        with open(path, "rb") as fh:
            head = fh.read(4)
        hint = ""
        if head.startswith(b"CRAM"):
            hint = f"; it is CRAM: convert it with samtools view -b -T genome.fa -o x.bam {path}"
        elif head[:1] == b"@":
            hint = f"; it looks like SAM text: convert it with samtools view -b -o x.bam {path}"
        raise cli.UserError(f"{path}: not a readable BAM file ({e}){hint}") from None
    log.warning("%s is not BAM (SAM or CRAM); converting it into a sorted temporary BAM. To save "
                "this step next time run: samtools sort -o sorted.bam %s && samtools index "
                "sorted.bam", path, path)
    return _sort(path, base)


def _sort(path, base):
    """Sort ``path`` into the BAM ``base`` and index it; return both paths."""
    import pysam

    try:
        pysam.sort("-o", base, path)
        pysam.index(base, base + ".bai")
    except pysam.utils.SamtoolsError as e:
        raise cli.UserError(f"{path}: could not sort/index it: {str(e).strip()[:300]}") from None
    return base, base + ".bai"


# --------------------------------------------------------------------------------------------
# Writing


def _dataset(group, name, layout, n_new):
    """Create (or grow by ``n_new`` columns) one coverage dataset; return it and its first column."""
    L = layout.L
    if name in group:
        dset = group[name]
        return dset, dset.shape[2]
    dset = group.create_dataset(name, shape=(layout.n_total, L, n_new), maxshape=(None, L, None),
                                chunks=(1, L, 1), dtype=np.int64, fillvalue=-1,
                                compression="lzf", shuffle=True)
    return dset, 0


def check_existing(h5, prefix, layout, path):
    """An existing coverage dataset must have this file's rows and L and Helixer's storage."""
    ev = h5.get("evaluation")
    if ev is None:
        return
    for name in (f"{prefix}_coverage", f"{prefix}_spliced_coverage"):
        if name in ev:
            d = ev[name]
            if (d.ndim != 3 or d.shape[:2] != (layout.n_total, layout.L)
                    or d.maxshape[2] is not None or d.dtype != np.int64):
                raise cli.UserError(f"{path}: evaluation/{name} exists with shape {d.shape}, "
                                    f"maxshape {d.maxshape}, dtype {d.dtype}; cannot append "
                                    f"columns for {layout.n_total} rows of length {layout.L}")
    names = [f"{prefix}_coverage", f"{prefix}_spliced_coverage"]
    present = [n in ev for n in names]
    if any(present) and not all(present):
        raise cli.UserError(f"{path}: only one of evaluation/{names[0]} and {names[1]} exists")
    if all(present):
        columns = {ev[n].shape[2] for n in names}
        meta = ev.get(f"{prefix}_meta/bam_files")
        listed = None if meta is None else meta.shape[0]
        if len(columns) > 1 or listed not in columns:
            raise cli.UserError(f"{path}: evaluation/{names[0]} and {names[1]} have "
                                f"{'/'.join(map(str, sorted(columns)))} columns but "
                                f"evaluation/{prefix}_meta/bam_files lists {listed or 0} BAMs; "
                                "cannot append consistently")


def _fast_path(dset):
    """True if chunks can be written pre-filtered: exactly (1, L, 1) with shuffle then lzf."""
    plist = dset.id.get_create_plist()
    filters = [plist.get_filter(k)[0] for k in range(plist.get_nfilters())]
    return dset.chunks == (1, dset.shape[1], 1) and filters == [h5py.h5z.FILTER_SHUFFLE, 32000]


def write_column(dset, column, row_slice, runs, fast):
    """Write one sequence's rows of one column."""
    values, lengths, rows = runs
    n_rows = row_slice.stop - row_slice.start
    L = dset.shape[1]
    if fast:
        write, size = dset.id.write_direct_chunk, L * 8
        for k, chunk in enumerate(row_chunks(values, lengths, rows, n_rows), row_slice.start):
            if len(chunk) < size:
                write((k, 0, column), chunk)
            else:  # not compressible: store shuffled only (lzf skipped = filter mask bit 1)
                row = rows == k - row_slice.start
                raw = np.repeat(values[row], lengths[row])
                shuffled = raw.view(np.uint8).reshape(L, 8).T.tobytes()
                write((k, 0, column), shuffled, filter_mask=2)
    else:
        dset[row_slice, :, column] = np.repeat(values, lengths).reshape(n_rows, L)


class BamSummary:
    """Per-BAM counters for the log and the strandedness check."""

    def __init__(self, path):
        self.path = path
        self.counts = {"used": 0, "unmapped": 0, "secondary": 0, "qc_fail": 0, "spliced_blocks": 0}
        self.informative = self.agree_first = 0
        self.cov_genic = self.cov_inter = 0
        self.n_genic = self.n_inter = 0
        self.annotated = False

    def add(self, result, annotation, cov_runs):
        for k, v in result["counts"].items():
            self.counts[k] += v
        if annotation is None:
            return
        self.annotated = True
        genic, inter, count_genic, count_inter = annotation
        keys, n_reads = result["strand_tally"]
        mid = np.clip(keys >> 1, 0, genic.shape[1] - 1)
        g_plus, g_minus = genic[0, mid], genic[1, mid]
        informative = g_plus != g_minus
        self.informative += int(n_reads[informative].sum())
        self.agree_first += int(n_reads[informative & ((keys & 1) == g_minus)].sum())
        if count_genic is None:  # mean coverages not wanted (not logged)
            return
        for s in (0, 1):
            values, lengths, pos = cov_runs[s]
            for counter, attr in ((count_genic, "cov_genic"), (count_inter, "cov_inter")):
                n = counter[s].count(pos, pos + lengths)
                setattr(self, attr, getattr(self, attr) + int((values * n).sum()))
        self.n_genic += count_genic[0].total + count_genic[1].total
        self.n_inter += count_inter[0].total + count_inter[1].total

    def report(self, mode):
        c = self.counts
        skipped = c["unmapped"] + c["secondary"] + c["qc_fail"]
        log.info("%s: %d reads used, %d skipped (%d unmapped, %d secondary, %d QC-fail), "
                 "%d splice junctions (N) counted", self.path, c["used"], skipped, c["unmapped"],
                 c["secondary"], c["qc_fail"], c["spliced_blocks"])
        if self.n_genic or self.n_inter:
            log.info("%s: mean coverage %.3f on genic bases, %.3f on intergenic bases (per strand)",
                     self.path, self.cov_genic / max(self.n_genic, 1),
                     self.cov_inter / max(self.n_inter, 1))
        if not self.annotated:
            log.info("%s: strandedness check skipped: the file has no annotation (data/y)",
                     self.path)
            return None
        if self.informative < MIN_INFORMATIVE_READS:
            log.info("%s: strandedness check skipped: only %d reads overlap a gene annotated on "
                     "just one strand", self.path, self.informative)
            return None
        first = self.agree_first / self.informative
        agree = {"first": first, "second": 1 - first}
        if mode == "unstranded":
            best = max(agree, key=agree.get)
            log.info("%s: strandedness check: %.1f%% of %d reads agree with the annotated gene "
                     "strand under %s", self.path, 100 * agree[best], self.informative,
                     FLAG_OF_MODE[best])
            if agree[best] >= 0.9:
                log.warning("%s: the library looks stranded (%.1f%% agreement with %s), but "
                            "--unstranded was given", self.path, 100 * agree[best],
                            FLAG_OF_MODE[best])
            return agree[best]
        log.info("%s: strandedness check: %.1f%% of %d reads agree with the annotated gene strand "
                 "under %s", self.path, 100 * agree[mode], self.informative, FLAG_OF_MODE[mode])
        if agree[mode] < AGREEMENT_WARN:
            other = "first" if mode == "second" else "second"
            log.warning("!!! %s: only %.1f%% of %d reads agree with the annotated gene strand "
                        "under %s (%.1f%% would under %s; ~50%% means unstranded). The strand "
                        "option probably contradicts the library: coverage will be on the wrong "
                        "strand !!!", self.path, 100 * agree[mode], self.informative,
                        FLAG_OF_MODE[mode], 100 * agree[other], FLAG_OF_MODE[other])
        return agree[mode]


def add_coverage(args, mode):
    path = args.h5_data
    src = h5layout.open_h5(path)
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)
        layout = Layout(src, args.species, path)
        check_existing(src, args.dataset_prefix, layout, path)
        # sorted/indexed BAM copies, if any: beside the file (not silently in /tmp)
        tmpdir = stack.enter_context(cli.temporary_dir(beside=os.path.realpath(path)))
        bams = [prepare_bam(b, layout, tmpdir) for b in args.bam]
        if len(set(args.bam)) < len(args.bam):
            log.warning("the same BAM is given more than once; each gets its own column")
        tasks = [(readable, *spans[sid], mode, args.shift)
                 for sid in layout.seqids for readable, spans in bams]
        n_proc = min(cli.thread_budget(args.threads), len(tasks)) if args.threads > 1 else 1
        if n_proc > 1:
            pool = stack.enter_context(_worker_pool(n_proc))
            results = _bounded_imap(pool, count_reads, tasks, max(2 * n_proc, len(bams)))
        else:
            results = map(count_reads, tasks)
        summaries = [BamSummary(b) for b in args.bam]
        progress = cli.Progress("add_ngs_coverage", sum(layout.lengths), "bp")
        check_free_space(path)
        tmp = stack.enter_context(cli.atomic_update(os.path.realpath(path)))
        with h5py.File(tmp, "r+") as h5:
            ev = h5.require_group("evaluation")
            cov, col0 = _dataset(ev, f"{args.dataset_prefix}_coverage", layout, len(bams))
            spl, _ = _dataset(ev, f"{args.dataset_prefix}_spliced_coverage", layout, len(bams))
            if col0:
                cov.resize(col0 + len(bams), axis=2)
                spl.resize(col0 + len(bams), axis=2)
            fast = _fast_path(cov) and _fast_path(spl)
            # The genic/intergenic mean coverages are only logged at INFO: skip them otherwise.
            means = log.isEnabledFor(logging.INFO)
            for i, sid in enumerate(layout.seqids):
                n = layout.lengths[i]
                annotation = None
                if layout.has_y:
                    genic, inter = read_annotation(src, layout, i, intergenic=means)
                    annotation = (genic, inter, [MaskCounter(genic[s]) for s in (0, 1)]
                                  if means else None,
                                  [MaskCounter(inter[s]) for s in (0, 1)] if means else None)
                for j in range(len(bams)):
                    result = next(results)
                    for key, dset in (("cov", cov), ("spliced", spl)):
                        runs = [coverage_runs(*result[key][s], n, layout.L) for s in (0, 1)]
                        if key == "cov":
                            starts = [(r[0], r[1], np.concatenate([[0], np.cumsum(r[1])[:-1]]))
                                      for r in runs] if means else None
                            summaries[j].add(result, annotation, starts)
                        write_column(dset, col0 + j, layout.row_slices[i],
                                     rows_as_runs(runs, layout, i), fast)
                progress.update(n)
            meta = h5.require_group(f"evaluation/{args.dataset_prefix}_meta")
            names = np.array([b.encode() for b in args.bam], dtype="S512")
            if "bam_files" in meta:
                d = meta["bam_files"]
                d.resize(col0 + len(names), axis=0)
                d[col0:] = names
            else:
                meta.create_dataset("bam_files", data=names, maxshape=(None,))
        with open(tmp, "rb+") as fh:  # on disk before the rename (power loss, not just kill)
            os.fsync(fh.fileno())
        agreements = [s.report(mode) for s in summaries]
    return agreements


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    mode = next(m for k, m in MODES.items() if getattr(args, k))
    if args.shift and mode != "unstranded":
        raise cli.UserError("--shift is only allowed with --unstranded", code=2)
    too_long = [b for b in args.bam if len(b.encode()) > 512]
    if too_long:
        raise cli.UserError(f"BAM path longer than 512 bytes (evaluation/*_meta/bam_files is "
                            f"S512): {too_long[0]!r}", code=2)
    add_coverage(args, mode)
    log.info("added %d coverage column(s) to %s", len(args.bam), args.h5_data)
    return 0


def _bounded_imap(pool, func, tasks, window):
    """Like ``pool.imap`` (results in task order) with at most ``window`` tasks in flight, so
    finished results never pile up faster than they are written. The first ``window`` tasks
    start at once (while the caller prepares), not at the first ``next()``."""
    tasks = iter(tasks)
    pending = collections.deque(pool.apply_async(func, (t,))
                                for t in itertools.islice(tasks, window))

    def results():
        while pending:
            result = pending.popleft().get()
            for t in itertools.islice(tasks, 1):
                pending.append(pool.apply_async(func, (t,)))
            yield result

    return results()


def check_free_space(path):
    """The update works on a copy beside the file: it needs the file's size again, and more."""
    size = os.path.getsize(path)
    free = shutil.disk_usage(os.path.dirname(os.path.realpath(path))).free
    if free < 1.1 * size + (64 << 20):
        raise cli.UserError(f"{path}: not enough free space beside the file for the temporary copy "
                            f"the atomic update needs ({size / 2**20:.0f} MiB + the coverage; "
                            f"{free / 2**20:.0f} MiB free)")


@contextlib.contextmanager
def _worker_pool(n_proc):
    """A pool of ``n_proc`` forked workers. Stopped by SIGTERM/SIGINT, the workers are killed,
    not terminated: ``Pool.terminate()`` waits forever for a worker that died (a SIGTERM to the
    whole job) while holding the task queue's lock."""
    import multiprocessing  # only here: its import costs ~6 ms at every start

    pool = multiprocessing.get_context("fork").Pool(n_proc, initializer=_worker_init,
                                                     initargs=(os.getpid(),))
    interrupted = False
    try:
        yield pool
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if interrupted:
            for child in multiprocessing.active_children():
                child.kill()
        else:
            pool.terminate()


def _worker_init(parent):
    """Workers leave Ctrl-C to the main process, which stops the pool and cleans up; they end
    with it, even when it is killed (SIGKILL)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the main process died before that
        os._exit(1)


def main_cli():
    try:
        cli.run(main)
    except SystemExit as e:
        if not isinstance(e.code, int):
            raise
        code = e.code
    # By now every file is written, closed and renamed, the pool and the temporary directory are
    # gone. Skip the interpreter's teardown of numpy and h5py (~25 ms CPU, about a fifth of
    # what merely reading the BAMs costs): flush what is buffered and exit with the same code.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be said
            code = code or 1
    os._exit(code)

