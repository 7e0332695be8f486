"""BAM reading for add_ngs_coverage.py: the header, each reference's span from a BAI/CSI index,
and the flag, position and CIGAR of every record of one reference as numpy arrays.

Written from the SAM/BAM format specification (v1, §4: BGZF, BAM records, BAI, CSI). BGZF blocks
are inflated by libdeflate, which checks each block's CRC32 and size; records are found by a
short Python loop over their lengths and every field is then read for all records at once. This
is what makes counting faster than iterating pysam ``AlignedSegment`` objects; pysam stays the
tool for what is rare (indexing, sorting, SAM/CRAM input).
"""
import io
import os
import struct

import deflate
import numpy as np

from helixtune import cli

#: CIGAR operation codes (BAM): M I D N S H P = X
MATCH, INS, DEL, SKIP, SOFT_CLIP, HARD_CLIP, PAD, EQUAL, DIFF = range(9)
#: Compressed bytes read at a time, and most inflated bytes handed on at a time (plus one block).
READ_SIZE, CHUNK_SIZE = 1 << 20, 4 << 20
#: Largest record accepted (a larger length means a corrupt file or a stale index).
MAX_RECORD = 1 << 28
_BAI_PSEUDO_BIN = 37450
_I32 = struct.Struct("<i")
_BAI_BIN, _CSI_BIN = struct.Struct("<Ii"), struct.Struct("<IQi")


class BamError(cli.UserError):
    """The BAM file is damaged or its index does not match it."""


class NotBamError(BamError):
    """The file is not a BGZF-compressed BAM file (it may be SAM or CRAM)."""


def _blocks(fh, path, limit=None, step=None):
    """Inflate the BGZF blocks of ``fh`` from its current position, ``step`` (READ_SIZE) bytes at
    a time, up to the end of the file or up to the block at file offset ``limit``, that included.

    Yields the inflated data of whole blocks, CHUNK_SIZE bytes or a little more at a time.
    """
    pending = b""
    offset = fh.tell()
    step = step or READ_SIZE
    while True:
        want = step if limit is None else min(step, limit + (1 << 16) - fh.tell())
        chunk = fh.read(want) if want > 0 else b""
        data = pending + chunk
        out, inflated, p, n = [], 0, 0, len(data)
        while p + 18 <= n:
            if data[p:p + 4] != b"\x1f\x8b\x08\x04" or data[p + 12:p + 14] != b"BC":
                raise BamError(f"{path}: not BGZF-compressed at byte {offset + p}")
            size = int.from_bytes(data[p + 16:p + 18], "little") + 1
            if p + size > n:
                break
            try:
                out.append(deflate.gzip_decompress(data[p:p + size]))
            except deflate.DeflateError:
                raise BamError(f"{path}: damaged BGZF block at byte {offset + p} (checksum or "
                               "size mismatch)") from None
            p += size
            inflated += len(out[-1])
            if inflated >= CHUNK_SIZE:
                yield b"".join(out)
                out, inflated = [], 0
        if out:
            yield b"".join(out)
        offset += p
        pending = data[p:]
        if not chunk:
            if pending and want > 0:
                raise BamError(f"{path}: truncated: {len(pending)} bytes after the last whole "
                               "BGZF block")
            return


