#!/usr/bin/env python3
"""Is add_ngs_coverage.py's own BAM reader (tools/add_ngs_coverage/bam.py) worth keeping?
Issue 16: keep it only if the whole tool is at least 1.5× faster (wall) with it than with pysam.

Builds a deep, coordinate-sorted, indexed BAM (--reads records, default 10 M) from the real
S. pombe chr I HISAT2 BAMs (their 87,340 records, spliced ones included, copied over and over,
each copy shifted by a small seeded offset) and the genome file (fasta2h5.py on sp_chrI.fa.gz),
then runs the whole tool on it in fresh processes, ``--threads 1``:

* ``bam.py``: the tool as shipped;
* ``pysam``: the same tool with ``bam.alignments`` replaced by :func:`pysam_alignments`, which
  iterates pysam ``AlignedSegment`` objects and yields the same chunks.

Checks the evaluation/* datasets of both outputs are equal byte for byte, and prints one JSON
line: wall and CPU seconds and peak RSS of each (best of --repeats, runs alternating; every
run's wall time too), the ratios.

    python benchmarks/bam_reader.py [--reads 10000000] [--work DIR] [--repeats 1]

With --work the BAM and genome file are kept there and reused by a later run with the same
--reads and --seed; without it they go to a temporary directory that is removed.
"""
import argparse
import hashlib
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
BAMS = ["Sp_ds", "Sp_hs", "Sp_log", "Sp_plat", "SP2_top100k"]
#: Records per chunk of pysam_alignments, about as many as in bam.py's chunks (~4 MiB inflated:
#: ~14,100 records of the deep BAM).
CHUNK_RECORDS = 16384


def pysam_alignments(path, tid, span, chunk_records=CHUNK_RECORDS):
    """bam.alignments through pysam: the same chunks (flag, pos per record; record index in the
    chunk, op, length per CIGAR operation; int64) from iterating ``AlignedSegment`` objects."""
    import numpy as np
    import pysam

    def chunk():
        n = len(flags)
        ops = np.fromiter(itertools.chain.from_iterable(cigars), np.int64, 2 * len(cigars))
        ops = ops.reshape(-1, 2)
        return (np.array(flags, np.int64), np.array(positions, np.int64),
                np.repeat(np.arange(n), np.array(n_ops, np.int64)), ops[:, 0], ops[:, 1])

    flags, positions, n_ops, cigars = [], [], [], []
    add_flag, add_pos, add_n, add_ops = flags.append, positions.append, n_ops.append, cigars.extend
    with pysam.AlignmentFile(path, "rb") as bam:
        for read in bam.fetch(bam.get_reference_name(tid)):
            add_flag(read.flag)
            add_pos(read.reference_start)
            cigar = read.cigartuples or ()
            add_n(len(cigar))
            add_ops(cigar)
            if len(flags) == chunk_records:
                yield chunk()
                flags.clear(), positions.clear(), n_ops.clear(), cigars.clear()
    if flags:
        yield chunk()


def run_tool(reader, tool_args):
    """Run add_ngs_coverage.py in this process, with its own reader or with pysam_alignments."""
    from helixtune_tools import add_ngs_coverage

    if reader == "pysam":
        add_ngs_coverage._bam.alignments = pysam_alignments
    sys.argv = ["add_ngs_coverage.py", *tool_args]
    add_ngs_coverage.main_cli()


