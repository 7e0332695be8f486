#!/usr/bin/env python3
"""Rebuild the bundled fine-tuning example from ../shared/data (run once; the outputs are
committed): S. pombe chromosome I:1-100,000 (Broad SP2 assembly), which the bundled default
model never saw (benchmarks/default_model/recipe.py holds it out), its 35 annotated genes, and
the stranded RNA-seq reads (library SP2, HISAT2, read pairs RF) that align inside it, every
second pair kept (~17x).

    python example/make_example.py [--shared-data ../shared/data]
"""
import argparse
import gzip
import hashlib
import os
import pathlib

import pysam

HERE = pathlib.Path(__file__).resolve().parent
SEQID, SOURCE_SEQID, END = "chrI_1-100000", "7000000090838467", 100_000
NAME = "spombe_chrI_1-100000"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", type=pathlib.Path,
                        default=HERE.parents[1] / "shared" / "data")
    args = parser.parse_args()
    sp = args.shared_data / "schizosaccharomyces_pombe"

    fasta = pysam.FastaFile(str(sp / "sp_chrI.fa.gz"))
    seq = fasta.fetch(SOURCE_SEQID, 0, END)
    with gzip.GzipFile(HERE / f"{NAME}.fa.gz", "wb", mtime=0) as out:
        out.write(f">{SEQID}\n".encode())
        for i in range(0, len(seq), 60):
            out.write(seq[i:i + 60].encode() + b"\n")

    with gzip.open(sp / "sp_chrI.genes.gff3.gz", "rt") as f:
        lines = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    attrs = [dict(kv.split("=", 1) for kv in cols[8].split(";") if "=" in kv) for cols in lines]
    inside = {a["ID"] for cols, a in zip(lines, attrs) if cols[2] == "gene" and int(cols[4]) <= END}
    kept = []
    for cols, a in zip(lines, attrs):  # parents precede children in this file
        if a.get("ID") in inside or a.get("Parent") in inside:
            if "ID" in a:
                inside.add(a["ID"])
            kept.append("\t".join([SEQID] + cols[1:]))
    with gzip.GzipFile(HERE / f"{NAME}.gff3.gz", "wb", mtime=0) as out:
        out.write(("##gff-version 3\n" + f"##sequence-region {SEQID} 1 {END}\n"
                   + "\n".join(kept) + "\n").encode())

    bam_in = pysam.AlignmentFile(str(sp / "bam" / "SP2_top100k.chrI.hisat2.bam"))
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": SEQID, "LN": END}],
              "PG": [{"ID": "make_example", "PN": "make_example.py",
                      "CL": "reads of SP2_top100k.chrI.hisat2.bam inside chrI:1-100000"}]}
    bam_path = HERE / f"{NAME}.bam"
    with pysam.AlignmentFile(str(bam_path), "wb", header=header) as out:
        for read in bam_in.fetch(SOURCE_SEQID, 0, END):
            if read.reference_end > END or (read.is_paired and not read.mate_is_unmapped
                                            and read.next_reference_start >= END):
                continue
            if hashlib.md5(read.query_name.encode()).digest()[0] % 2:
                continue  # every second pair (by name, so mates stay together)
            fields = read.to_dict()
            fields["ref_name"] = SEQID
            if fields["next_ref_name"] in (SOURCE_SEQID, "="):
                fields["next_ref_name"] = "="
            out.write(pysam.AlignedSegment.from_dict(fields, out.header))
    pysam.index(str(bam_path))
    for p in sorted(HERE.glob(f"{NAME}*")):
        print(p.name, os.path.getsize(p))


if __name__ == "__main__":
    main()
