"""Feature-level comparison of GFF3/GTF annotations: exact-coordinate precision and recall of
genes, transcripts, exons and introns, CDS structures per gene, counts, length distributions and
splice-site dinucleotides.

Only protein-coding models count (transcripts with a CDS), as only they become labels. A gene is
the span of its coding transcripts; a transcript is its exon chain; exons missing from a coding
transcript are its CDS pieces (adjacent pieces merged). Coordinates are GFF's (1-based,
inclusive).
"""
import collections

import numpy as np

from helixtune.fasta import read_sequences
from helixtune.geenuff_import import CDS_TYPES, EXON_TYPES, TRANSCRIPT_TYPES, parse_annotation

_COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")
SPLICE_CLASSES = ("GT-AG", "GC-AG", "AT-AC")
#: histogram bins: 10 per decade of length (bp), from 1 bp to 1 Gbp
LENGTH_EDGES = np.round(10 ** np.arange(0, 9.01, 0.1)).astype(np.int64)


def _merge(pieces):
    """Sorted (start, end) pieces with touching or overlapping ones merged."""
    out = []
    for s, e in sorted(pieces):
        if out and s <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


class Models:
    """The coding gene models of one annotation file.

    ``genes``: {gene id: [transcript]}, a transcript a dict with seqid, strand, exons and cds
    (sorted tuples of (start, end)) and introns."""

    def __init__(self, path):
        self.path = path
        stats = collections.Counter()
        stats["_gtf_gene_of"] = {}
        lines, _ = parse_annotation(path, stats)
        where, gene_of = {}, {}
        exons, cds = collections.defaultdict(list), collections.defaultdict(list)
        for ln in lines:
            if ln.type in TRANSCRIPT_TYPES and ln.id is not None:
                gene_of[ln.id] = ln.parents[0] if ln.parents else ln.id
                where[ln.id] = (ln.seqid, ln.strand)
        for ln in lines:
            if ln.type in EXON_TYPES or ln.type in CDS_TYPES:
                # parents that are transcripts (TAIR10 CDS lines also name their protein);
                # all parents where no transcript lines name them (GTF)
                parents = [p for p in ln.parents if p in gene_of] or ln.parents
                for parent in parents:
                    (exons if ln.type in EXON_TYPES else cds)[parent].append((ln.start, ln.end))
                    where.setdefault(parent, (ln.seqid, ln.strand))
        self.genes = collections.defaultdict(list)
        for tid in sorted(cds, key=lambda t: (where[t], min(cds[t]))):
            seqid, strand = where[tid]
            tx_exons = tuple(_merge(exons[tid] or cds[tid]))
            self.genes[gene_of.get(tid, stats["_gtf_gene_of"].get(tid, tid))].append({
                "seqid": seqid, "strand": strand, "exons": tx_exons,
                "cds": tuple(sorted(cds[tid])),
                "introns": tuple((a[1] + 1, b[0] - 1) for a, b in zip(tx_exons, tx_exons[1:]))})

    def gene_spans(self):
        """{gene id: (seqid, strand, start, end)}."""
        return {gid: (txs[0]["seqid"], txs[0]["strand"],
                      min(t["exons"][0][0] for t in txs), max(t["exons"][-1][1] for t in txs))
                for gid, txs in self.genes.items()}

    def keys(self):
        """{level: set of exact-coordinate keys}: gene, transcript, exon, intron."""
        out = {"gene": set(self.gene_spans().values()), "transcript": set(), "exon": set(),
               "intron": set()}
        for txs in self.genes.values():
            for t in txs:
                place = (t["seqid"], t["strand"])
                out["transcript"].add(place + (t["exons"],))
                out["exon"].update(place + e for e in t["exons"])
                out["intron"].update(place + i for i in t["introns"])
        return out

    def cds_chains(self):
        """{gene id: set of (seqid, strand, CDS chain)} of its transcripts."""
        return {gid: {(t["seqid"], t["strand"], t["cds"]) for t in txs}
                for gid, txs in self.genes.items()}

    def lengths(self):
        """{gene, exon, intron: int64 array of lengths} (exons and introns counted once)."""
        keys = self.keys()
        return {level: np.array(sorted(k[-1] - k[-2] + 1 for k in keys[level]), np.int64)
                for level in ("gene", "exon", "intron")}

    def counts(self):
        """Genes, coding transcripts, mono- and multi-exon genes (by the gene's transcript with
        the longest CDS), unique exons and introns."""
        multi = sum(len(max(txs, key=lambda t: sum(e - s + 1 for s, e in t["cds"]))["exons"]) > 1
                    for txs in self.genes.values())
        keys = self.keys()
        return {"genes": len(self.genes),
                "transcripts": sum(len(txs) for txs in self.genes.values()),
                "mono_exon_genes": len(self.genes) - multi, "multi_exon_genes": multi,
                "exons": len(keys["exon"]), "introns": len(keys["intron"])}


