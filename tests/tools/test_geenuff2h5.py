"""geenuff2h5.py: equal to Helixer 0.3.6 / GeenuFF 0.3.2 reference files in every data/ dataset,
X equal to fasta2h5, --write-by independence (property test), options and bad input."""
import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geenuff_helpers import oracle, read_all, run_both, streams, write_case
from helixtune_tools import geenuff2h5, import2geenuff

STORAGE = ("dtype", "chunks", "compression", "compression_opts", "shuffle", "maxshape")
UPSTREAM = "helixer_h5/upstream_0.3.6"

REFERENCES = [
    ("mpusilla", "micromonas_pusilla/mini_test_data.fa.gz", "micromonas_pusilla/mini_test_data.gff3.gz",
     "MpusillaCCMP1545", 21384, "mpusilla.geenuff2h5.h5"),
    ("athaliana", "arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz",
     f"{UPSTREAM}/athaliana.upstream_accepted.gff3.gz", "athaliana", 64152, "athaliana.geenuff2h5.h5"),
    ("spombe_chrI", "schizosaccharomyces_pombe/sp_chrI.fa.gz", "schizosaccharomyces_pombe/sp_chrI.genes.gff3.gz",
     "sp_chrI", 21384, "spombe_chrI.geenuff2h5.rnaseq.h5"),
]


def _import_export(shared_data, tmp_path, fasta, gff, species, L, extra=()):
    db, h5 = tmp_path / "db.sqlite3", tmp_path / "out.h5"
    assert import2geenuff.main(["--gff3", str(shared_data / gff), "--fasta", str(shared_data / fasta),
                                "--species", species, "--db-path", str(db), "--quiet"]) == 0
    assert geenuff2h5.main(["--input-db-path", str(db), "--h5-output-path", str(h5),
                            "--subsequence-length", str(L), "--quiet", *extra]) == 0
    return db, h5


def _keys(h5):
    return [(s, tuple(int(v) for v in se)) for s, se in zip(h5["data/seqids"][:], h5["data/start_ends"][:])]


@pytest.mark.realdata
@pytest.mark.parametrize("name,fasta,gff,species,L,ref", REFERENCES, ids=[r[0] for r in REFERENCES])
def test_equals_upstream_0_3_6(shared_data, tmp_path, name, fasta, gff, species, L, ref):
    _, out = _import_export(shared_data, tmp_path, fasta, gff, species, L)
    with h5py.File(out) as a, h5py.File(shared_data / UPSTREAM / ref) as b:
        assert set(a["data"]) == set(b["data"])
        # same rows in the same order (sequences by descending length)
        assert _keys(a) == _keys(b)
        for key in b["data"]:
            x, y = a["data"][key], b["data"][key]
            for prop in STORAGE:
                assert getattr(x, prop) == getattr(y, prop), (key, prop)
            np.testing.assert_array_equal(x[:], y[:], err_msg=key)
        assert set(a.attrs) == {"timestamp", "input_path", "geenuff_commit", "helixer_commit"}


@pytest.mark.realdata
def test_tair10_original_differs_only_by_the_te_gene(shared_data, tmp_path):
    """The original TAIR10 file (protein lines, two-parent CDS, TE gene) imports; it differs from
    the upstream-accepted reference only in one row's sample_weights: the transposable-element
    gene AT2G01029 (non-coding, not exported) is a neighbour for the error-mask border of
    AT2G01021, so that mask stops at its half-way mark 8142 instead of 9292."""
    _, out = _import_export(shared_data, tmp_path, "arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz",
                            "arabidopsis_thaliana/at_tair10_1pct.shared.genes.gff3.gz", "athaliana", 64152)
    with h5py.File(out) as a, h5py.File(shared_data / UPSTREAM / "athaliana.geenuff2h5.h5") as b:
        assert _keys(a) == _keys(b)
        for key in b["data"]:
            x, y = a["data"][key][:], b["data"][key][:]
            if key != "sample_weights":
                np.testing.assert_array_equal(x, y, err_msg=key)
                continue
            rows, cols = np.nonzero(x != y)
            assert set(rows) == {18} and _keys(a)[18] == (b"Chr2", (0, 64152))
            assert (cols.min(), cols.max()) == (8142, 9291)
            assert x[18, 8142:9292].all() and not y[18, 8142:9292].any()


