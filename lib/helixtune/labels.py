"""Helixer's labels of a GeenuFF database: every ```data/``` dataset of a training file
(``geenuff2h5.py``; also used by ``compare_annotations.py`` to label GFF3s)."""
import collections
import contextlib

import h5py
import numpy as np

from helixtune import cli, geenuffdb, h5layout
from helixtune.sequence import COMPLEMENT, encode

ROW_DATASETS = ("X", "y", "phases", "sample_weights", "transitions", "gene_lengths")
#: Phase classes along the coding bases from the biological 5' start: Helixer's one-hot index
#: 1 = phase 0, 3 = phase 2, 2 = phase 1 (GFF meaning: bases until the next codon start).
PHASE_PATTERN = np.array([1, 3, 2], dtype=np.int8)


# ---------------------------------------------------------------------------------------------
# Reading the database


class StrandModels:
    """Forward-coordinate intervals [lo, hi) of the exported transcripts of one strand."""

    def __init__(self):
        self.tx, self.cds, self.introns, self.errors = [], [], [], []
        self.coding = []  # (5'->3' coding segments [(lo, hi)], phase, plus)

    def arrays(self):
        as_arr = lambda x: np.array(x, dtype=np.int64).reshape(-1, 2)  # noqa: E731
        self.tx_a, self.cds_a = as_arr(self.tx), as_arr(self.cds)
        self.intron_a, self.error_a = as_arr(self.introns), as_arr(self.errors)
        self.tx_len = self.tx_a[:, 1] - self.tx_a[:, 0]


def _fwd(start, end, plus):
    """GeenuFF (start, end) -> forward [lo, hi). Minus: (end + 1, start + 1), as Helixer does."""
    return (start, end) if plus else (end + 1, start + 1)


def read_genome(con, path):
    """(species, [(coordinate id, seqid, length, annotated)]) in Helixer's order: descending
    length; equal lengths by their first exported transcript.

    The exported features are copied once into a temporary table indexed by sequence (SQLite
    keeps it in a temporary file), from which :func:`read_models` reads one sequence at a time:
    memory holds the largest sequence's genes, not the genome's."""
    genomes = con.execute("SELECT species FROM genome").fetchall()
    if len(genomes) != 1:
        raise cli.UserError(f"{path}: expected exactly one genome, found {len(genomes)}")
    species = genomes[0][0]
    coords = con.execute("SELECT id, seqid, length FROM coordinate ORDER BY id").fetchall()
    # Only the longest coding transcript of each gene is exported (Helixer's
    # genome_query(longest_only=True) + _filter_to_coding): non-coding genes look intergenic and
    # error masks on other isoforms are lost.
    con.execute("PRAGMA temp_store = FILE")
    con.execute(
        "CREATE TEMP TABLE exported AS SELECT f.coordinate_id AS cid, t.id AS tid, f.id AS fid, "
        'f.type, f.start, f."end", f.is_plus_strand, f.phase '
        "FROM transcript t JOIN transcript_piece tp ON tp.transcript_id = t.id "
        "JOIN association_transcript_piece_to_feature a ON a.transcript_piece_id = tp.id "
        "JOIN feature f ON f.id = a.feature_id WHERE t.longest = 1")
    con.execute("CREATE INDEX temp.exported_by_sequence ON exported (cid, tid, fid)")
    first_tx = dict(con.execute(
        "SELECT cid, MIN(tid) FROM exported WHERE tid IN "
        "(SELECT tid FROM exported WHERE type = ?) GROUP BY cid", (geenuffdb.CDS,)))
    big = 1 << 62
    coords.sort(key=lambda c: (-c[2], first_tx.get(c[0], big), c[0]))
    return species, [(cid, seqid, length, cid in first_tx) for cid, seqid, length in coords]


