"""Generated genome/prediction file pairs for helixer_post_bin's differential tests and benchmark.

A case is a random genome with designed genes on both strands (UTRs with and without introns,
GT-AG / GC-AG / AT-AC introns, genes cut at the sequence end, N runs, IUPAC codes, sequences shorter
than the window) and predictions made from the designed labels, blended with Dirichlet noise and
cut into padded rows exactly like Helixer's files.
"""
import pathlib

import h5py
import numpy as np

from handmade_h5 import start_ends
from helixtune.sequence import encode

CODONS = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT"]
SENSE = [c for c in CODONS if c not in ("TAA", "TAG", "TGA")]
STOPS = ["TAA", "TAG", "TGA"]
INTRONS = {"gtag": ("GT", "AG"), "gcag": ("GC", "AG"), "atac": ("ATATCCT", "AC")}
COMPLEMENT = bytes.maketrans(b"ACGTNRYKMSWBDHV", b"TGCANYRMKSWVHDB")
IG, UTR, CDS, INTRON = range(4)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def revcomp(seq):
    return seq.translate(COMPLEMENT)[::-1]


def _rand_seq(rng, n):
    return bytes(rng.choice(list(b"ACGT"), size=n).astype(np.uint8))


def _intron(rng, kind):
    donor, acceptor = INTRONS[kind]
    body = rng.integers(60, 400) if kind != "atac" else rng.integers(35, 300)
    inner = _rand_seq(rng, body - len(donor) - len(acceptor))
    return donor.encode() + inner + acceptor.encode()


def design_gene(rng):
    """A gene 5'->3': (sequence bytes, class labels, phase column per base)."""
    seq, cls, phase = [], [], []

    def add(s, c, ph=0):
        seq.append(s)
        cls.extend([c] * len(s))
        phase.extend([ph] * len(s) if np.isscalar(ph) else ph)

    def utr(n_min, n_max):
        n = int(rng.integers(n_min, n_max))
        if n > 60 and rng.random() < 0.3:  # UTR intron
            cut = int(rng.integers(1, n))
            add(_rand_seq(rng, cut), UTR)
            add(_intron(rng, rng.choice(list(INTRONS))), INTRON)
            add(_rand_seq(rng, n - cut), UTR)
        else:
            add(_rand_seq(rng, n), UTR)

    utr(1, 250)
    n_codons = int(rng.integers(30, 300))
    coding = "ATG" + "".join(rng.choice(SENSE, size=n_codons)) + rng.choice(STOPS)
    coding = coding.encode()
    n_exons = int(rng.integers(1, 5))
    cuts = sorted(rng.choice(np.arange(4, len(coding) - 4), size=n_exons - 1, replace=False))
    bounds = [0] + list(cuts) + [len(coding)]
    for i in range(n_exons):
        piece = coding[bounds[i]:bounds[i + 1]]
        codon_pos = np.arange(bounds[i], bounds[i + 1]) % 3
        add(piece, CDS, list(1 + (3 - codon_pos) % 3))
        if i < n_exons - 1:
            add(_intron(rng, rng.choice(list(INTRONS), p=[0.7, 0.15, 0.15])), INTRON)
    utr(1, 250)
    return b"".join(seq), np.array(cls, np.int8), np.array(phase, np.int8)


def design_sequence(rng, length, n_genes, short=False):
    """Genomic sequence plus per-strand labels (plus in genomic order, minus in minus order)."""
    genome = bytearray(_rand_seq(rng, length))
    labels = {s: np.zeros(length, np.int8) for s in "+-"}   # class per strand-local position
    phases = {s: np.zeros(length, np.int8) for s in "+-"}
    pos = int(rng.integers(0, 300))
    for _ in range(0 if short else n_genes):
        gseq, gcls, gph = design_gene(rng)
        if pos >= length:
            break
        m = min(len(gseq), length - pos)  # the last gene may be cut at the sequence end
        strand = "+" if rng.random() < 0.5 else "-"
        if strand == "+":
            genome[pos:pos + m] = gseq[:m]
            labels["+"][pos:pos + m] = gcls[:m]
            phases["+"][pos:pos + m] = gph[:m]
        else:  # the gene reads 5'->3' on the minus strand from genomic pos + m - 1 downwards
            if m < len(gseq):  # cut at the genomic end = the minus strand's 5' end: keep 3' part
                gseq, gcls, gph = gseq[-m:], gcls[-m:], gph[-m:]
            genome[pos:pos + m] = revcomp(gseq[:m])
            q = length - (pos + m)  # minus-stream start
            labels["-"][q:q + m] = gcls[:m]
            phases["-"][q:q + m] = gph[:m]
        pos += m + int(rng.integers(20, 1500))
    # N runs and IUPAC codes
    for _ in range(int(rng.integers(0, 3))):
        a = int(rng.integers(0, length))
        n = int(rng.integers(1, 80 if rng.random() < 0.7 else 600))
        genome[a:a + n] = b"N" * len(genome[a:a + n])
    for _ in range(int(rng.integers(0, 4))):
        a = int(rng.integers(0, length))
        genome[a] = ord(rng.choice(list("RYKMSWBDHV")))
    return bytes(genome), labels, phases


