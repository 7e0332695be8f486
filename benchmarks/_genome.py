"""Replicated S. pombe chr I genomes for the genome-scale benchmarks (not a benchmark itself).

:func:`write_genome` writes a FASTA of N copies of chromosome I (records chrI_c1 .. chrI_cN) and
its GFF3 annotation replicated once per copy (seqid and every ID/Parent suffixed with ``_c<copy>``,
so IDs stay unique); with ``length`` each copy is only the first ``length`` bases, with the genes
that lie wholly inside. :func:`write_bams` re-targets the RNA-seq reads to every copy.
"""
import gzip
import re

import pysam

ATTR_ID = re.compile(r"((?:^|;)(?:ID|Parent)=)([^;]*)")
POMBE = "schizosaccharomyces_pombe"
CHR1_BAMS = ["Sp_ds", "Sp_hs", "Sp_log", "Sp_plat", "SP2_top100k"]


def copy_names(copies):
    return [f"chrI_c{c}" for c in range(1, copies + 1)]


def _annotation(data, length):
    """The chr I GFF3 lines (split in columns); with ``length`` only genes ending by then."""
    with gzip.open(data / POMBE / "sp_chrI.genes.gff3.gz", "rt") as fh:
        lines = [ln.rstrip("\n").split("\t") for ln in fh if ln.strip() and not ln.startswith("#")]
    if length is None:
        return lines
    kept, ids = [], set()
    for cols in lines:   # parents come before their children
        attrs = dict(kv.split("=", 1) for kv in cols[8].split(";") if "=" in kv)
        if (cols[2] == "gene" and int(cols[4]) <= length) or attrs.get("Parent") in ids:
            kept.append(cols)
            if "ID" in attrs:
                ids.add(attrs["ID"])
    return kept


def write_genome(data, copies, fasta, gff3, unsorted=False, length=None):
    """Write ``copies`` copies of chr I (its first ``length`` bases) to ``fasta`` and their
    annotation to ``gff3`` (``unsorted``: the copies' lines interleaved); returns (bp, genes)."""
    with gzip.open(data / POMBE / "sp_chrI.fa.gz", "rt") as fh:
        seq = "".join(line.strip() for line in fh if not line.startswith(">"))[:length]
    with open(fasta, "w") as out:
        for name in copy_names(copies):
            out.write(f">{name}\n")
            for i in range(0, len(seq), 80):
                out.write(seq[i:i + 80] + "\n")
    lines = _annotation(data, length)
    genes = sum(cols[2] == "gene" for cols in lines)

    def copy(cols, c):
        attrs = ATTR_ID.sub(lambda m: m.group(1) + ",".join(f"{v}_c{c}"
                                                            for v in m.group(2).split(",")),
                            cols[8])
        return "\t".join([f"chrI_c{c}", *cols[1:8], attrs]) + "\n"

    with open(gff3, "w") as out:
        out.write("##gff-version 3\n")
        if unsorted:
            for cols in lines:
                for c in range(1, copies + 1):
                    out.write(copy(cols, c))
        else:
            for c in range(1, copies + 1):
                out.writelines(copy(cols, c) for cols in lines)
    return copies * len(seq), copies * genes


def write_bams(data, copies, length, directory):
    """The five HISAT2 chr I BAMs, each re-targeted to every copy (reads ending beyond
    ``length`` left out), coordinate-sorted, BGZF level 1 and indexed; returns (paths, records
    written)."""
    names = copy_names(copies)
    header = pysam.AlignmentHeader.from_dict(
        {"HD": {"VN": "1.6", "SO": "coordinate"},
         "SQ": [{"SN": name, "LN": length} for name in names]})
    paths, records = [], 0
    for bam in CHR1_BAMS:
        with pysam.AlignmentFile(data / POMBE / "bam" / f"{bam}.chrI.hisat2.bam") as src:
            reads = []
            for read in src.fetch(until_eof=True):
                if read.is_unmapped or read.reference_end > length:
                    continue
                d = read.to_dict()
                d["ref_name"] = names[0]
                if d["next_ref_name"] not in ("=", "*"):
                    d["next_ref_name"] = names[0]
                reads.append(pysam.AlignedSegment.from_dict(d, header))
        mates = [r.next_reference_id == 0 for r in reads]
        path, raw = directory / f"{bam}.bam", directory / f"{bam}.uncompressed.bam"
        # written uncompressed, then deflated at level 1 by samtools in C: zlib's default level
        # from Python took ~100 us per record (25 min for the 1 Gb genome's 15.6 M records)
        with pysam.AlignmentFile(raw, "wbu", header=header) as out:
            for tid in range(copies):   # copies in header order, reads sorted within each
                for read, mate in zip(reads, mates):
                    read.reference_id = tid
                    if mate:
                        read.next_reference_id = tid
                    out.write(read)
        pysam.samtools.view("-1", "-@", "2", "-o", str(path), str(raw), catch_stdout=False)
        raw.unlink()
        pysam.index(str(path))
        paths.append(path)
        records += copies * len(reads)
    return paths, records
