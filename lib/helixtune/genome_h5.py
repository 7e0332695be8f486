"""Genome FASTA -> genome HDF5 (``data/X``, ``seqids``, ``species``, ``start_ends``): the
conversion of fasta2h5.py, also the first stage of Helixer.py."""
import os

import h5py
import numpy as np

from helixtune import cli, h5layout
from helixtune.fasta import iter_blocks, scan
from helixtune.sequence import COMPLEMENT, encode


def _row_codes(block, subsequence_length):
    """Byte codes of the plus rows (k, L) of a block of bases and of the matching minus rows in
    file order (byte 0 = padding).

    Minus rows are reverse-complemented on the 1-byte codes; each strand is then encoded once, so
    no float16 array is copied or flipped (encode(COMPLEMENT[c]) is encode(c) channel-reversed)."""
    L = subsequence_length
    n = len(block)
    k = -(-n // L)
    plus = np.zeros((k, L), dtype=np.uint8)
    plus.reshape(-1)[:n] = np.frombuffer(block, dtype=np.uint8)
    # Minus rows: each chunk reverse-complemented, padding kept at the end, rows in descending order.
    minus = COMPLEMENT[plus[::-1, ::-1]]
    tail = n - (k - 1) * L
    if tail < L:  # the short last chunk: after flipping, its padding came first; move it back
        minus[0] = np.roll(minus[0], -(L - tail))
    return plus, minus


class _Blocks:
    """``fasta.iter_blocks`` with one block of look-ahead, shared by consecutive output files."""

    def __init__(self, fasta_path, block_size):
        self._blocks = iter_blocks(fasta_path, block_size)
        self._next = next(self._blocks, None)

    def of_records_below(self, stop):
        """Yield the (record index, block) pairs of the records before index ``stop``."""
        while self._next is not None and self._next[0] < stop:
            item, self._next = self._next, next(self._blocks, None)
            yield item


def _checked_records(fasta_path, species, records):
    h5layout.check_name_length(species, h5layout.SPECIES_BYTES, "species", "--species")
    records = scan(fasta_path) if records is None else records
    for rec in records:
        h5layout.check_name_length(rec.seqid, h5layout.SEQID_BYTES, "sequence ID",
                                   f"{fasta_path}: line {rec.line}")
    return records


def _write(out_path, fasta_path, records, first, stop, species, L, compression, blocks,
           progress):
    """Write the genome file of ``records[first:stop]`` from ``blocks`` (a _Blocks)."""
    part = records[first:stop]
    first_row = np.cumsum([0] + [h5layout.rows_of_sequence(rec.length, L) for rec in part])
    with h5py.File(out_path, "w") as h5:
        data = h5.create_group("data")
        dsets = {name: h5layout.create_dataset(data, name, int(first_row[-1]), L, compression)
                 for name in ("X", "seqids", "species", "start_ends")}
        for i, rec in enumerate(part):
            rows = slice(first_row[i], first_row[i + 1])
            n = rows.stop - rows.start
            dsets["seqids"][rows] = np.full(n, rec.seqid.encode(), dtype="S50")
            dsets["species"][rows] = np.full(n, species.encode(), dtype="S25")
            dsets["start_ends"][rows] = h5layout.start_ends(rec.length, L)
        chunk_in_seq = 0
        current = -1
        # X's rows are encoded from byte codes and compressed in threads, and stored as HDF5's
        # filters would store them (h5layout.RowWriter)
        with h5layout.RowWriter(dsets["X"]) as X:
            for index, block in blocks.of_records_below(stop):
                if index != current:
                    current, chunk_in_seq = index, 0
                n_chunks = h5layout.rows_of_sequence(records[index].length, L) // 2
                plus, minus = _row_codes(block, L)
                k = len(plus)
                base = first_row[index - first]
                X.write_from(base + chunk_in_seq, plus, encode)
                X.write_from(base + 2 * n_chunks - chunk_in_seq - k, minus, encode)
                chunk_in_seq += k
                progress.update(len(block))
        h5layout.write_root_attrs(h5, fasta_path)


def convert(fasta_path, out_path, species, subsequence_length, write_by, compression,
            records=None, progress_name="fasta2h5"):
    """Write the genome HDF5 file for ``fasta_path`` to ``out_path``; ``records``: the result
    of ``fasta.scan(fasta_path)`` if the caller has it already."""
    records = _checked_records(fasta_path, species, records)
    progress = cli.Progress(progress_name, sum(rec.length for rec in records), "bp")
    _write(out_path, fasta_path, records, 0, len(records), species, subsequence_length,
           compression, _Blocks(fasta_path, write_by), progress)


def convert_parts(fasta_path, directory, species, subsequence_length, write_by, compression,
                  records=None, progress_name="fasta2h5"):
    """Convert ``fasta_path`` into a series of genome files of consecutive whole sequences, each
    of at most max(``write_by``, its one sequence) bases, reading the FASTA once.

    Yields each part's path one part at a time; a part's file in
    ``directory`` is removed when the next part is asked for (and at the end), so the disk
    holds one part at a time: bounded by the largest sequence or ``write_by``, not the genome."""
    records = _checked_records(fasta_path, species, records)
    progress = cli.Progress(progress_name, sum(rec.length for rec in records), "bp")
    blocks = _Blocks(fasta_path, write_by)
    first = 0
    while first < len(records):
        stop, bases = first + 1, records[first].length
        while stop < len(records) and bases + records[stop].length <= write_by:
            bases += records[stop].length
            stop += 1
        path = os.path.join(directory, f"genome_part{first}.h5")
        try:
            _write(path, fasta_path, records, first, stop, species, subsequence_length,
                   compression, blocks, progress)
            yield path
        finally:
            if os.path.exists(path):
                os.remove(path)
        first = stop