def predictions_from_labels(rng, cls, phase, noise, dtype=np.float16):
    """Softmax-like predictions: one-hot labels blended with Dirichlet noise (fraction ``noise``)."""
    n = len(cls)
    onehot = np.eye(4, dtype=np.float32)[cls]
    ph = np.eye(4, dtype=np.float32)[phase]
    spread = 0.1 if noise > 0 else 0.0  # noise 0: exact one-hot predictions (many cost ties)
    a = np.clip(noise + rng.normal(0, spread, size=(n, 1)), 0, 1).astype(np.float32)
    p = (1 - a) * onehot + a * rng.dirichlet(np.ones(4) * 0.7, size=n).astype(np.float32)
    b = np.clip(noise + rng.normal(0, spread, size=(n, 1)), 0, 1).astype(np.float32)
    q = (1 - b) * ph + b * rng.dirichlet(np.ones(4) * 0.7, size=n).astype(np.float32)
    return p.astype(dtype), q.astype(dtype)


def write_pair(genome_path, preds_path, records, species, L, md5=None, compression="gzip",
               minus_padding="end", pad_value=0.0):
    """Write a genome h5 and a predictions h5 for ``records`` = [(seqid, seq, preds, phases)],
    where preds/phases map strand -> strand-local (n, 4) arrays."""
    rows = []
    for seqid, seq, p, q in records:
        n = len(seq)
        fwd = encode(seq)
        rev = fwd[::-1, ::-1]
        for s, e in start_ends(n, L):
            if s < e:
                rows.append((seqid, (s, e), fwd[s:e], p["+"][s:e], q["+"][s:e], False))
            else:
                rows.append((seqid, (s, e), rev[n - s:n - e], p["-"][n - s:n - e],
                             q["-"][n - s:n - e], True))
    N = len(rows)
    with h5py.File(genome_path, "w") as g, h5py.File(preds_path, "w") as f:
        data = g.create_group("data")
        # Helixer's storage, spelled out: one row per chunk, resizable rows, shuffle if ndim > 1
        ds = {name: data.create_dataset(name, (N,) + tail, dtype, maxshape=(None,) + tail,
                                        chunks=(1,) + tail, compression=compression,
                                        shuffle=bool(tail))
              for name, dtype, tail in (("X", np.float16, (L, 4)), ("seqids", "S50", ()),
                                        ("species", "S25", ()), ("start_ends", np.int64, (2,)))}
        X = ds["X"]
        P = f.create_dataset("predictions", (N, L, 4), np.float16, chunks=(1, L, 4),
                             compression=compression, shuffle=True)
        Q = f.create_dataset("predictions_phase", (N, L, 4), np.float16, chunks=(1, L, 4),
                             compression=compression, shuffle=True)
        for i, (seqid, se, x, p, q, minus) in enumerate(rows):
            n = len(x)
            xr = np.zeros((L, 4), np.float16)
            xr[:n] = x
            X[i] = xr
            ds["seqids"][i] = seqid.encode()
            ds["species"][i] = species.encode()
            ds["start_ends"][i] = se
            pr = np.full((L, 4), pad_value, np.float16)
            qr = np.full((L, 4), pad_value, np.float16)
            if minus and minus_padding == "start":
                pr[L - n:], qr[L - n:] = p, q
            else:
                pr[:n], qr[:n] = p, q
            P[i], Q[i] = pr, qr
        if md5 is not None:
            f.attrs["model_md5sum"] = md5


