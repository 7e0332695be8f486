"""add_ngs_coverage.py's own BAM reading (tools/add_ngs_coverage/bam.py) against pysam, and its errors."""
import hashlib
import os
import shutil

import numpy as np
import pysam
import pytest

from helixtune_tools.add_ngs_coverage import bam as _bam
from helixtune_tools import add_ngs_coverage as anc

import coverage_data as cd


def pysam_records(path, reference):
    """(flag, pos) per record and (record, op, length) per CIGAR op, as pysam reads them."""
    flags, positions, ops = [], [], []
    with pysam.AlignmentFile(str(path)) as bam:
        for k, read in enumerate(bam.fetch(reference)):
            flags.append(read.flag)
            positions.append(read.reference_start)
            ops += [(k, op, n) for op, n in read.cigartuples or []]
    ops = np.array(ops, np.int64).reshape(-1, 3)
    return np.array(flags), np.array(positions), ops[:, 0], ops[:, 1], ops[:, 2]


def own_records(path, reference, index=None):
    _, refs = _bam.read_header(str(path))
    tid = [name for name, _ in refs].index(reference)
    span = _bam.reference_spans(index or _bam.find_index(str(path)), len(refs))[tid]
    if span is None:
        return (np.zeros(0, np.int64),) * 5
    chunks = list(_bam.alignments(str(path), tid, span))
    offsets = np.cumsum([0] + [len(c[0]) for c in chunks])
    flag, pos, read, op, length = (np.concatenate(a) for a in zip(*chunks))
    read = read + np.repeat(offsets[:-1], [len(c[2]) for c in chunks])
    return flag, pos, read, op, length


def assert_same(got, expected):
    for name, g, e in zip(("flag", "pos", "record", "op", "length"), got, expected):
        np.testing.assert_array_equal(g, e, err_msg=name)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.realdata
def test_real_bams_equal_pysam(shared_data, monkeypatch):
    """Every record of every reference of the S. pombe BAMs (one with 7 references, ~50 k
    records spread over many BGZF blocks), also when read in steps smaller than a block."""
    bams = sorted((shared_data / "schizosaccharomyces_pombe" / "bam").glob("*.bam"))
    assert len(bams) >= 6
    for path in bams:
        with pysam.AlignmentFile(str(path)) as bam:
            references = list(bam.references)
        for reference in references:
            assert_same(own_records(path, reference), pysam_records(path, reference))
    monkeypatch.setattr(_bam, "READ_SIZE", 5000)
    path = shared_data / "schizosaccharomyces_pombe" / "bam" / "Sp_ds.chrI.hisat2.bam"
    with pysam.AlignmentFile(str(path)) as bam:
        reference = bam.references[0]
    assert _bam.READ_SIZE < os.path.getsize(path) // 100
    assert_same(own_records(path, reference), pysam_records(path, reference))


def test_header(tmp_path):
    bam = cd.make_bam(tmp_path / "r.bam")
    text, refs = _bam.read_header(str(bam))
    assert refs == cd.BAM_REFS
    assert text.startswith("@HD\tVN:1.6\tSO:coordinate")


@pytest.mark.parametrize("kind", ["bam.bai", "bai", "bam.csi", "csi"])
def test_every_index_name_and_format(tmp_path, kind):
    bam = cd.make_bam(tmp_path / "r.bam", index=False)
    if kind.endswith("csi"):
        pysam.index("-c", str(bam))
    else:
        pysam.index(str(bam))
    made = str(bam) + "." + kind.split(".")[-1]
    index = str(tmp_path / f"r.{kind}")
    if made != index:
        os.rename(made, index)
    assert _bam.find_index(str(bam)) == index
    for reference in ("chr1", "chr2", "chrB", "chrM"):
        assert_same(own_records(bam, reference), pysam_records(bam, reference))


def test_no_reads_on_a_reference(tmp_path):
    bam = cd.make_bam(tmp_path / "r.bam", reads=[r for r in cd.READS if r[2] != "chr2"])
    assert own_records(bam, "chr2")[0].size == 0


