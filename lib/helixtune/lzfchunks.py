"""Build HDF5 chunks (shuffle + lzf filters) of piecewise-constant int64 rows without per-byte work.

Coverage rows are long runs of equal values. h5py's filter pipeline shuffles every 8-byte element
into 8 byte planes and lzf-compresses them, which costs more than counting the reads. Here a row is
given as runs (value, length); each byte plane is then also a list of runs, and every run is
written as LZF tokens directly: its first byte as a literal, the rest as back-references of
distance 1 (the LZF decoder copies byte by byte, so such a reference repeats the previous byte).
Short runs become literals, grouped into packets of at most 32 bytes. The result is a valid LZF
stream (liblzf format, as h5py's lzf filter decodes it) of the shuffled row, written with
``write_direct_chunk``. Work is proportional to the number of runs, never to the row length.

LZF tokens: literal packet = ctrl ``n-1`` (0..31) + n bytes; back-reference of length m (3..264)
and distance 1 = ``(m-2)<<5, 0`` for m <= 8, else ``0xE0, m-9, 0``.
"""
import numpy as np

#: Longest back-reference LZF can express, and the shortest.
MAX_REF, MIN_REF = 264, 3
MAX_LITERAL = 32
ITEMSIZE = 8  # int64


def encode_runs(values, lengths, segments, n_segments):
    """LZF-encode byte runs, one independent stream per segment.

    values: uint8 (R,), lengths: int64 (R,) > 0, segments: int64 (R,) non-decreasing segment index
    of each run. Returns (buffer uint8, offsets int64 (n_segments + 1,)): segment s is
    ``buffer[offsets[s]:offsets[s + 1]]`` (empty for segments without runs).
    """
    values = np.asarray(values, dtype=np.uint8)
    lengths = np.asarray(lengths, dtype=np.int64)
    segments = np.asarray(segments, dtype=np.int64)
    if len(values) == 0:
        return np.zeros(0, np.uint8), np.zeros(n_segments + 1, np.int64)
    # Merge neighbouring runs of the same byte within a segment.
    first = np.ones(len(values), bool)
    first[1:] = (values[1:] != values[:-1]) | (segments[1:] != segments[:-1])
    keep = np.flatnonzero(first)
    values, segments = values[keep], segments[keep]
    lengths = np.add.reduceat(lengths, keep)
    last_of_seg = np.ones(len(values), bool)
    last_of_seg[:-1] = segments[1:] != segments[:-1]

    # Each run: `lit` literal bytes (all equal to its value) then back-references of `ref` bytes.
    back = lengths - 1
    long = back >= MIN_REF
    n_full = np.where(long, back // MAX_REF, 0)
    rem = np.where(long, back % MAX_REF, 0)
    small_rem = long & (rem < MIN_REF)          # 1 or 2 leftover bytes: emit them as literals
    lit = np.where(long, 1 + np.where(small_rem, rem, 0), lengths)
    tail = np.where(long & ~small_rem, rem, 0)  # the last, shorter back-reference (0 = none)
    ref_bytes = 3 * n_full + np.where(tail == 0, 0, np.where(tail <= 8, 2, 3))

    # Stretches of literals end at every run followed by back-references and at segment ends.
    ends = long | last_of_seg
    stretch = np.concatenate([[0], np.cumsum(ends)[:-1]])
    n_stretch = int(stretch[-1]) + 1
    S = np.bincount(stretch, weights=lit, minlength=n_stretch).astype(np.int64)
    packets = -(-S // MAX_LITERAL)
    end_run = np.flatnonzero(ends)             # the run that closes each stretch
    stretch_refs = ref_bytes[end_run]
    size = S + packets + stretch_refs
    out_start = np.concatenate([[0], np.cumsum(size)])
    out = np.empty(int(out_start[-1]), np.uint8)

    # Literal packet headers.
    p_stretch = np.repeat(np.arange(n_stretch), packets)
    p_index = np.arange(len(p_stretch)) - np.repeat(np.cumsum(packets) - packets, packets)
    out[out_start[p_stretch] + 33 * p_index] = (
        np.minimum(MAX_LITERAL, S[p_stretch] - MAX_LITERAL * p_index) - 1)
    # Literal bytes.
    l_stretch = np.repeat(stretch, lit)
    q = np.arange(len(l_stretch)) - np.repeat(np.cumsum(S) - S, S)
    out[out_start[l_stretch] + q + q // MAX_LITERAL + 1] = np.repeat(values, lit)
    # Back-references after each stretch: full ones, then the tail.
    ref_start = out_start[:-1] + S + packets
    nf = n_full[end_run]
    f_stretch = np.repeat(np.arange(n_stretch), nf)
    f_index = np.arange(len(f_stretch)) - np.repeat(np.cumsum(nf) - nf, nf)
    pos = ref_start[f_stretch] + 3 * f_index
    out[pos] = 0xE0
    out[pos + 1] = MAX_REF - 9
    out[pos + 2] = 0
    t = tail[end_run]
    has = np.flatnonzero(t)
    pos = ref_start[has] + 3 * nf[has]
    t = t[has]
    short = t <= 8
    out[pos[short]] = (t[short] - 2) << 5
    out[pos[short] + 1] = 0
    out[pos[~short]] = 0xE0
    out[pos[~short] + 1] = t[~short] - 9
    out[pos[~short] + 2] = 0

    # Segment offsets: a segment's stretches are contiguous.
    seg_of_stretch = segments[end_run]
    seg_end = np.zeros(n_segments, np.int64)
    np.maximum.at(seg_end, seg_of_stretch, out_start[1:])
    counts = np.bincount(seg_of_stretch, minlength=n_segments)
    offsets = np.zeros(n_segments + 1, np.int64)
    offsets[1:] = np.maximum.accumulate(np.where(counts > 0, seg_end, 0))
    return out, offsets


def row_chunks(run_values, run_lengths, run_rows, n_rows):
    """Raw chunks (shuffle, then lzf) of int64 rows given as runs, for ``write_direct_chunk``.

    run_values: int64 (R,), run_lengths (R,), run_rows (R,) non-decreasing row index. Each row's
    runs must add up to the row length. Returns a list of ``n_rows`` bytes objects.

    Byte planes above the largest value hold only 0 (and 0xFF where a value is -1): they are the
    same for every such plane of a row, so they are encoded once per row and repeated.
    """
    run_values = np.asarray(run_values, np.int64)
    run_lengths = np.asarray(run_lengths, np.int64)
    run_rows = np.asarray(run_rows, np.int64)
    if len(run_values) and run_values.min() < -1:
        K = ITEMSIZE
    else:
        top = int(run_values.max()) if len(run_values) else 0
        K = min(ITEMSIZE, (max(top, 0).bit_length() + 7) // 8)
    per_row = np.bincount(run_rows, minlength=n_rows)
    row_first = np.concatenate([[0], np.cumsum(per_row)])
    # Planes 0..K-1: segments (row, plane) in row-major order; each repeats the row's runs.
    seg_len = np.repeat(per_row, K)
    seg_first = np.repeat(row_first[:-1], K)
    total = int(seg_len.sum())
    idx = (np.repeat(seg_first, seg_len)
           + np.arange(total) - np.repeat(np.cumsum(seg_len) - seg_len, seg_len))
    seg = np.repeat(np.arange(n_rows * K), seg_len)
    plane = (seg % K) if K else seg
    raw = run_values.view(np.uint64)[idx]
    values = ((raw >> (8 * plane).astype(np.uint64)) & np.uint64(0xFF)).astype(np.uint8)
    buf, offsets = encode_runs(values, run_lengths[idx], seg, n_rows * K)
    data = buf.tobytes()
    row_off = (offsets[::K] if K else np.zeros(n_rows + 1, np.int64)).tolist()  # ints slice fast
    if K == ITEMSIZE:
        return [data[row_off[r]:row_off[r + 1]] for r in range(n_rows)]
    # Planes K..7: 0xFF where the value is -1, else 0; one encoding per row, repeated.
    simple, s_off = encode_runs(np.where(run_values == -1, 0xFF, 0), run_lengths, run_rows, n_rows)
    simple = simple.tobytes()
    s_off = s_off.tolist()
    reps = ITEMSIZE - K
    return [data[row_off[r]:row_off[r + 1]] + simple[s_off[r]:s_off[r + 1]] * reps
            for r in range(n_rows)]


def lzf_decompress(data, out_size):
    """Reference LZF decoder (pure Python, for tests)."""
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
        else:
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            if ref < 0:
                raise ValueError("LZF back-reference before the start")
            for _ in range(length + 2):
                out.append(out[ref])
                ref += 1
    if len(out) != out_size:
        raise ValueError(f"LZF stream decodes to {len(out)} bytes, expected {out_size}")
    return bytes(out)
