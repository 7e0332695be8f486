"""Streaming FASTA reading with strict validation (plain, gzip or bgzip; detected by content)."""
import dataclasses
import gzip
import re

import numpy as np

from helixtune.cli import UserError
from helixtune.sequence import VALID_BYTE, VALID_BYTES

_GZIP_MAGIC = b"\x1f\x8b"
_READ_SIZE = 1 << 22  # bytes decompressed and handled at a time
_HEADER = re.compile(rb"^>[^\n]*", re.M)
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.rstrip() removes
_SEQUENCE_BYTES = VALID_BYTES + b"\n"


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


def _pieces(path):
    """(number of its first line, bytes) of consecutive runs of whole lines, about
    ``_READ_SIZE`` bytes each; every run ends with a newline except perhaps the file's last."""
    try:
        with open_binary(path) as fh:
            lineno, pending = 1, []
            while data := fh.read(_READ_SIZE):
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line ends here (a very long line): join once, at its end
                    pending.append(data)
                    continue
                piece = b"".join(pending + [data[:cut]]) if pending else data[:cut]
                pending = [data[cut:]] if cut < len(data) else []
                yield lineno, piece
                lineno += piece.count(b"\n")
            if pending:
                yield lineno, b"".join(pending)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read FASTA: {e}") from None


def _segments(path):
    """(is header, first line number, bytes): header lines (right-stripped) and, between them,
    runs of other lines as they are in the file (newlines kept) to be handled in bulk."""
    for lineno, piece in _pieces(path):
        pos = 0
        for m in _HEADER.finditer(piece):
            if m.start() > pos:
                yield False, lineno, piece[pos:m.start()]
                lineno += piece.count(b"\n", pos, m.start())
            yield True, lineno, m.group().rstrip()
            lineno += 1
            pos = m.end() + 1
        if pos < len(piece):
            yield False, lineno, piece[pos:]


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
    for is_header, lineno, data in _segments(path):
        if is_header:
            line = data
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
        elif current is not None and not data.translate(None, _SEQUENCE_BYTES):
            current.length += len(data) - data.count(b"\n")  # the usual case: clean lines, in bulk
        elif (current is not None and not data.translate(None, _SEQUENCE_BYTES + b"\r")
              and data.count(b"\r") == data.count(b"\r\n")):  # the same with CRLF line ends
            current.length += len(data) - data.count(b"\n") - data.count(b"\r")
        else:  # line by line, for exact messages (and to allow trailing whitespace)
            for i, line in enumerate(data.split(b"\n")):
                line = line.rstrip()
                if not line:
                    continue
                if current is None:
                    raise UserError(f"{path}: line {lineno + i}: not a FASTA file "
                                    f"(expected a '>' header line, found {line[:20]!r})")
                if line.translate(None, VALID_BYTES):
                    _check_bases(path, current.seqid, lineno + i, line, current.length)
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
    for is_header, _, data in _segments(path):
        if is_header:
            if n:
                yield index, b"".join(parts)
                parts, n = [], 0
            index += 1
            continue
        # scan() allowed whitespace only at line ends, so deleting all of it joins the lines
        seq = data.translate(None, _WHITESPACE)
        if not seq:
            continue
        parts.append(seq)
        n += len(seq)
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