@pytest.mark.realdata
def test_x_equals_fasta2h5(shared_data, tmp_path):
    """X rows equal fasta2h5's rows for the same (seqid, start, end) (different row order)."""
    _, out = _import_export(shared_data, tmp_path, "micromonas_pusilla/mini_test_data.fa.gz",
                            "micromonas_pusilla/mini_test_data.gff3.gz", "MpusillaCCMP1545", 21384)
    with h5py.File(out) as a, h5py.File(shared_data / UPSTREAM / "mpusilla.fasta2h5.h5") as b:
        index = {k: i for i, k in enumerate(_keys(b))}
        order = [index[k] for k in _keys(a)]
        assert order != sorted(order), "geenuff2h5 sorts by length, fasta2h5 keeps file order"
        np.testing.assert_array_equal(a["data/X"][:], b["data/X"][:][order])


@pytest.mark.realdata
def test_write_by_modes_and_lzf(shared_data, tmp_path):
    db, ref = _import_export(shared_data, tmp_path, "micromonas_pusilla/mini_test_data.fa.gz",
                             "micromonas_pusilla/mini_test_data.gff3.gz", "MpusillaCCMP1545", 21384)
    want = read_all(ref)
    for extra in (["--write-by", "21384"], ["--write-by", "50000"], ["--compression", "lzf"]):
        out = tmp_path / "o.h5"
        assert geenuff2h5.main(["--input-db-path", str(db), "--h5-output-path", str(out), "--quiet",
                                *extra]) == 0
        got = read_all(out)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{extra} {k}")
        if extra[0] == "--compression":
            with h5py.File(out) as h5:
                assert h5["data/y"].compression == "lzf"
        out.unlink()
    out = tmp_path / "nox.h5"
    assert geenuff2h5.main(["--input-db-path", str(db), "--h5-output-path", str(out), "--quiet",
                            "--modes", "y,anno_meta,transitions"]) == 0
    got = read_all(out)
    assert "X" not in got and set(got) == set(want) - {"X"}


# ---------------------------------------------------------------------------------------------
# Property test: random valid gene models on random sequences


@st.composite
def genome(draw):
    """A sequence with non-overlapping single-transcript genes on both strands (GFF lines)."""
    n = draw(st.integers(60, 400))
    seq = "".join(draw(st.lists(st.sampled_from("ACGT"), min_size=n, max_size=n)))
    lines, expect = [], {"+": [], "-": []}
    for strand in "+-":
        pos = 1
        for g in range(draw(st.integers(0, 3))):
            start = pos + draw(st.integers(0, 30))
            n_exons = draw(st.integers(1, 3))
            exons, p = [], start
            for _ in range(n_exons):
                length = draw(st.integers(3, 40))
                exons.append((p, p + length - 1))
                p += length + draw(st.integers(20, 40))
            end = exons[-1][1]
            if end + 1 > n:
                break
            # CDS = whole exons after trimming a random UTR at both ends
            utr5 = draw(st.integers(0, 2))
            utr3 = draw(st.integers(0, 2))
            cds = [list(e) for e in exons]
            cds[0][0] += min(utr5, cds[0][1] - cds[0][0])
            cds[-1][1] -= min(utr3, cds[-1][1] - cds[-1][0])
            gid = f"{strand}{g}"
            lines.append(("chr", "t", "gene", start, end, ".", strand, ".", f"ID={gid}"))
            lines.append(("chr", "t", "mRNA", start, end, ".", strand, ".", f"ID={gid}.1;Parent={gid}"))
            lines += [("chr", "t", "exon", s, e, ".", strand, ".", f"Parent={gid}.1") for s, e in exons]
            chain = cds if strand == "+" else cds[::-1]
            done, phased = 0, []
            for s, e in chain:
                phased.append((s, e, (-done) % 3))
                done += e - s + 1
            lines += [("chr", "t", "CDS", s, e, ".", strand, ph, f"Parent={gid}.1") for s, e, ph in phased]
            expect[strand].append((exons, cds))
            pos = end + 2
    return seq, lines, expect


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=genome(), L=st.integers(5, 120), data=st.data())
def test_property_random_models(tmp_path_factory, case, L, data):
    seq, lines, expect = case
    tmp = tmp_path_factory.mktemp("prop")
    fasta, gff = write_case(tmp, seq, lines)
    _, h5a, _ = run_both(tmp, fasta, gff, L, name="a")
    write_by = L * data.draw(st.integers(1, 4))
    _, h5b, _ = run_both(tmp, fasta, gff, L, name="b", write_by=write_by)
    a, b = read_all(h5a), read_all(h5b)
    for k in a:  # independent of --write-by
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    got = streams(a, "chr", len(seq))  # (checks that padding is all zero)
    for k, strand in enumerate("+-"):
        y = got["y"][k]
        assert (y.sum(axis=1) == 1).all(), "y classes partition every real base"
        assert (got["phases"][k].sum(axis=1) == 1).all()
        for exons, cds in expect[strand]:
            coding = [p for s, e in cds for p in range(s - 1, e)]
            if strand == "-":
                coding = coding[::-1]
            cls = got["phases"][k][coding].argmax(axis=1)
            np.testing.assert_array_equal(cls, np.resize([1, 3, 2], len(coding)),
                                          err_msg="phases follow the codon pattern on CDS bases")
            assert (y[coding, 2] == 1).all()
    # the clean parts agree with the per-base oracle
    for k, strand in enumerate("+-"):
        models = [dict(tx=(ex[0][0] - 1, ex[-1][1]), introns=[(ex[i][1], ex[i + 1][0] - 1) for i in range(len(ex) - 1)],
                       cds=(cds[0][0] - 1, cds[-1][1]), phase=0, plus=strand == "+")
                  for ex, cds in expect[strand]]
        exp = oracle(len(seq), models, [])
        np.testing.assert_array_equal(got["y"][k], exp["y"])
        np.testing.assert_array_equal(got["gene_lengths"][k], exp["gene_lengths"])


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs(tmp_path, run_tool):
    out = tmp_path / "o.h5"
    code, err = run_tool(geenuff2h5.main, ["--input-db-path", tmp_path / "nope.sqlite3",
                                           "--h5-output-path", out])
    assert code == 1 and "nope.sqlite3" in err
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database at all" * 10)
    code, err = run_tool(geenuff2h5.main, ["--input-db-path", junk, "--h5-output-path", out])
    assert code == 1 and "not a GeenuFF" in err
    code, err = run_tool(geenuff2h5.main, ["--input-db-path", junk, "--h5-output-path", out,
                                           "--modes", "X,foo"])
    assert code == 2 and "--modes" in err
    code, err = run_tool(geenuff2h5.main, ["--input-db-path", junk, "--h5-output-path", tmp_path / "o.hdf"])
    assert code == 2 and "must end in .h5" in err
    code, err = run_tool(geenuff2h5.main, ["--input-db-path", junk, "--h5-output-path", out,
                                           "--subsequence-length", "100", "--write-by", "50"])
    assert code == 2 and "must be at least" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.sqlite3"]