def read_models(con, path, cid):
    """{True: StrandModels, False: StrandModels} of the exported transcripts of sequence ``cid``
    (from the temporary table :func:`read_genome` made)."""
    by_tx = collections.defaultdict(list)
    for r in con.execute('SELECT tid, type, start, "end", is_plus_strand, phase FROM exported '
                         "WHERE cid = ? ORDER BY tid, fid", (cid,)):
        by_tx[r[0]].append(r[1:])
    models = {True: StrandModels(), False: StrandModels()}
    for tid, feats in by_tx.items():
        if not any(f[0] == geenuffdb.CDS for f in feats):
            continue
        introns = []
        cds = None
        for ftype, start, end, plus, phase in feats:
            plus = bool(plus)
            sm = models[plus]
            iv = _fwd(start, end, plus)
            if ftype == geenuffdb.TRANSCRIPT:
                sm.tx.append(iv)
            elif ftype == geenuffdb.CDS:
                sm.cds.append(iv)
                cds = (iv, phase, plus, sm)
            elif ftype == geenuffdb.INTRON:
                sm.introns.append(iv)
                introns.append(iv)
            else:
                sm.errors.append(iv)
        (lo, hi), phase, plus, sm = cds
        if phase is None:
            raise cli.UserError(f"{path}: transcript id {tid} has a CDS without phase "
                                f"(Helixer cannot number its codons)")
        segs = _subtract((lo, hi), introns)
        sm.coding.append((segs if plus else segs[::-1], phase, plus))
    for sm in models.values():
        sm.arrays()
    return models


def _subtract(interval, holes):
    """Parts of [lo, hi) outside the holes, ascending."""
    lo, hi = interval
    parts, cur = [], lo
    for a, b in sorted(holes):
        if b <= cur or a >= hi:
            continue
        if a > cur:
            parts.append((cur, a))
        cur = max(cur, b)
    if cur < hi:
        parts.append((cur, hi))
    return parts


# ---------------------------------------------------------------------------------------------
# Labels of one block [a, b) of one strand, in forward orientation


#: class of a padding position in the class arrays of y and phases (one-hot: all zero)
PAD_CLASS = 4
#: one-hot rows of 4 int8 as one uint32 each, for classes 0-3 and PAD_CLASS: a 1-D take builds
#: one-hot arrays fast
_ONEHOT32 = np.eye(5, 4, dtype=np.int8).view(np.uint32).ravel()


def onehot(classes):
    """(..., 4) int8 one-hot of an int8 class array (PAD_CLASS: all zero)."""
    return _ONEHOT32.take(classes, mode="clip").view(np.int8).reshape(classes.shape + (4,))


def _runs(intervals, a, b):
    """The union of intervals (n, 2) within [a, b) as sorted, disjoint, non-touching runs
    (run starts, run ends), relative to a."""
    lo = np.clip(intervals[:, 0], a, b) - a
    hi = np.clip(intervals[:, 1], a, b) - a
    keep = hi > lo
    order = np.argsort(lo[keep], kind="stable")
    lo, hi = lo[keep][order], hi[keep][order]
    if not len(lo):
        return lo, hi
    reach = np.maximum.accumulate(hi)
    first = np.flatnonzero(np.concatenate([[True], lo[1:] > reach[:-1]]))  # of each run
    return lo[first], reach[np.append(first[1:] - 1, len(lo) - 1)]


def _mask(runs, n):
    """Boolean array of n positions, True inside the runs."""
    starts, ends = runs
    edges = np.empty(2 * len(starts) + 2, dtype=np.int64)
    edges[0], edges[1:-1:2], edges[2:-1:2], edges[-1] = 0, starts, ends, n
    values = np.zeros(len(edges) - 1, dtype=bool)
    values[1::2] = True
    return np.repeat(values, np.diff(edges))


