"""lib/helixtune/fasta.py reads in big pieces: lines and blocks must not depend on where the
pieces end (checked with tiny read sizes against a plain line-by-line reading)."""
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helixtune import fasta

TEXT = st.lists(st.sampled_from([b">s1 x", b">s2", b"ACGT", b"acgtn", b"A" * 40, b"", b"CC \r"]),
                max_size=12).map(lambda lines: b"\n".join(lines)) | st.binary(max_size=60).filter(
    lambda b: not b.startswith(b"\x1f\x8b"))  # (that would be read as gzip)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, read_size=st.integers(1, 16), newline_at_end=st.booleans())
def test_lines_independent_of_read_size(tmp_path_factory, monkeypatch, text, read_size, newline_at_end):
    text += b"\n" if newline_at_end else b""
    path = tmp_path_factory.mktemp("lines") / "x.fa"
    path.write_bytes(text)
    monkeypatch.setattr(fasta, "_READ_SIZE", read_size)
    expected = [(i, line.rstrip()) for i, line in enumerate(io.BytesIO(text), 1)]
    assert list(fasta._lines(path)) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seqs=st.lists(st.text("ACGTN", min_size=1, max_size=50), min_size=1, max_size=4),
       block=st.integers(1, 20), width=st.integers(1, 15), read_size=st.integers(1, 32))
def test_blocks(tmp_path_factory, monkeypatch, seqs, block, width, read_size):
    path = tmp_path_factory.mktemp("blocks") / "x.fa"
    path.write_text("".join(f">s{i}\n" + "\n".join(s[j:j + width] for j in range(0, len(s), width)) + "\n"
                            for i, s in enumerate(seqs)))
    monkeypatch.setattr(fasta, "_READ_SIZE", read_size)
    expected = [(i, s[j:j + block].encode()) for i, s in enumerate(seqs) for j in range(0, len(s), block)]
    assert list(fasta.iter_blocks(path, block)) == expected
    assert [r.length for r in fasta.scan(path)] == [len(s) for s in seqs]