def _prf(n_pred, n_ref, tp_pred, tp_ref):
    precision = tp_pred / n_pred if n_pred else 0.0
    recall = tp_ref / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted": n_pred,
            "reference": n_ref, "matched": tp_ref}


def compare(reference, prediction):
    """Exact-coordinate scores of ``prediction`` against ``reference`` (two :class:`Models`)."""
    ref, pred = reference.keys(), prediction.keys()
    out = {}
    for level in ("gene", "transcript", "exon", "intron"):
        common = len(ref[level] & pred[level])
        out[level] = _prf(len(pred[level]), len(ref[level]), common, common)
    ref_chains, pred_chains = reference.cds_chains(), prediction.cds_chains()
    all_ref = set().union(*ref_chains.values()) if ref_chains else set()
    all_pred = set().union(*pred_chains.values()) if pred_chains else set()
    out["cds_structure"] = _prf(len(pred_chains), len(ref_chains),
                                sum(bool(c & all_ref) for c in pred_chains.values()),
                                sum(bool(c & all_pred) for c in ref_chains.values()))
    return out


def length_summary(lengths):
    """n, min, quartiles, mean, max and the histogram over :data:`LENGTH_EDGES`."""
    if not len(lengths):
        return {"n": 0, "histogram": [0] * (len(LENGTH_EDGES) - 1)}
    q1, median, q3 = (float(v) for v in np.percentile(lengths, [25, 50, 75]))
    return {"n": int(len(lengths)), "min": int(lengths.min()), "q1": q1, "median": median,
            "q3": q3, "mean": float(lengths.mean()), "max": int(lengths.max()),
            "histogram": np.histogram(lengths, LENGTH_EDGES)[0].tolist()}


def splice_sites(models_list, fasta):
    """Per annotation: counts of intron dinucleotide pairs (donor-acceptor, transcript strand):
    GT-AG, GC-AG, AT-AC and the non-canonical rest (with up to 10 examples)."""
    introns = []
    for models in models_list:
        by_seq = collections.defaultdict(list)
        for seqid, strand, start, end in sorted(models.keys()["intron"]):
            by_seq[seqid].append((strand, start, end))
        introns.append(by_seq)
    counts = [dict.fromkeys(SPLICE_CLASSES + ("other",), 0) for _ in models_list]
    examples = [[] for _ in models_list]
    for seqid, seq in read_sequences(fasta):
        seq = seq.upper()
        for k, by_seq in enumerate(introns):
            for strand, start, end in by_seq.get(seqid, ()):
                donor, acceptor = seq[start - 1:start + 1], seq[end - 2:end]
                if strand == "-":
                    donor, acceptor = (acceptor[::-1].translate(_COMPLEMENT),
                                       donor[::-1].translate(_COMPLEMENT))
                pair = f"{donor.decode()}-{acceptor.decode()}"
                if pair in counts[k]:
                    counts[k][pair] += 1
                else:
                    counts[k]["other"] += 1
                    if len(examples[k]) < 10:
                        examples[k].append(f"{seqid}:{start}-{end}({strand}) {pair}")
    out = []
    for c, ex in zip(counts, examples):
        total = sum(c.values())
        out.append({**c, "introns": total, "non_canonical": c["other"],
                    "non_canonical_fraction": c["other"] / total if total else 0.0,
                    "non_canonical_examples": ex})
    return out