def test_row_flags(tmp_path):
    """Helixer's inverted flags: err_samples = any usable base; fully_intergenic_samples = no
    intergenic base in the row (padding counts as non-intergenic); is_annotated per sequence."""
    seq = "C" * 20 + "ATG" + "C" * 37 + "TAA" + "C" * 40  # 103 bp, gene 11..100, CDS 21..63
    lines = [("chr", "t", "gene", 11, 100, ".", "+", ".", "ID=g"),
             ("chr", "t", "mRNA", 11, 100, ".", "+", ".", "ID=g.1;Parent=g"),
             ("chr", "t", "exon", 11, 100, ".", "+", ".", "Parent=g.1"),
             ("chr", "t", "CDS", 21, 63, ".", "+", "0", "Parent=g.1")]
    fasta, gff = write_case(tmp_path, seq, lines, extra_fasta=[("empty", "ACGT" * 5)])
    _, h5, _ = run_both(tmp_path, fasta, gff, 10)
    d = read_all(h5)
    chr_rows = d["seqids"] == b"chr"
    assert d["is_annotated"][chr_rows].all() and not d["is_annotated"][~chr_rows].any()
    se = d["start_ends"]
    plus = chr_rows & (se[:, 0] < se[:, 1])
    inside = plus & (se[:, 0] >= 10) & (se[:, 1] <= 100)
    assert d["fully_intergenic_samples"][inside].all()
    assert not d["fully_intergenic_samples"][plus & ~inside].any()
    assert d["err_samples"].all()  # no row is completely masked here
    # the featureless sequence: all intergenic, weights 1, one-hot "none" phase
    empty = ~chr_rows
    n = 20
    assert (d["y"][empty][:, :n, 0] == 1).all() and (d["sample_weights"][empty][:, :n] == 1).all()
    assert (d["phases"][empty][:, :n, 0] == 1).all() and not d["transitions"][empty].any()
    # order: longer sequence first
    assert list(dict.fromkeys(d["seqids"])) == [b"chr", b"empty"]