def deep_bam(path, n_reads, seed, data):
    """A sorted, indexed BAM of the first ``n_reads`` copies of the real records; copy k of every
    record is shifted by one seeded offset of 0-99 bp (copies that would leave the sequence are
    skipped)."""
    import numpy as np
    import pysam

    sources = [data / "bam" / f"{b}.chrI.hisat2.bam" for b in BAMS]
    with pysam.AlignmentFile(str(sources[0])) as first:
        header = first.header.to_dict()
    header["HD"] = {"VN": "1.6", "SO": "coordinate"}
    header = pysam.AlignmentHeader.from_dict(header)
    length = header.get_reference_length(header.get_reference_name(0))
    segs = []
    for source in sources:
        with pysam.AlignmentFile(str(source)) as bam:
            segs += [pysam.AlignedSegment.from_dict(r.to_dict(), header)
                     for r in bam.fetch(until_eof=True)]
    pos = np.array([s.reference_start for s in segs], np.int64)
    end = np.array([s.reference_end or s.reference_start + 1 for s in segs], np.int64)
    n_copies = -(-n_reads // len(segs)) + 1
    offsets = np.random.default_rng(seed).integers(0, 100, n_copies)
    offsets[0] = 0
    copy = np.repeat(np.arange(n_copies), len(segs))
    rec = np.tile(np.arange(len(segs)), n_copies)
    inside = end[rec] + offsets[copy] <= length
    copy, rec = copy[inside][:n_reads], rec[inside][:n_reads]
    if len(rec) < n_reads:
        raise SystemExit(f"could not make {n_reads} reads")
    start = pos[rec] + offsets[copy]
    order = np.argsort(start, kind="stable")
    tmp = path.with_suffix(".part.bam")
    with pysam.AlignmentFile(str(tmp), "wb", header=header) as out:
        write = out.write
        for r, p in zip(rec[order].tolist(), start[order].tolist()):
            seg = segs[r]
            seg.reference_start = p
            write(seg)
    pysam.index(str(tmp), str(path) + ".bai")
    tmp.rename(path)


def evaluation_digests(path):
    """{dataset name: (dtype, shape, SHA-256 of the values)} of every dataset under evaluation/
    (digests, not the values: this process's memory would count in the next child's peak RSS)."""
    import h5py

    found = {}
    with h5py.File(path, "r") as h5:
        h5["evaluation"].visititems(lambda name, obj: found.__setitem__(
            name, (str(obj.dtype), obj.shape, hashlib.sha256(obj[()].tobytes()).hexdigest()))
            if isinstance(obj, h5py.Dataset) else None)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared-data", default=os.environ.get("HELIXTUNE_SHARED_DATA",
                                                               ROOT.parent / "shared" / "data"))
    parser.add_argument("--reads", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", help="keep the BAM and genome file here (reused)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--run-tool", choices=("bam.py", "pysam"), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.run_tool:  # a child process: the tool itself, with one reader or the other
        run_tool(args.run_tool, rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _measure import measure_children

    data = pathlib.Path(args.shared_data) / "schizosaccharomyces_pombe"
    if args.work:
        os.makedirs(args.work, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = pathlib.Path(args.work or tmp)
        bam = work / f"deep_{args.reads}_seed{args.seed}.bam"
        if not bam.exists():
            deep_bam(bam, args.reads, args.seed, data)
        genome = work / "sp_chrI.h5"
        if not genome.exists():
            exe = pathlib.Path(sys.executable).parent / "fasta2h5.py"
            subprocess.run([exe, "--fasta-path", data / "sp_chrI.fa.gz", "--h5-output-path",
                            work / "sp_chrI.part.h5", "--species", "sp_chrI", "--quiet"],
                           check=True)
            (work / "sp_chrI.part.h5").rename(genome)
        # As installed code runs: with cached bytecode (in the temporary directory).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(pathlib.Path(tmp) / "pycache")
        subprocess.run([sys.executable, "-c", "import helixtune_tools.add_ngs_coverage, pysam"],
                       check=True)  # fills the bytecode cache before the first timed run
        best, walls, outputs = {}, {"bam.py": [], "pysam": []}, {}
        for _, reader in itertools.product(range(args.repeats), ("bam.py", "pysam")):
            target = pathlib.Path(tmp) / f"{reader}.h5"
            shutil.copyfile(genome, target)
            # through a small wrapper process: the peak RSS is the tool's, not this process's
            m = measure_children([sys.executable, __file__, "--run-tool", reader, "-s",
                                  "sp_chrI", "-d", target, "-b", bam,
                                  "--second-read-is-sense-strand", "--threads", "1", "--quiet"])
            best[reader] = min(best.get(reader, m), m)
            walls[reader].append(round(m[0], 2))
            outputs[reader] = evaluation_digests(target)
            target.unlink()
        bam_mb = bam.stat().st_size / 2**20
    identical = outputs["bam.py"] == outputs["pysam"] and bool(outputs["bam.py"])
    figures = {k: {"wall_s": round(m[0], 2), "cpu_s": round(m[2], 2),
                   "peak_rss_mb": round(m[1], 1), "reads_per_s": round(args.reads / m[0]),
                   "all_wall_s": walls[k]}
               for k, m in best.items()}
    print(json.dumps({
        "tool": "add_ngs_coverage.py --threads 1", "input": "S. pombe chr I, deep BAM from the "
        "5 HISAT2 BAMs", "reads": args.reads, "bam_mb": round(bam_mb), "repeats": args.repeats,
        "bam.py": figures["bam.py"], "pysam": figures["pysam"],
        "wall_ratio_pysam_to_bam_py": round(best["pysam"][0] / best["bam.py"][0], 2),
        "cpu_ratio_pysam_to_bam_py": round(best["pysam"][2] / best["bam.py"][2], 2),
        "identical_outputs": identical, "datasets_compared": sorted(outputs["bam.py"]),
        "keep_bam_py": best["pysam"][0] / best["bam.py"][0] >= 1.5,
        "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
    }))
    if not identical:
        raise SystemExit("the two readers gave different coverage")


if __name__ == "__main__":
    main()