def label_block(sm, a, b, seq_len):
    """Classes of y and phases (see :func:`onehot`), sample_weights, transitions and
    gene_lengths of forward positions [a, b)."""
    n = b - a
    # the transition marks need one base of context on each side
    ea, eb = max(a - 1, 0), min(b + 1, seq_len)
    off = a - ea
    # Transitions (Helixer quirk): computed in *forward* genomic orientation for both strands,
    # channels [start of transcript, cds, intron, end of transcript, cds, intron]; each mark
    # covers 2 bp (last base of the old state and first of the new). On the minus strand the
    # channels therefore mean TTS/stop/acceptor for 0-2 and TSS/start/donor for 3-5.
    trans_e = np.zeros((eb - ea, 6), dtype=np.int8)
    masks = []
    for c, intervals in enumerate((sm.tx_a, sm.cds_a, sm.intron_a)):
        starts, ends = runs = _runs(intervals, ea, eb)
        for col, edge in ((c, starts[starts > 0]), (c + 3, ends[ends < eb - ea])):
            trans_e[edge - 1, col] = 1  # the state changes between edge - 1 and edge
            trans_e[edge, col] = 1
        masks.append(_mask(runs, eb - ea)[off:off + n])
    tx, cds, intron = masks
    err = _mask(_runs(sm.error_a, a, b), n)
    transitions = trans_e[off:off + n]
    # y: the GeenuFF CDS region spans its introns; intron wins over CDS (and UTR introns are
    # introns): class 0 intergenic, 1 UTR, 2 CDS, 3 intron
    y = tx * (1 + (cds | intron).view(np.int8) + intron.view(np.int8))
    sample_weights = (~err).view(np.int8)
    # gene_lengths: full transcript length (introns included) where it is covered; max wins
    gene_lengths = np.zeros(n, dtype=np.uint32)
    if len(sm.tx_a):
        sel = np.flatnonzero((sm.tx_a[:, 0] < b) & (sm.tx_a[:, 1] > a))
        for k in sel[np.argsort(sm.tx_len[sel], kind="stable")]:
            lo, hi = max(sm.tx_a[k, 0], a) - a, min(sm.tx_a[k, 1], b) - a
            gene_lengths[lo:hi] = sm.tx_len[k]
    # phases: [none, 0, 1, 2]; coding bases from the biological 5' start cycle 1, 3, 2 rotated
    # right by the CDS's 5' phase
    cls = np.zeros(n, dtype=np.int8)
    for segs, phase, plus in sm.coding:
        done = 0
        for lo, hi in segs:
            length = hi - lo
            if lo < b and hi > a:
                p = np.arange(max(lo, a), min(hi, b))
                k = done + (p - lo if plus else hi - 1 - p)
                cls[p - a] = PHASE_PATTERN[(k - phase) % 3]
            done += length
    return y, cls, sample_weights, transitions, gene_lengths


