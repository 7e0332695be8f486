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


def _reference_scan(path):
    """The plain line-by-line reading scan() must agree with: (seqid, length, line) or the error."""
    from helixtune.cli import UserError
    records, seen, current = [], {}, None
    for lineno, line in enumerate(open(path, "rb"), 1):
        line = line.rstrip()
        if not line:
            continue
        if line.startswith(b">"):
            if current is not None and current[1] == 0:
                return f"line {current[2]}: sequence {current[0]!r} is empty"
            seqid = line[1:].decode("utf-8", errors="replace").split(" ")[0]
            if not seqid:
                return f"line {lineno}: header without a sequence ID"
            if seqid in seen:
                return f"line {lineno}: duplicate sequence ID {seqid!r} (first at line {seen[seqid]})"
            seen[seqid] = lineno
            current = [seqid, 0, lineno]
            records.append(current)
        elif current is None:
            return f"line {lineno}: not a FASTA file"
        else:
            bad = line.translate(None, fasta.VALID_BYTES)
            if bad:
                return f"line {lineno}: sequence {current[0]!r} position {current[1] + line.index(bad[:1]) + 1}"
            current[1] += len(line)
    if current is None:
        return "empty FASTA file"
    if current[1] == 0:
        return f"line {current[2]}: sequence {current[0]!r} is empty"
    assert UserError
    return [tuple(r) for r in records]


LINES = st.sampled_from([b">s1 x", b">s2", b">s1", b">", b"> s3", b"ACGT", b"acgtn", b"A" * 30, b"", b"  ",
                         b"CC \r", b"GG\r", b"AC GT", b"ACU", b"\x0bA", b"RYKM\t"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, max_size=10), ending=st.sampled_from([b"\n", b"\r\n"]),
       newline_at_end=st.booleans(), read_size=st.integers(1, 24))
def test_scan_agrees_with_line_by_line(tmp_path_factory, monkeypatch, lines, ending, newline_at_end, read_size):
    from helixtune.cli import UserError
    text = ending.join(lines) + (ending if newline_at_end else b"")
    path = tmp_path_factory.mktemp("scan") / "x.fa"
    path.write_bytes(text)
    monkeypatch.setattr(fasta, "_READ_SIZE", read_size)
    expected = _reference_scan(path)
    try:
        got = [(r.seqid, r.length, r.line) for r in fasta.scan(path)]
    except UserError as e:
        assert isinstance(expected, str) and expected in str(e), (str(e), expected)
        return
    assert got == expected
    seqs = {}
    for index, block in fasta.iter_blocks(path, 7):
        seqs[index] = seqs.get(index, b"") + block
    ref, index = {}, -1
    for line in text.split(b"\n"):
        line = line.rstrip()
        if line.startswith(b">"):
            index += 1
        elif line:
            ref[index] = ref.get(index, b"") + line
    assert seqs == ref
