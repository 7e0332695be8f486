"""fasta2h5.py: golden files from Helixer 0.3.6, --write-by independence, bad input."""
import gzip

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helixtune.sequence import IUPAC
from helixtune_tools import fasta2h5

STORAGE = ("dtype", "shape", "chunks", "compression", "compression_opts", "shuffle", "maxshape")


def assert_same_datasets(ours, ref, names=("X", "seqids", "species", "start_ends")):
    with h5py.File(ours) as a, h5py.File(ref) as b:
        for name in names:
            x, y = a["data"][name], b["data"][name]
            for prop in STORAGE:
                assert getattr(x, prop) == getattr(y, prop), (name, prop)
            np.testing.assert_array_equal(x[:], y[:], err_msg=name)


@pytest.mark.realdata
def test_helixerpost_example(shared_data, tmp_path, run_tool):
    d = shared_data / "helixer_h5" / "helixerpost_example"
    out = tmp_path / "genome_data.h5"
    code, err = run_tool(fasta2h5.main, ["--fasta-path", d / "Oryza_brachyantha_NC_023163.2_1-21384.fa.gz",
                                         "--species", "Oryza_brachyantha", "--subsequence-length", 21384,
                                         "--h5-output-path", out])
    assert code == 0, err
    assert_same_datasets(out, d / "genome_data.h5")
    with h5py.File(out) as h5:
        assert set(h5.attrs) == {"timestamp", "input_path", "geenuff_commit", "helixer_commit"}


@pytest.mark.realdata
@pytest.mark.parametrize("name,fasta,species,length", [
    ("mpusilla", "micromonas_pusilla/mini_test_data.fa.gz", "MpusillaCCMP1545", 21384),
    ("athaliana", "arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz", "athaliana", 64152),
    ("spombe_chrI", "schizosaccharomyces_pombe/sp_chrI.fa.gz", "sp_chrI", 21384),
])
def test_equals_upstream_0_3_6(shared_data, tmp_path, run_tool, name, fasta, species, length):
    out = tmp_path / f"{name}.h5"
    code, err = run_tool(fasta2h5.main, ["--fasta-path", shared_data / fasta, "--species", species,
                                         "--subsequence-length", length, "--h5-output-path", out,
                                         "--quiet"])
    assert code == 0, err
    assert_same_datasets(out, shared_data / "helixer_h5" / "upstream_0.3.6" / f"{name}.fasta2h5.h5")


@pytest.mark.realdata
def test_mini_test_data_rows(shared_data, tmp_path, run_tool):
    """scaffold_20/21 of Helixer's own test file are NW_003315901.1/NW_003315902.1 (L 20000)."""
    out = tmp_path / "mini.h5"
    code, err = run_tool(fasta2h5.main, ["--fasta-path", shared_data / "micromonas_pusilla/mini_test_data.fa.gz",
                                         "--species", "MpusillaCCMP1545", "--subsequence-length", 20000,
                                         "--h5-output-path", out])
    assert code == 0, err
    assert "not a multiple of 9" in err
    with h5py.File(out) as a, h5py.File(shared_data / "helixer_h5/helixer_testdata/mini_test_data.h5") as b:
        ours = {(s, tuple(se)): i for i, (s, se) in enumerate(zip(a["data/seqids"][:], a["data/start_ends"][:]))}
        for new, old in ((b"NW_003315901.1", b"scaffold_20"), (b"NW_003315902.1", b"scaffold_21")):
            rows = np.flatnonzero(b["data/seqids"][:] == old)
            assert len(rows) == 2
            for r in rows:
                key = (new, tuple(b["data/start_ends"][r]))
                np.testing.assert_array_equal(a["data/X"][ours[key]], b["data/X"][r])


def _write_fasta(path, records, compress=False):
    text = "".join(f">{name} description\n" + "\n".join(seq[i:i + 7] for i in range(0, len(seq), 7)) + "\n"
                   for name, seq in records)
    if compress:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)


