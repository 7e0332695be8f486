"""Helpers shared by the import2geenuff/geenuff2h5 tests: run both tools on small hand-written
GFF3 cases, rebuild per-strand forward streams from the HDF5 rows, and an independent per-base
oracle of Helixer's encodings (deliberately written with plain loops, unlike the tools)."""
import h5py
import numpy as np

from helixtune_tools import geenuff2h5, import2geenuff

COMP = str.maketrans("ACGTN", "TGCAN")
LABELS = ("y", "phases", "sample_weights", "transitions", "gene_lengths")


def revcomp(seq):
    return seq.translate(COMP)[::-1]


def write_case(tmp, seq, gff_lines, seqid="chr", name="case", extra_fasta=()):
    fasta = tmp / f"{name}.fa"
    fasta.write_text(f">{seqid} test\n{seq}\n" + "".join(f">{s}\n{q}\n" for s, q in extra_fasta))
    gff = tmp / f"{name}.gff3"
    gff.write_text("##gff-version 3\n" + "".join(
        "\t".join(str(c) for c in line) + "\n" if not isinstance(line, str) else line + "\n"
        for line in gff_lines))
    return fasta, gff


def run_both(tmp, fasta, gff, L, name="case", write_by=None, species="sp", extra=()):
    db = tmp / f"{name}.sqlite3"
    log = tmp / f"{name}.log"
    h5 = tmp / f"{name}.h5"
    assert import2geenuff.main(["--gff3", str(gff), "--fasta", str(fasta), "--db-path", str(db),
                                "--log-file", str(log), "--species", species, "--replace-db",
                                "--quiet", *extra]) == 0
    args = ["--input-db-path", str(db), "--h5-output-path", str(h5),
            "--subsequence-length", str(L), "--quiet"]
    if write_by:
        args += ["--write-by", str(write_by)]
    if h5.exists():
        h5.unlink()
    assert geenuff2h5.main(args) == 0
    return db, h5, log.read_text()


def read_all(h5path):
    with h5py.File(h5path) as h5:
        return {k: h5["data"][k][:] for k in h5["data"]}


def streams(data, seqid, seq_len):
    """{dataset: (plus forward array, minus forward array)} of one sequence; checks padding."""
    out = {}
    rows = np.flatnonzero(data["seqids"] == seqid.encode())
    for name in LABELS + ("X",):
        if name not in data:
            continue
        arr = data[name]
        plus = np.zeros((seq_len,) + arr.shape[2:], dtype=arr.dtype)
        minus = np.zeros_like(plus)
        for r in rows:
            s, e = (int(v) for v in data["start_ends"][r])
            n = abs(e - s)
            assert not arr[r][n:].any(), f"{name}: padding of row {r} must be zero"
            if s < e:
                plus[s:e] = arr[r][:n]
            else:
                minus[e:s] = arr[r][:n][::-1]
        out[name] = (plus, minus)
    return out


def oracle(seq_len, transcripts, errors):
    """Expected forward arrays of one strand written per base.

    transcripts: dicts with tx (lo, hi), cds (lo, hi) or None, introns [(lo, hi)], phase,
    plus (bool); errors [(lo, hi)]. All forward, half-open, 0-based."""
    tx = np.zeros(seq_len, bool)
    cds = np.zeros(seq_len, bool)
    intron = np.zeros(seq_len, bool)
    err = np.zeros(seq_len, bool)
    gl = np.zeros(seq_len, np.uint32)
    cls = np.zeros(seq_len, np.int8)
    for t in transcripts:
        lo, hi = t["tx"]
        for p in range(lo, hi):
            tx[p] = True
            gl[p] = max(gl[p], hi - lo)
        for a, b in t.get("introns", []):
            for p in range(a, b):
                intron[p] = True
        if t.get("cds"):
            a, b = t["cds"]
            for p in range(a, b):
                cds[p] = True
            coding = [p for p in range(a, b)
                      if not any(x <= p < y for x, y in t.get("introns", []))]
            if not t["plus"]:
                coding = coding[::-1]
            for k, p in enumerate(coding):
                cls[p] = (1, 3, 2)[(k - t.get("phase", 0)) % 3]
    for a, b in errors:
        for p in range(max(a, 0), min(b, seq_len)):
            err[p] = True
    y = np.zeros((seq_len, 4), np.int8)
    phases = np.zeros((seq_len, 4), np.int8)
    trans = np.zeros((seq_len, 6), np.int8)
    m = np.stack([tx, cds, intron], 1)
    for p in range(seq_len):
        if not tx[p]:
            y[p, 0] = 1
        elif intron[p]:
            y[p, 3] = 1
        elif cds[p]:
            y[p, 2] = 1
        else:
            y[p, 1] = 1
        phases[p, cls[p]] = 1
        if p + 1 < seq_len:
            for c in range(3):
                if not m[p, c] and m[p + 1, c]:
                    trans[p, c] = trans[p + 1, c] = 1
                if m[p, c] and not m[p + 1, c]:
                    trans[p, 3 + c] = trans[p + 1, 3 + c] = 1
    return {"y": y, "phases": phases, "sample_weights": (~err).astype(np.int8),
            "transitions": trans, "gene_lengths": gl}


def mirror_gff(gff_lines, seq_len):
    """The same annotation on the reverse complement (coordinates mirrored, strands swapped)."""
    out = []
    for line in gff_lines:
        if isinstance(line, str):
            out.append(line)
            continue
        c = list(line)
        s, e = int(c[3]), int(c[4])
        c[3], c[4] = seq_len + 1 - e, seq_len + 1 - s
        c[6] = {"+": "-", "-": "+"}.get(c[6], c[6])
        out.append(c)
    return out


def mirror_expected(exp):
    """Expected forward arrays of the minus strand for a mirrored plus-strand case."""
    out = {k: v[::-1].copy() for k, v in exp.items()}
    # forward-orientation transitions: starts become ends (Helixer's quirk, see geenuff2h5)
    out["transitions"] = out["transitions"][:, [3, 4, 5, 0, 1, 2]]
    return out