def test_cigar_over_65535_operations_from_cg_tag(tmp_path):
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c", "LN": 100_000}]}
    path = str(tmp_path / "long.bam")
    with pysam.AlignmentFile(path, "wb", header=header) as out:
        for start, n in ((5, 3), (10, 35_000), (20, 2)):
            read = pysam.AlignedSegment(out.header)
            read.query_name, read.flag, read.reference_id, read.reference_start = "r", 0, 0, start
            read.cigartuples = [(0, 1), (2, 1)] * n + [(4, 2)]
            read.query_sequence = "A" * (n + 2)
            out.write(read)
    pysam.index(path)
    got = own_records(path, "c")
    assert len(got[3]) == 2 * 3 + 1 + 70_001 + 2 * 2 + 1
    assert_same(got, pysam_records(path, "c"))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_damaged_block_is_a_clear_error_and_changes_nothing(tmp_path, run_tool, threads):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "r.bam")
    data = bytearray(bam.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the compressed records
    bam.write_bytes(bytes(data))
    os.utime(str(bam) + ".bai")
    before = sha256(h5)
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded", "--threads", threads])
    assert code == 1, err
    assert f"{bam}: damaged BGZF block at byte" in err
    assert sha256(h5) == before


def test_truncated_bam(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "r.bam")
    data = bam.read_bytes()
    bam.write_bytes(data[:len(data) - 40])  # the EOF block and the end of the records' block
    os.utime(str(bam) + ".bai")
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded", "--threads", "1"])
    assert code == 1, err
    assert "truncated" in err


def test_index_of_another_bam(tmp_path, run_tool):
    """An index that does not belong to the BAM: a clear error (never a hang or wrong counts),
    and a warning when the index is older than the BAM."""
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    other = cd.make_bam(tmp_path / "other.bam", reads=[r for r in cd.READS if r[2] == "chr2"] * 40)
    bam = cd.make_bam(tmp_path / "r.bam", index=False)
    shutil.copy(str(other) + ".bai", str(bam) + ".bai")
    os.utime(str(bam) + ".bai", (1, 1))
    before = sha256(h5)
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", bam, "--unstranded", "--threads", "1"])
    assert code == 1, err
    assert "re-index it with samtools index" in err and "is older than the BAM file" in err
    assert sha256(h5) == before


def test_bgzipped_sam_is_converted(tmp_path, run_tool):
    h5 = cd.make_h5(tmp_path / "tiny.h5")
    bam = cd.make_bam(tmp_path / "r.bam")
    sam = tmp_path / "r.sam"
    sam.write_text(pysam.view("-h", str(bam)))
    pysam.tabix_compress(str(sam), str(sam) + ".gz")
    code, err = run_tool(anc.main, ["-s", "tiny", "-d", h5, "-b", str(sam) + ".gz", "--unstranded"])
    assert code == 0, err
    assert "is not BAM (SAM or CRAM)" in err


def test_counting_memory_follows_the_sequence_not_the_reads(tmp_path, monkeypatch):
    """20,000 reads on a 25 bp sequence, read in many chunks: what a worker returns is bounded
    by the sequence's length (summed coverage changes, a tally per midpoint)."""
    monkeypatch.setattr(_bam, "CHUNK_SIZE", 20_000)
    reads = [(f"r{k}", (0, 16, 65, 145)[k % 4], "chr1", k % 20, "2M1N2M" if k % 3 else "5M")
             for k in range(20_000)]
    bam = cd.make_bam(tmp_path / "deep.bam", reads=reads)
    _, refs = _bam.read_header(str(bam))
    span = _bam.reference_spans(_bam.find_index(str(bam)), len(refs))[0]
    assert len(list(_bam.alignments(str(bam), 0, span))) >= 10
    result = anc.count_reads((str(bam), 0, span, "second", False))
    for positions, changes in result["cov"] + result["spliced"]:
        assert len(positions) <= 26 and changes.sum() == 0
    assert len(result["strand_tally"][0]) <= 2 * 25 and result["strand_tally"][1].sum() == 20_000
    assert result["counts"]["used"] == 20_000
