"""Tiny hand-made HDF5 data files and BAMs for add_ngs_coverage.py tests and Galaxy test-data.

`python tests/tools/coverage_data.py galaxy/test-data` (re)writes the Galaxy test inputs.
"""
import pathlib
import re
import sys

import h5py
import numpy as np
import pysam

from handmade_h5 import row_dataset, start_ends

#: (species, seqid, length) in file order; rows of a species are contiguous.
SEQUENCES = [("other", "chrB", 8), ("tiny", "chr1", 25), ("tiny", "chr2", 7)]
L = 10
#: BAM header: the file's sequences plus one the file does not have.
BAM_REFS = [("chr1", 25), ("chr2", 7), ("chrB", 8), ("chrM", 30)]

# (name, flag, ref, 0-based pos, CIGAR)
READS = [
    ("se_plus", 0, "chr1", 0, "5M"),
    ("se_minus", 16, "chr1", 2, "4M"),
    ("pe1_plus", 65, "chr1", 3, "6M"),
    ("pe2_minus", 145, "chr1", 8, "5M"),
    ("pe1_minus", 81, "chr1", 12, "3M"),
    ("pe2_plus", 161, "chr1", 14, "4M"),
    ("deletion", 0, "chr1", 4, "3M2D3M"),
    ("splice", 16, "chr1", 6, "2M9N3M"),
    ("softclip", 65, "chr1", 9, "2S4M1S"),
    ("insertion", 145, "chr1", 17, "3M2I4M"),
    ("eqx", 0, "chr1", 20, "2=1X2="),
    ("hardclip", 16, "chr1", 21, "3H4M"),
    ("dup", 1024, "chr1", 1, "3M"),
    ("suppl", 2048 + 16, "chr1", 11, "3M"),
    ("secondary", 256, "chr1", 0, "10M"),
    ("qcfail", 512 + 16, "chr1", 0, "10M"),
    ("unmapped", 4, "chr1", 5, "*"),
    ("c2_a", 0, "chr2", 0, "7M"),
    ("c2_b", 145, "chr2", 1, "1M3N2M"),
    ("other_species", 0, "chrB", 0, "8M"),
    ("not_in_file", 0, "chrM", 0, "8M"),
]


def make_h5(path, sequences=SEQUENCES, subsequence_length=L, with_y=False):
    """A data file with X (zeros), seqids, species, start_ends (and optionally y)."""
    rows = []
    for species, seqid, n in sequences:
        for se in start_ends(n, subsequence_length):
            rows.append((species, seqid, se))
    with h5py.File(path, "w") as h5:
        data = h5.create_group("data")
        n = len(rows)
        row_dataset(data, "X", np.zeros((n, subsequence_length, 4), np.float16))
        data.create_dataset("species", data=np.array([r[0].encode() for r in rows], "S25"))
        data.create_dataset("seqids", data=np.array([r[1].encode() for r in rows], "S50"))
        data.create_dataset("start_ends", data=np.array([r[2] for r in rows], np.int64))
        if with_y:
            y = np.zeros((n, subsequence_length, 4), np.int8)
            for i, (_, _, (s, e)) in enumerate(rows):
                y[i, :abs(e - s), 0] = 1
            data.create_dataset("y", data=y)
    return path


def make_bam(path, reads=READS, refs=BAM_REFS, sort=True, index=True):
    """Write the reads as a BAM (sorted and indexed unless told otherwise)."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate" if sort else "unsorted"},
              "SQ": [{"SN": n, "LN": ln} for n, ln in refs]}
    raw = str(path) + (".unsorted.bam" if sort else "")
    ref_id = {n: i for i, (n, _) in enumerate(refs)}
    with pysam.AlignmentFile(raw, "wb", header=header) as out:
        for name, flag, ref, pos, cigar in reads:
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.flag = name, flag
            a.reference_id, a.reference_start = ref_id[ref], pos
            if flag & 0x4:
                a.cigarstring = None
                a.query_sequence = "ACGT"
            else:
                a.cigarstring = cigar
                qlen = sum(int(n) for n, op in re.findall(r"(\d+)([MIS=X])", cigar))
                a.query_sequence = "A" * qlen
                a.query_qualities = pysam.qualitystring_to_array("I" * qlen)
            a.mapping_quality = 60
            out.write(a)
    if sort:
        pysam.sort("-o", str(path), raw)
        pathlib.Path(raw).unlink()
        if index:
            pysam.index(str(path))
    return path


def expected_coverage(reads, sequences, mode, shift=False, subsequence_length=L):
    """Per-base reference (plain loops over the spec): {seqid: (cov[2, n], spliced[2, n])}."""
    lengths = {seqid: n for _, seqid, n in sequences}
    out = {seqid: (np.zeros((2, n), np.int64), np.zeros((2, n), np.int64))
           for seqid, n in lengths.items()}
    for _, flag, ref, pos, cigar in reads:
        if flag & (0x4 | 0x100 | 0x200) or ref not in out:
            continue
        reverse = bool(flag & 0x10)
        mate2 = bool(flag & 0x1) and bool(flag & 0x80)
        if mode == "unstranded":
            minus = reverse
        else:
            antisense = mode == "second"   # read 1 / single-end antisense under dUTP
            if mate2:
                antisense = not antisense
            minus = reverse != antisense
        if shift:
            pos += -5 if reverse else 4
        cov, spl = out[ref]
        n = lengths[ref]
        for count, op in re.findall(r"(\d+)([MIDNSHP=X])", cigar):
            count = int(count)
            if op in "M=X":
                for p in range(pos, pos + count):
                    if 0 <= p < n:
                        cov[int(minus), p] += 1
            if op in "DN" and not shift:
                for p in range(pos, pos + count):
                    if 0 <= p < n:
                        spl[int(minus), p] += 1
            if op in "M=XDN":
                pos += count
    return out


def expected_rows(h5path, species, per_seq, which, subsequence_length=L):
    """Rows of the whole file as add_ngs_coverage must write them (-1 padding / other species)."""
    with h5py.File(h5path) as h5:
        sp, ids, se = h5["data/species"][:], h5["data/seqids"][:], h5["data/start_ends"][:]
    rows = np.full((len(sp), subsequence_length), -1, np.int64)
    for i in range(len(sp)):
        if sp[i].decode() != species:
            continue
        cov = per_seq[ids[i].decode()][which]
        s, e = int(se[i][0]), int(se[i][1])
        if s < e:
            rows[i, :e - s] = cov[0, s:e]
        else:
            rows[i, :s - e] = cov[1, e:s][::-1]
    return rows


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "galaxy/test-data")
    make_h5(target / "coverage_tiny.h5", with_y=True)
    make_bam(target / "coverage_tiny.bam")
    make_bam(target / "coverage_tiny_wrong_refs.bam", refs=[("scaffold_1", 25)],
             reads=[("r", 0, "scaffold_1", 0, "5M")])
    for p in target.glob("coverage_tiny*.bai"):
        p.unlink()  # Galaxy indexes BAM datasets itself
