"""DNA encoding shared by the data tools: Helixer's one-hot C, A, T, G with IUPAC fractions."""
import numpy as np

#: Channel fractions (C, A, T, G) of every accepted code, as Helixer's numerify step defines them.
IUPAC = {
    "C": (1, 0, 0, 0), "A": (0, 1, 0, 0), "T": (0, 0, 1, 0), "G": (0, 0, 0, 1),
    "Y": (.5, 0, .5, 0), "R": (0, .5, 0, .5), "W": (0, .5, .5, 0), "S": (.5, 0, 0, .5),
    "K": (0, 0, .5, .5), "M": (.5, .5, 0, 0),
    "D": (0, .33, .33, .33), "V": (.33, .33, 0, .33), "H": (.33, .33, .33, 0),
    "B": (.33, 0, .33, .33), "N": (.25, .25, .25, .25),
}

#: 256-entry lookup table: byte -> float16 (C, A, T, G); upper and lower case (soft-masking).
ENCODE_TABLE = np.zeros((256, 4), dtype=np.float16)
#: True for bytes that are valid IUPAC codes.
VALID_BYTE = np.zeros(256, dtype=bool)
for _code, _fractions in IUPAC.items():
    for _c in (_code, _code.lower()):
        ENCODE_TABLE[ord(_c)] = _fractions
        VALID_BYTE[ord(_c)] = True
#: The valid bytes, for ``bytes.translate(None, VALID_BYTES)`` (empty result = all valid).
VALID_BYTES = bytes(np.flatnonzero(VALID_BYTE).tolist())
#: The four float16 channels of a code as one uint64: one 1-D ``take`` encodes (fast).
_ENCODE64 = ENCODE_TABLE.view(np.uint64).ravel()

#: byte -> byte of the complementary code (A<->T, C<->G, R<->Y, K<->M, B<->V, D<->H; S, W, N
#: and other bytes unchanged, case kept). encode(COMPLEMENT[c]) is encode(c) with the channels
#: reversed, so reverse-complementing codes before encoding equals Helixer's flip of the one-hot.
COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in ("AT", "CG", "RY", "KM", "BV", "DH"):
    for _x, _y in ((_a, _b), (_a.lower(), _b.lower())):
        COMPLEMENT[ord(_x)], COMPLEMENT[ord(_y)] = ord(_y), ord(_x)


def encode(seq):
    """One-hot encode ``seq`` (bytes or uint8 array of any shape) as float16 (..., 4) in
    C, A, T, G order; byte 0 (padding) encodes as all zeros."""
    codes = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, (bytes, bytearray)) else seq
    # mode="clip": uint8 codes are always in range, and it skips the slow bounds check
    return _ENCODE64.take(codes, mode="clip").view(np.float16).reshape(codes.shape + (4,))


def reverse_complement(onehot):
    """Minus strand of an encoded stretch: positions reversed, channels C,A,T,G -> G,T,A,C."""
    return onehot[::-1, ::-1]


def first_invalid(seq):
    """Index of the first byte of ``seq`` that is not an IUPAC code, or -1."""
    codes = np.frombuffer(seq, dtype=np.uint8) if isinstance(seq, (bytes, bytearray)) else seq
    bad = np.flatnonzero(~VALID_BYTE[codes])
    return int(bad[0]) if bad.size else -1
