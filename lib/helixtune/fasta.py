"""Streaming FASTA reading with strict validation (plain, gzip or bgzip; detected by content)."""
import dataclasses
import gzip

import numpy as np

from helixtune.cli import UserError
from helixtune.sequence import VALID_BYTE, VALID_BYTES

_GZIP_MAGIC = b"\x1f\x8b"
_READ_SIZE = 1 << 22  # bytes decompressed and split into lines at a time


def open_binary(path):
    """Open ``path`` for reading bytes, decompressing gzip/bgzip whatever the file name says."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


@dataclasses.dataclass
class FastaRecord:
    """One sequence of a FASTA file: its ID (header up to the first space), length, header line."""
    seqid: str
    length: int
    line: int


def _lines(path):
    """(line number, line without trailing whitespace) of a FASTA file, with clear errors."""
    try:
        with open_binary(path) as fh:
            lineno, pending = 0, []  # pending: pieces of a line not finished yet
            while data := fh.read(_READ_SIZE):  # big reads: far fewer calls than readline
                lines = data.split(b"\n")
                if len(lines) == 1:  # a very long line (one-line genomes): join once, at its end
                    pending.append(data)
                    continue
                if pending:
                    lines[0] = b"".join(pending + [lines[0]])
                tail = lines.pop()
                pending = [tail] if tail else []
                for line in lines:
                    lineno += 1
                    yield lineno, line.rstrip()
            if pending:
                yield lineno + 1, b"".join(pending).rstrip()
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read FASTA: {e}") from None


def _check_bases(path, seqid, lineno, line, offset):
    codes = np.frombuffer(line, dtype=np.uint8)
    bad = np.flatnonzero(~VALID_BYTE[codes])
    if bad.size:
        i = int(bad[0])
        char = chr(line[i]) if 32 <= line[i] < 127 else f"\\x{line[i]:02x}"
        raise UserError(f"{path}: line {lineno}: sequence {seqid!r} position {offset + i + 1}: "
                        f"character {char!r} is not an IUPAC nucleotide code")


def scan(path):
    """Validate a FASTA file and return its records, without keeping any sequence in memory.

    Errors (UserError naming file and line): empty file, text before the first header, empty
    ID, duplicate IDs, a sequence without bases, characters outside the IUPAC codes.
    """
    records, seen = [], {}
    current = None
    for lineno, line in _lines(path):
        if not line:
            continue
        if line.startswith(b">"):
            if current is not None and current.length == 0:
                raise UserError(f"{path}: line {current.line}: sequence {current.seqid!r} is empty")
            header = line[1:].decode("utf-8", errors="replace")
            seqid = header.split(" ")[0]
            if not seqid:
                raise UserError(f"{path}: line {lineno}: header without a sequence ID")
            if seqid in seen:
                raise UserError(f"{path}: line {lineno}: duplicate sequence ID {seqid!r} "
                                f"(first at line {seen[seqid]})")
            seen[seqid] = lineno
            current = FastaRecord(seqid, 0, lineno)
            records.append(current)
        elif current is None:
            raise UserError(f"{path}: line {lineno}: not a FASTA file "
                            f"(expected a '>' header line, found {line[:20]!r})")
        else:
            if line.translate(None, VALID_BYTES):  # fast test; the slow one names the position
                _check_bases(path, current.seqid, lineno, line, current.length)
            current.length += len(line)
    if current is None:
        raise UserError(f"{path}: empty FASTA file (no sequences)")
    if current.length == 0:
        raise UserError(f"{path}: line {current.line}: sequence {current.seqid!r} is empty")
    return records


def iter_blocks(path, block_size):
    """Yield (record index, block bytes) with blocks of ``block_size`` bases (the last block of
    each sequence may be shorter). Call after :func:`scan` has validated the file."""
    index, parts, n = -1, [], 0
    for _, line in _lines(path):
        if not line:
            continue
        if line.startswith(b">"):
            if n:
                yield index, b"".join(parts)
                parts, n = [], 0
            index += 1
            continue
        parts.append(line)
        n += len(line)
        if n >= block_size:
            buffer, start = b"".join(parts), 0
            while n - start >= block_size:
                yield index, buffer[start:start + block_size]
                start += block_size
            parts, n = ([buffer[start:]] if start < n else []), n - start
    if n:
        yield index, b"".join(parts)


def read_sequences(path):
    """Yield (seqid, sequence bytes) for every record (whole sequences: use where needed)."""
    records = scan(path)
    current, parts = None, []
    for index, block in iter_blocks(path, 1 << 24):
        if index != current:
            if current is not None:
                yield records[current].seqid, b"".join(parts)
            current, parts = index, []
        parts.append(block)
    if current is not None:
        yield records[current].seqid, b"".join(parts)