def _decode(h5path):
    """Rebuild each sequence's plus strand from the file and check the minus rows mirror it."""
    codes = np.array(list(IUPAC))
    table = np.array([IUPAC[c] for c in codes], dtype=np.float16)
    with h5py.File(h5path) as h5:
        X, ids, se = h5["data/X"][:], h5["data/seqids"][:], h5["data/start_ends"][:]
    seqs = {}
    for x, sid, (s, e) in zip(X, ids, se):
        n = abs(int(e) - int(s))
        assert not x[n:].any(), "padding must be zero and at the end of the row"
        idx = (x[:n, None, :] == table[None]).all(-1).argmax(-1)
        bases = "".join(codes[idx])
        if s < e:
            seqs.setdefault(sid, {})[s] = bases
        else:
            comp = {"C": "G", "G": "C", "A": "T", "T": "A", "Y": "R", "R": "Y", "W": "W", "S": "S",
                    "K": "M", "M": "K", "D": "H", "H": "D", "V": "B", "B": "V", "N": "N"}
            seqs.setdefault((sid, "minus"), {})[e] = "".join(comp[b] for b in reversed(bases))
    return seqs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 130), min_size=1, max_size=4),
       L=st.integers(5, 40), write_by_rows=st.integers(1, 5), data=st.data())
def test_write_by_does_not_change_results(tmp_path_factory, lengths, L, write_by_rows, data):
    tmp = tmp_path_factory.mktemp("wb")
    alphabet = "ACGTNacgtRYKMSWBDHV"
    records = [(f"s{i}", data.draw(st.text(alphabet, min_size=n, max_size=n))) for i, n in enumerate(lengths)]
    fasta = tmp / "g.fa.gz"
    _write_fasta(fasta, records, compress=True)
    outs = []
    for write_by in (L, L * write_by_rows, 10 ** 6):
        out = tmp / f"o{write_by}.h5"
        assert fasta2h5.main(["--fasta-path", str(fasta), "--species", "sp", "--subsequence-length", str(L),
                              "--write-by", str(write_by), "--h5-output-path", str(out), "--quiet"]) == 0
        with h5py.File(out) as h5:
            outs.append({k: h5["data"][k][:] for k in h5["data"]})
    for other in outs[1:]:
        for k in outs[0]:
            np.testing.assert_array_equal(outs[0][k], other[k])
    decoded = _decode(tmp / f"o{L}.h5")
    for name, seq in records:
        plus = decoded[name.encode()]
        minus = decoded[(name.encode(), "minus")]
        assert "".join(plus[k] for k in sorted(plus)) == seq.upper()
        assert "".join(minus[k] for k in sorted(minus)) == seq.upper()


# Helixer's one-hot order is C, A, T, G (spec); IUPAC codes are not used in this test.
ONE_HOT = {"C": [1, 0, 0, 0], "A": [0, 1, 0, 0], "T": [0, 0, 1, 0], "G": [0, 0, 0, 1]}


def test_lengths_around_L(tmp_path):
    """Rows of sequences shorter than, equal to and longer than L = 9, checked against a hand
    list of row coordinates and a one-hot encoding written here."""
    records = [("short", "ACG"), ("exact", "ACGTACGTA"), ("longer", "ACGTACGTACG")]
    fasta = tmp_path / "g.fa"
    _write_fasta(fasta, records)
    out = tmp_path / "o.h5"
    assert fasta2h5.main(["--fasta-path", str(fasta), "--species", "sp", "--subsequence-length", "9",
                          "--h5-output-path", str(out), "--quiet"]) == 0
    with h5py.File(out) as h5:
        se = h5["data/start_ends"][:].tolist()
        X, seqids = h5["data/X"][:], h5["data/seqids"][:].tolist()
    assert se == [[0, 3], [3, 0], [0, 9], [9, 0], [0, 9], [9, 11], [11, 9], [9, 0]]
    assert seqids == [b"short"] * 2 + [b"exact"] * 2 + [b"longer"] * 4
    complement = str.maketrans("ACGT", "TGCA")
    expected = np.zeros((8, 9, 4), dtype=np.float16)
    for row, (name, (s, e)) in enumerate(zip(seqids, se)):
        seq = dict(records)[name.decode()]
        bases = seq[s:e] if s < e else seq[e:s].translate(complement)[::-1]
        expected[row, :len(bases)] = [ONE_HOT[b] for b in bases]  # padding: zeros at the end
    assert X.dtype == np.float16
    np.testing.assert_array_equal(X, expected)


