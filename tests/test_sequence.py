"""lib/helixtune/sequence.py: the fast encoder equals the lookup table, and complementing the
byte codes equals reversing the one-hot channels (what fasta2h5's minus rows rely on)."""
import numpy as np

from helixtune.sequence import COMPLEMENT, ENCODE_TABLE, VALID_BYTE, VALID_BYTES, encode


def test_encode_equals_table_any_shape():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(encode(codes), ENCODE_TABLE[codes])
    grid = np.random.default_rng(1).integers(0, 256, (3, 5), dtype=np.uint8)
    assert encode(grid).shape == (3, 5, 4) and encode(grid).dtype == np.float16
    np.testing.assert_array_equal(encode(grid), ENCODE_TABLE[grid])
    np.testing.assert_array_equal(encode(b"ACGTN"), ENCODE_TABLE[np.frombuffer(b"ACGTN", np.uint8)])


def test_complement_is_channel_reversal():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(encode(COMPLEMENT[codes]), encode(codes)[:, ::-1])
    np.testing.assert_array_equal(COMPLEMENT[COMPLEMENT], codes)
    assert COMPLEMENT[0] == 0


def test_valid_bytes():
    assert set(VALID_BYTES) == set(np.flatnonzero(VALID_BYTE).tolist())
    assert b"ACGTNacgtnRYKMSWBDHV".translate(None, VALID_BYTES) == b""
    assert b"ACGU-*".translate(None, VALID_BYTES) == b"U-*"


def test_shuffled_encode_is_hdf5_shuffle_of_encode():
    """What RowWriter deflates for a row of data/X: h5layout.shuffled of the encoded codes."""
    from helixtune import h5layout
    codes = np.random.default_rng(2).integers(0, 256, 1000, dtype=np.uint8)
    expected = encode(codes).view(np.uint8).reshape(-1, 2).T.tobytes()
    assert h5layout.shuffled(encode(codes)).tobytes() == expected