def _rows(block, L, minus, fill=0):
    """Rows (k, L, ...) of a forward block, padded with ``fill`` at the end of the row; for the
    minus strand reversed (positions and rows) with the padding kept at the end (views where no
    padding is needed; the row writer makes each row contiguous)."""
    n = len(block)
    k = -(-n // L)
    tail = n - (k - 1) * L
    shape = (k, L) + block.shape[1:]
    src = block[::-1] if minus else block
    if tail == L:
        return src.reshape(shape)
    out = np.full((k * L,) + block.shape[1:], fill, dtype=block.dtype)
    if minus:  # the short chunk (the sequence end) is the first minus row
        out[:tail] = src[:tail]
        out[L:] = src[tail:]
    else:
        out[:n] = src
    return out.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Writing


def export(db_path, out_path, L, write_by, compression, write_x):
    """Write every ``data/`` dataset of the GeenuFF database `db_path` to a new HDF5 file
    `out_path` (rows of L bp, labelled `write_by` bases at a time; data/X only with write_x)."""
    con = geenuffdb.connect_existing(db_path)
    species, coords = read_genome(con, db_path)
    h5layout.check_name_length(species, h5layout.SPECIES_BYTES, "species", db_path)
    for _, seqid, _, _ in coords:
        h5layout.check_name_length(seqid, h5layout.SEQID_BYTES, "sequence ID", db_path)
    counts = [h5layout.rows_of_sequence(length, L) for _, _, length, _ in coords]
    first_row = np.cumsum([0] + counts)
    n_total = int(first_row[-1])
    names = [n for n in h5layout.DATA_DATASETS if write_x or n != "X"]
    progress = cli.Progress("geenuff2h5", sum(c[2] for c in coords), "bp")
    # Work in blocks of about 1 Mbp (whole rows, at most --write-by): the label arrays stay in
    # the CPU cache range and memory stays small; results do not depend on the block size.
    block = max(L, min(write_by, (1 << 20) // L * L))
    with h5py.File(out_path, "w") as h5, contextlib.ExitStack() as stack:
        data = h5.create_group("data")
        ds = {name: h5layout.create_dataset(data, name, n_total, L, compression) for name in names}
        # the row datasets: chunks deflated in threads and stored directly (h5layout.RowWriter)
        # (label rows are long runs: the fast deflate is ~10x faster on them, and their chunks
        # stay tiny; X keeps libdeflate at the recorded level: its size matters)
        rw = {name: stack.enter_context(h5layout.RowWriter(ds[name], fast=name != "X"))
              for name in ROW_DATASETS if name in ds}
        for i, (cid, seqid, length, annotated) in enumerate(coords):
            models = read_models(con, db_path, cid)
            base, n_chunks = int(first_row[i]), counts[i] // 2
            rows = slice(base, base + 2 * n_chunks)
            ds["seqids"][rows] = np.full(2 * n_chunks, seqid.encode(), dtype="S50")
            ds["species"][rows] = np.full(2 * n_chunks, species.encode(), dtype="S25")
            ds["start_ends"][rows] = h5layout.start_ends(length, L)
            # is_annotated: False for every row of a sequence without exported features
            ds["is_annotated"][rows] = np.full(2 * n_chunks, annotated)
            for a in range(0, length, block):
                b = min(a + block, length)
                c0, c1 = a // L, -(-b // L)
                if write_x:
                    (seq,) = con.execute("SELECT substr(sequence, ?, ?) FROM coordinate "
                                         "WHERE id = ?", (a + 1, b - a, cid)).fetchone()
                    codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
                for plus in (True, False):
                    y, phases, sw, tr, gl = label_block(models[plus], a, b, length)
                    first = base + c0 if plus else base + 2 * n_chunks - c1
                    y_rows = _rows(y, L, not plus, PAD_CLASS)
                    sw_rows = _rows(sw, L, not plus)
                    # one-hot built per row, in the writer's threads
                    rw["y"].write_from(first, y_rows, onehot)
                    rw["phases"].write_from(first, _rows(phases, L, not plus, PAD_CLASS), onehot)
                    rw["sample_weights"].write(first, sw_rows)
                    rw["transitions"].write(first, _rows(tr, L, not plus))
                    rw["gene_lengths"].write(first, _rows(gl, L, not plus))
                    # Helixer's inverted per-row flags: err_samples is True when the row has
                    # *any* usable base; fully_intergenic_samples is True only when no base of
                    # the row (padding included) is intergenic.
                    sel = slice(first, first + len(y_rows))
                    ds["err_samples"][sel] = sw_rows.any(axis=1)
                    ds["fully_intergenic_samples"][sel] = (y_rows != 0).all(axis=1)
                    if write_x:
                        # minus rows: reverse-complemented byte codes (padding byte 0 stays 0)
                        x_codes = _rows(codes, L, False) if plus else \
                            COMPLEMENT[_rows(codes, L, True)]
                        rw["X"].write_from(first, x_codes, encode)
                progress.update(b - a)
        h5layout.write_root_attrs(h5, db_path)
    con.close()