def read_header(path):
    """The reference names and lengths and the header text of a BAM file."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"\x1f\x8b\x08\x04":
            raise NotBamError(f"{path}: not a BAM file (no BGZF header)")
        fh.seek(0)
        data = b""
        for inflated in _blocks(fh, path, step=1 << 16):
            data += inflated
            if len(data) >= 12:
                if data[:4] != b"BAM\x01":
                    raise NotBamError(f"{path}: not a BAM file (compressed, but no BAM magic)")
                refs = _parse_references(data)
                if refs is not None:
                    text = data[8:8 + int.from_bytes(data[4:8], "little")]
                    return text.decode(errors="replace"), refs
    raise BamError(f"{path}: truncated BAM header")


def _parse_references(data):
    """[(name, length)] from the inflated start of a BAM file, or None if it needs more data."""
    p = 8 + int.from_bytes(data[4:8], "little")
    if p + 4 > len(data):
        return None
    n_ref, p = int.from_bytes(data[p:p + 4], "little"), p + 4
    refs = []
    for _ in range(n_ref):
        if p + 4 > len(data):
            return None
        l_name = int.from_bytes(data[p:p + 4], "little")
        if p + 8 + l_name > len(data):
            return None
        name = data[p + 4:p + 3 + l_name].decode(errors="replace")
        refs.append((name, int.from_bytes(data[p + 4 + l_name:p + 8 + l_name], "little")))
        p += 8 + l_name
    return refs


def find_index(path):
    """The index file htslib would use for ``path`` (x.bam.bai, x.bai, x.bam.csi, x.csi) or None."""
    stem = path[:-4] if path.endswith(".bam") else None
    for candidate in (path + ".bai", stem and stem + ".bai", path + ".csi", stem and stem + ".csi"):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def reference_spans(index_path, n_ref):
    """Per reference: (first, last) virtual offsets of its records, or None without records."""
    with open(index_path, "rb") as fh:
        data = fh.read()
    if data[:4] == b"\x1f\x8b\x08\x04":  # CSI is BGZF-compressed
        data = b"".join(_blocks(io.BytesIO(data), index_path))
    try:
        if data[:4] == b"BAI\x01":
            return _spans(data, 4, n_ref, _BAI_PSEUDO_BIN, False, index_path)
        if data[:4] == b"CSI\x01":
            depth = _I32.unpack_from(data, 8)[0]
            l_aux = _I32.unpack_from(data, 12)[0]
            pseudo = ((1 << ((depth + 1) * 3)) - 1) // 7 + 1
            return _spans(data, 16 + l_aux, n_ref, pseudo, True, index_path)
    except struct.error:
        raise BamError(f"{index_path}: truncated index") from None
    raise BamError(f"{index_path}: not a BAI or CSI index")


def _spans(data, p, n_ref, pseudo_bin, csi, index_path):
    """The spans of the ``n_ref`` references whose bins begin at byte ``p``."""
    if _I32.unpack_from(data, p)[0] != n_ref:
        raise BamError(f"{index_path}: the index lists another number of references than the "
                       "BAM header; re-index the BAM file with samtools index")
    p += 4
    spans = []
    for _ in range(n_ref):
        n_bin, p = _I32.unpack_from(data, p)[0], p + 4
        first = last = None
        for _ in range(n_bin):
            if csi:  # bin, loffset, n_chunk
                bin_id, _, n_chunk = _CSI_BIN.unpack_from(data, p)
                p += 16
            else:  # bin, n_chunk
                bin_id, n_chunk = _BAI_BIN.unpack_from(data, p)
                p += 8
            if bin_id != pseudo_bin and n_chunk:
                chunks = np.frombuffer(data, "<u8", 2 * n_chunk, p)
                lo, hi = int(chunks[0::2].min()), int(chunks[1::2].max())
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
            p += 16 * n_chunk
        if not csi:
            p += 4 + 8 * _I32.unpack_from(data, p)[0]  # the linear index
        spans.append(None if first is None else (first, last))
    return spans


def alignments(path, tid, span):
    """Flag, position and CIGAR of the records of reference ``tid`` in ``span`` (virtual
    offsets), in chunks of whole records from about CHUNK_SIZE inflated bytes.

    Yields per chunk (flag, pos) per record and (record index in the chunk, op, length) per
    CIGAR operation, int64.
    """
    begin, end = span
    first = True
    with open(path, "rb") as fh:
        fh.seek(begin >> 16)
        carry, skip = b"", begin & 0xFFFF
        for inflated in _blocks(fh, path, limit=end >> 16):
            data = carry + inflated[skip:] if carry else inflated[skip:]
            skip = 0
            starts, stop = _record_starts(data, path)
            carry = data[stop:]
            if not len(starts):
                continue
            refid, pos, flag, read, op, length = _fields(data, starts, path)
            same = refid == tid
            if same.all():
                yield flag, pos, read, op, length
                first = False
                continue
            if first and not same[0]:
                raise BamError(f"{path}: the index does not match the file (the first record "
                               "of a reference is not there); re-index it with samtools index")
            n = int(np.argmin(same))  # the records before the next reference's
            ours = read < n
            yield flag[:n], pos[:n], read[ours], op[ours], length[ours]
            return


def _record_starts(data, path):
    """Offsets of the complete records in ``data`` and where the incomplete rest begins."""
    starts, p, n = [], 0, len(data)
    add, unpack = starts.append, _I32.unpack_from
    while p + 4 <= n:
        size = unpack(data, p)[0]
        if not 32 <= size <= MAX_RECORD:
            raise BamError(f"{path}: damaged BAM record (length {size}); if the index is older "
                           "than the BAM file, re-index it with samtools index")
        if p + 4 + size > n:
            break
        add(p)
        p += 4 + size
    return np.array(starts, np.int64), p


def _gather32(a, at, width=1):
    """``width`` consecutive little-endian int32 values at each byte offset ``at`` of ``a``."""
    raw = a[at[:, None] + np.arange(4 * width)]
    return raw.view("<i4").astype(np.int64).reshape(len(at), width)


def _fields(data, starts, path):
    """(ref id, pos, flag) per record and (record, op, length) per CIGAR op of these records."""
    a = np.frombuffer(data, np.uint8)
    # block_size, refID, pos, l_read_name|mapq|bin, n_cigar_op|flag, l_seq
    size, refid, pos, name_word, cigar_word, l_seq = _gather32(a, starts, 6).T
    l_name = name_word & 0xFF
    n_cigar, flag = cigar_word & 0xFFFF, (cigar_word >> 16) & 0xFFFF
    fixed = 32 + l_name + 4 * n_cigar + (l_seq + 1) // 2 + l_seq
    bad = (fixed > size) | (l_seq < 0)
    if bad.any():
        raise BamError(f"{path}: damaged BAM record (length {int(size[bad][0])}, fields need "
                       f"{int(fixed[bad][0])}); if the index is older than the BAM file, "
                       "re-index it with samtools index")
    cigar_at = starts + 36 + l_name
    first = np.cumsum(n_cigar) - n_cigar
    at = np.repeat(cigar_at - 4 * first, n_cigar) + 4 * np.arange(int(n_cigar.sum()))
    words = _gather32(a, at).ravel() & 0xFFFFFFFF
    # Over 65,535 operations: the CIGAR is kSmN (k = read length) and the real one is in tag CG.
    long = np.flatnonzero((n_cigar == 2) & (l_seq > 0))
    long = long[words[first[long]] == (l_seq[long] << 4 | SOFT_CLIP)]
    long = long[(words[first[long] + 1] & 0xF) == SKIP]
    if len(long):
        pieces, done = [], 0
        for k in long:
            tags_at = int(cigar_at[k] + 8 + (l_seq[k] + 1) // 2 + l_seq[k])
            cg = _cg_tag(data, tags_at, int(starts[k]) + 4 + int(size[k]))
            if cg is not None:
                pieces += [words[done:first[k]], cg]
                done = first[k] + 2
                n_cigar[k] = len(cg)
        words = np.concatenate(pieces + [words[done:]])
    op, length = words & 0xF, words >> 4
    if len(op) and op.max() > DIFF:
        raise BamError(f"{path}: invalid CIGAR operation code {int(op.max())}")
    read = np.repeat(np.arange(len(starts)), n_cigar)
    return refid, pos, flag, read, op, length


_TAG_SIZE = {ord(c): n for c, n in zip("AcCsSiIf", (1, 1, 1, 2, 2, 4, 4, 4))}


def _cg_tag(data, p, end):
    """The CG:B,I array (uint32 CIGAR words, int64) among the tags in data[p:end], or None."""
    try:
        return _find_cg(data, p, end)
    except (KeyError, ValueError, IndexError):  # malformed tags: keep the CIGAR as it is
        return None


def _find_cg(data, p, end):
    while p + 3 <= end:
        tag, kind = data[p:p + 2], data[p + 2]
        p += 3
        if kind in _TAG_SIZE:
            p += _TAG_SIZE[kind]
        elif kind in b"ZH":
            p = data.index(b"\0", p, end) + 1
        elif kind == ord("B"):
            sub, count = data[p], int.from_bytes(data[p + 1:p + 5], "little")
            if tag == b"CG" and sub == ord("I"):
                return np.frombuffer(data, "<u4", count, p + 5).astype(np.int64)
            p += 5 + count * _TAG_SIZE[sub]
        else:
            return None
    return None