def make_case(seed, genome_path, preds_path, **write_kw):
    """Generate case number ``seed``; returns the parameters to run it with."""
    rng = np.random.default_rng(seed)
    L = int(rng.choice([1000, 2000, 3000, 5000, 7000]))
    window = int(rng.choice([100, 100, 100, 50, 150]))
    records = []
    for k in range(int(rng.integers(1, 4))):
        short = rng.random() < 0.15
        length = int(rng.integers(20, window)) if short else int(rng.integers(3000, 16000))
        seq, labels, phases = design_sequence(rng, length, n_genes=int(rng.integers(2, 9)),
                                              short=short)
        noise = float(rng.choice([0.0, 0.05, 0.3, 0.5, 0.7]))
        p, q = {}, {}
        for s in "+-":
            p[s], q[s] = predictions_from_labels(rng, labels[s], phases[s], noise)
        records.append((f"chr{k + 1}", seq, p, q))
    md5 = None if rng.random() < 0.3 else f"{seed:032x}  /models/case{seed}.h5"
    write_pair(genome_path, preds_path, records, "testspecies", L, md5=md5, **write_kw)
    params = dict(window=window, edge=float(rng.choice([0.1, 0.1, 0.2, 0.05])),
                  peak=float(rng.choice([0.8, 0.8, 0.6, 0.9])),
                  min_length=int(rng.choice([60, 60, 100, 0, 30])))
    return params


def galaxy_test_data(directory):
    """The Galaxy wrapper's tiny inputs: one 4 kb sequence with genes on both strands (L 1000),
    and a predictions file with one row missing (the expected-failure test)."""
    directory = pathlib.Path(directory)
    rng = np.random.default_rng(2024)
    while True:
        seq, labels, phases = design_sequence(rng, 4000, n_genes=3)
        if (labels["+"] == CDS).any() and (labels["-"] == CDS).any():
            break
    p, q = {}, {}
    for s in "+-":
        p[s], q[s] = predictions_from_labels(rng, labels[s], phases[s], 0.05)
        p[s], q[s] = (np.round(a.astype(np.float32) * 32) / 32 for a in (p[s], q[s]))  # small files
    genome = directory / "helixer_post_genome.h5"
    preds = directory / "helixer_post_predictions.h5"
    write_pair(genome, preds, [("chr1", seq, p, q)], "tiny", 1000,
               md5="0123456789abcdef0123456789abcdef  tiny_model.h5")
    with h5py.File(preds) as f, h5py.File(directory / "helixer_post_predictions_short.h5", "w") as o:
        for name in ("predictions", "predictions_phase"):
            o.create_dataset(name, data=f[name][:-1], chunks=(1, 1000, 4), compression="gzip")


if __name__ == "__main__":
    import sys
    galaxy_test_data(sys.argv[1])


def softmax_predictions(onehot, rng, scale=6.0, sigma=1.0):
    """Softmax(scale * one-hot + N(0, sigma)) as float16: realistic-looking model output."""
    logits = scale * onehot.astype(np.float32) + rng.normal(0, sigma, onehot.shape)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float16)


def synthesise_predictions(genome, out, rows=None, seed=7, start_ends=None):
    """Predictions from a geenuff2h5 file's labels (data/y, data/phases) for ``rows`` (default
    all); with ``rows`` also a genome file of those rows (written to ``start_ends[0]``)."""
    rng = np.random.default_rng(seed)
    with h5py.File(genome) as g, h5py.File(out, "w") as f:
        y, ph = g["data/y"], g["data/phases"]
        rows = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
        L = y.shape[1]
        dsets = [f.create_dataset(name, (len(rows), L, 4), np.float16, chunks=(1, L, 4),
                                  compression="gzip", shuffle=True)
                 for name in ("predictions", "predictions_phase")]
        for i, r in enumerate(rows):
            for src, dst in zip((y, ph), dsets):
                dst[i] = softmax_predictions(src[int(r)], rng)
        f.attrs["model_md5sum"] = "00000000000000000000000000000000  synthetic-from-labels"
        if start_ends is not None:
            with h5py.File(start_ends, "w") as sub:
                for name in ("X", "seqids", "species", "start_ends"):
                    sub.create_dataset(f"data/{name}", data=g["data"][name][rows],
                                       compression="gzip")