BAD_INPUTS = [
    ("not_fasta", "hello world\nACGT\n", "not a FASTA file"),
    ("empty", "", "empty FASTA file"),
    ("empty_seq", ">a\n>b\nACGT\n", "sequence 'a' is empty"),
    ("empty_last", ">a\nACGT\n>b\n", "sequence 'b' is empty"),
    ("duplicate", ">a\nACGT\n>a x\nAC\n", "duplicate sequence ID 'a'"),
    ("bad_char", ">a\nACGT\nACXG\n", "line 3: sequence 'a' position 7: character 'X'"),
    ("long_id", ">" + "a" * 51 + "\nACGT\n", "51 bytes long"),
]


@pytest.mark.parametrize("name,text,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_fasta(tmp_path, run_tool, name, text, message):
    fasta = tmp_path / f"{name}.fa"
    fasta.write_text(text)
    out = tmp_path / "out.h5"
    code, err = run_tool(fasta2h5.main, ["--fasta-path", fasta, "--species", "sp", "--h5-output-path", out])
    assert code == 1
    assert message in err and str(fasta) in err
    assert list(tmp_path.iterdir()) == [fasta], "no output (or temporary file) may be left"


@pytest.mark.parametrize("args,message", [
    (["--subsequence-length", "0"], "not a positive integer"),
    (["--subsequence-length", "abc"], "not an integer"),
    (["--write-by", "10", "--subsequence-length", "20"], "must be at least"),
    (["--species", "s" * 26], "26 bytes long"),
])
def test_bad_options(tmp_path, run_tool, args, message):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nACGT\n")
    out = tmp_path / "out.h5"
    base = ["--fasta-path", fasta, "--species", "sp", "--h5-output-path", out]
    code, err = run_tool(fasta2h5.main, base + args)
    assert code in (1, 2) and message in err
    assert not out.exists()


def test_output_must_end_in_h5(tmp_path, run_tool):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nACGT\n")
    code, err = run_tool(fasta2h5.main, ["--fasta-path", fasta, "--species", "sp", "--h5-output-path", tmp_path / "o.hdf"])
    assert code == 2 and "must end in .h5" in err


def test_unwritable_output(tmp_path, run_tool):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nACGT\n")
    code, err = run_tool(fasta2h5.main, ["--fasta-path", fasta, "--species", "sp",
                                         "--h5-output-path", tmp_path / "missing_dir" / "o.h5"])
    assert code == 1 and "does not exist" in err


def test_missing_input(tmp_path, run_tool):
    code, err = run_tool(fasta2h5.main, ["--fasta-path", tmp_path / "nope.fa", "--species", "sp",
                                         "--h5-output-path", tmp_path / "o.h5"])
    assert code == 1 and "nope.fa" in err
    assert not (tmp_path / "o.h5").exists()


def test_lowercase_and_lzf(tmp_path):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nacgtNNacgt\n")
    out = tmp_path / "o.h5"
    assert fasta2h5.main(["--fasta-path", str(fasta), "--species", "sp", "--subsequence-length", "9",
                          "--compression", "lzf", "--h5-output-path", str(out), "--quiet"]) == 0
    with h5py.File(out) as h5:
        assert h5["data/X"].compression == "lzf"
        np.testing.assert_array_equal(h5["data/X"][0, 0], [0, 1, 0, 0])
