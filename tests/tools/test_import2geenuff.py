"""import2geenuff.py: hand-written gene models per error type (checked base by base through
geenuff2h5 on both strands), robustness repairs, real data without crashes, hard errors."""
import collections
import gzip
import sqlite3
import subprocess

import numpy as np
import pytest

from geenuff_helpers import (mirror_expected, mirror_gff, oracle, read_all, revcomp, run_both,
                             streams, write_case)
from helixtune_tools import import2geenuff

N = 130  # sequence length of the hand-written cases


def gene(gid, tx, exons, cds, strand="+", gene_span=None, seqid="chr"):
    """GFF3 lines of one gene with one mRNA; cds = [(start, end, phase)]."""
    g0, g1 = gene_span or tx
    lines = [(seqid, "t", "gene", g0, g1, ".", strand, ".", f"ID={gid}"),
             (seqid, "t", "mRNA", tx[0], tx[1], ".", strand, ".", f"ID={gid}.1;Parent={gid}")]
    lines += [(seqid, "t", "exon", s, e, ".", st if len(ex) > 2 else strand, ".",
               f"Parent={gid}.1") for ex in exons for s, e, *rest in [ex]
              for st in [rest[0] if rest else strand]]
    lines += [(seqid, "t", "CDS", s, e, ".", strand, ph, f"ID={gid}.p;Parent={gid}.1")
              for s, e, ph in cds]
    return lines


def plant(seq, pos1, codon):
    """Put codon at 1-based position pos1."""
    return seq[:pos1 - 1] + codon + seq[pos1 - 1 + len(codon):]


def base_seq(start=21, stop_end=85, atg=True, stop=True):
    seq = "C" * N
    if atg:
        seq = plant(seq, start, "ATG")
    if stop:
        seq = plant(seq, stop_end - 2, "TAA")
    return seq


BASE = dict(tx=(11, 100), exons=[(11, 40), (61, 100)], cds=[(21, 40, 0), (61, 85, 1)])
BASE_EXP = dict(tx=(10, 100), cds=(20, 85), introns=[(40, 60)], phase=0, plus=True)

# name -> (gff lines, sequence, expected transcripts, expected error ranges, error type in log)
CASES = {
    "clean": (gene("g", **BASE), base_seq(), [BASE_EXP], [], None),
    "missing_utr_5p": (gene("g", (21, 100), [(21, 40), (61, 100)], BASE["cds"]), base_seq(),
                       [dict(BASE_EXP, tx=(20, 100))], [(0, 20)], "missing_utr_5p"),
    "missing_utr_3p": (gene("g", (11, 85), [(11, 40), (61, 85)], BASE["cds"]), base_seq(),
                       [dict(BASE_EXP, tx=(10, 85))], [(85, N)], "missing_utr_3p"),
    "missing_start_codon": (gene("g", **BASE), base_seq(atg=False), [BASE_EXP], [(0, 20)],
                            "missing_start_codon"),
    "missing_stop_codon": (gene("g", **BASE), base_seq(stop=False), [BASE_EXP], [(85, N)],
                           "missing_stop_codon"),
    "wrong_starting_phase": (gene("g", BASE["tx"], BASE["exons"], [(21, 40, 1), (61, 85, 1)]),
                             base_seq(), [dict(BASE_EXP, phase=1)], [(0, 20)],
                             "wrong_starting_phase"),
    "mismatched_ending_phase": (gene("g", BASE["tx"], BASE["exons"], [(21, 40, 0), (61, 85, 0)]),
                                base_seq(), [BASE_EXP], [(85, N)], "mismatched_ending_phase"),
    "too_short_intron": (gene("g", (11, 100), [(11, 40), (51, 100)], [(21, 40, 0), (51, 75, 1)]),
                         base_seq(stop_end=75),
                         [dict(BASE_EXP, cds=(20, 75), introns=[(40, 50)])], [(40, 50)],
                         "too_short_intron"),
    "overlapping_exons": (gene("g", (11, 100), [(11, 45), (41, 100)], [(21, 83, 0)]),
                          base_seq(stop_end=83),
                          [dict(BASE_EXP, cds=(20, 83), introns=[])], [(10, 100)],
                          "overlapping_exons"),
    "truncated_intron": (gene("g", (11, 125), BASE["exons"], BASE["cds"]), base_seq(),
                         [dict(BASE_EXP, tx=(10, 125), introns=[(40, 60), (100, 125)])],
                         [(125, N)], "truncated_intron"),
    # GeenuFF's hanging-intron rule: the CDS is stretched to the transcript end
    "hanging_cds": (gene("g", (11, 100), [(11, 40), (61, 75)], [(21, 40, 0), (61, 75, 1)]),
                    base_seq(), [dict(BASE_EXP, cds=(20, 100), introns=[(40, 60), (75, 100)])],
                    [(100, N)], "truncated_intron"),
    "super_loci_overlap_error": (
        gene("g1", (11, 60), [(11, 60)], [(21, 60, 0)])
        + gene("g2", (51, 110), [(51, 110)], [(51, 99, 0)]),
        plant(plant(base_seq(stop_end=60), 51, "ATG"), 97, "TAA"),
        [dict(tx=(10, 60), cds=(20, 60), introns=[], phase=0, plus=True),
         dict(tx=(50, 110), cds=(50, 99), introns=[], phase=0, plus=True)],
        [(60, N)], "super_loci_overlap_error"),
}


def _check_case(tmp_path, name, lines, seq, transcripts, errors, L, mirror):
    if mirror:
        lines, seq = mirror_gff(lines, len(seq)), revcomp(seq)
    fasta, gff = write_case(tmp_path, seq, lines, name=name)
    _, h5, log = run_both(tmp_path, fasta, gff, L, name=name)
    got = streams(read_all(h5), "chr", len(seq))
    exp = oracle(len(seq), transcripts, errors)
    empty = oracle(len(seq), [], [])
    if mirror:
        exp = mirror_expected(exp)
    for key in exp:
        strand_exp = (empty[key], exp[key]) if mirror else (exp[key], empty[key])
        for k, strand in enumerate(("plus", "minus")):
            np.testing.assert_array_equal(got[key][k], strand_exp[k],
                                          err_msg=f"{name} {key} {strand}")
    return log


@pytest.mark.parametrize("mirror", [False, True], ids=["plus", "minus"])
@pytest.mark.parametrize("name", list(CASES))
def test_gene_model_cases(tmp_path, name, mirror):
    lines, seq, transcripts, errors, etype = CASES[name]
    log = _check_case(tmp_path, name, lines, seq, transcripts, errors, 50, mirror)
    if etype:
        assert f"  {etype}: 0" not in log.split("on all transcripts")[0], log


@pytest.mark.parametrize("L", [7, 50, 129, 130, 200])
def test_boundaries_and_short_sequences(tmp_path, L):
    """Genes crossing row boundaries; the sequence shorter than, equal to or longer than L."""
    lines, seq, transcripts, errors, _ = CASES["truncated_intron"]
    for mirror in (False, True):
        _check_case(tmp_path, f"b{mirror}", lines, seq, transcripts, errors, L, mirror)


def test_missmatching_strands(tmp_path):
    lines = gene("g", BASE["tx"], [(11, 40), (61, 100, "-")], BASE["cds"])
    fasta, gff = write_case(tmp_path, base_seq(), lines)
    db, h5, log = run_both(tmp_path, fasta, gff, 50)
    sw = streams(read_all(h5), "chr", N)["sample_weights"][0]
    assert not sw[10:100].any() and sw[:10].all() and sw[100:].all()
    assert "missmatching_strands: 1" in log


# ---------------------------------------------------------------------------------------------
# Robustness: each variant must give exactly the h5 of the canonical file


def _canonical():
    return gene("g", **BASE) + gene("h", (101, 125), [(101, 125)], [], strand="-")


def _h5_of(tmp_path, name, lines, seq=None, extra_fasta=()):
    fasta, gff = write_case(tmp_path, seq or base_seq(), lines, name=name, extra_fasta=extra_fasta)
    db, h5, log = run_both(tmp_path, fasta, gff, 50, name=name)
    return read_all(h5), log, db


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _variants():
    c = _canonical()
    gl = [tuple(x) for x in c]
    cds_dot = [x if x[2] != "CDS" else x[:7] + (".",) + x[8:] for x in gl]
    shuffled = gl[::-1]
    with_noise = ["# comment", "", "###"] + gl[:4] + ["", "##sequence-region chr 1 130"] + \
        gl[4:] + ["##FASTA", ">chr", "ACGT"]
    no_exons = [x for x in gl if not (x[2] == "exon" and x[8].startswith("Parent=g."))]
    multi_parent = [x if x[2] != "CDS" else x[:8] + (x[8] + ",g.1-Protein",) for x in gl] + \
        [("chr", "t", "protein", 21, 85, ".", "+", ".", "ID=g.1-Protein")]
    escaped = [tuple(str(v).replace("ID=g.1;", "ID=g%2E1;").replace("Parent=g.1", "Parent=g%2E1")
                     for v in x) for x in gl]
    return {"shuffled": shuffled, "comments_blank_fasta": with_noise, "cds_phase_dot": cds_dot,
            "multiple_parents": multi_parent, "url_escaped": escaped,
            "exons_from_cds": no_exons}


@pytest.mark.parametrize("variant", list(_variants()))
def test_robust_variants_equal_canonical(tmp_path, variant):
    ref, _, _ = _h5_of(tmp_path, "canonical", _canonical())
    lines = _variants()[variant]
    got, log, db = _h5_of(tmp_path, variant, lines)
    if variant == "exons_from_cds":
        # exons derived from the CDS (first/last stretched to the transcript ends): the UTRs
        # stay, the intron between the CDS pieces is 41..60 as in the canonical model
        _same({k: v for k, v in got.items()}, ref)
        assert "exons derived from CDS" in log
    else:
        _same(got, ref)
    if variant == "cds_phase_dot":
        assert "phase '.' inferred" in log
    if variant == "url_escaped":
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM transcript WHERE given_name='g.1'").fetchone()[0] == 1


def test_seqid_reappearing_later(tmp_path):
    other = gene("o", (11, 100), [(11, 40), (61, 100)], [(21, 40, 0), (61, 85, 1)], seqid="chr2")
    c = _canonical()
    ref, _, _ = _h5_of(tmp_path, "ref", c[:5] + other + c[5:] + [], extra_fasta=[("chr2", base_seq())])
    split, _, _ = _h5_of(tmp_path, "split", c[:2] + other[:3] + c[2:] + other[3:],
                         extra_fasta=[("chr2", base_seq())])
    _same(split, ref)
    plus = streams(split, "chr2", N)["y"][0]
    assert plus[:, 2].sum() == 45  # the chr2 gene was kept


def test_gtf_equals_gff3(tmp_path):
    ref, _, _ = _h5_of(tmp_path, "ref", gene("g", **BASE))
    gtf = []
    for s, e in BASE["exons"]:
        gtf.append(f'chr\tt\texon\t{s}\t{e}\t.\t+\t.\tgene_id "g"; transcript_id "g.1";')
    for s, e, ph in [(21, 40, 0), (61, 82, 1)]:
        gtf.append(f'chr\tt\tCDS\t{s}\t{e}\t.\t+\t{ph}\tgene_id "g"; transcript_id "g.1";')
    gtf.append('chr\tt\tstop_codon\t83\t85\t.\t+\t0\tgene_id "g"; transcript_id "g.1";')
    fasta, _ = write_case(tmp_path, base_seq(), [], name="gtf")
    path = tmp_path / "a.gtf"
    path.write_text("\n".join(gtf) + "\n")
    _, h5, log = run_both(tmp_path, fasta, path, 50, name="gtf")
    _same(read_all(h5), ref)
    assert "(gtf)" in log


def test_alternative_transcripts_longest_only(tmp_path):
    """Only the longest coding isoform is exported; the first wins ties."""
    lines = gene("g", **BASE) + [
        ("chr", "t", "mRNA", 11, 100, ".", "+", ".", "ID=g.2;Parent=g"),
        ("chr", "t", "exon", 11, 100, ".", "+", ".", "Parent=g.2"),
        ("chr", "t", "CDS", 21, 38, ".", "+", "0", "Parent=g.2")]
    fasta, gff = write_case(tmp_path, base_seq(), lines)
    db, h5, _ = run_both(tmp_path, fasta, gff, 50)
    con = sqlite3.connect(db)
    assert con.execute("SELECT given_name FROM transcript WHERE longest").fetchall() == [("g.1",)]
    got = streams(read_all(h5), "chr", N)["y"][0]
    np.testing.assert_array_equal(got, oracle(N, [BASE_EXP], [])["y"])


# ---------------------------------------------------------------------------------------------
# Database content


def test_database_schema_and_rows(tmp_path):
    fasta, gff = write_case(tmp_path, base_seq(), gene("g", **BASE))
    db, _, _ = run_both(tmp_path, fasta, gff, 50)
    con = sqlite3.connect(db)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"genome", "coordinate", "super_locus", "transcript", "transcript_piece", "protein",
            "feature", "association_transcript_piece_to_feature",
            "association_protein_to_feature", "association_transcript_to_protein"} <= tables
    feats = con.execute('SELECT type, start, "end", is_plus_strand, phase, given_name '
                        "FROM feature ORDER BY id").fetchall()
    assert feats == [("geenuff_transcript", 10, 100, 1, 0, "g.1"),
                     ("geenuff_cds", 20, 85, 1, 0, None),
                     ("geenuff_intron", 40, 60, 1, 0, None)]
    assert con.execute("SELECT species, accession, version FROM genome").fetchall() == \
        [("sp", "", "")]
    seqid, length, sha1 = con.execute("SELECT seqid, length, sha1 FROM coordinate").fetchone()
    assert (seqid, length, len(sha1)) == ("chr", N, 40)


def test_minus_strand_coordinates(tmp_path):
    lines = mirror_gff(gene("g", **BASE), N)
    fasta, gff = write_case(tmp_path, revcomp(base_seq()), lines)
    db, _, _ = run_both(tmp_path, fasta, gff, 50)
    feats = sqlite3.connect(db).execute('SELECT type, start, "end", is_plus_strand FROM feature '
                                        "ORDER BY id").fetchall()
    # GFF [31, 120] on the minus strand -> start = 119 (5' end), end = 29
    assert feats[0] == ("geenuff_transcript", 119, 29, 0)


# ---------------------------------------------------------------------------------------------
# Real data: everything imports; genes and transcripts counted independently from the raw file

# The gene- and transcript-level types occurring in these files (spec 1.2; mRNA_TE_gene: TAIR10's
# transposable-element transcript, read as a transcript by the tool), written out here.
RAW_GENE_TYPES = {"gene", "pseudogene", "transposable_element_gene"}
RAW_TX_TYPES = {"mRNA", "mRNA_TE_gene", "ncRNA", "tRNA", "rRNA", "snoRNA", "miRNA", "pre_miRNA",
                "piRNA", "nc_primary_transcript", "circular_ncRNA"}


def count_raw_models(path):
    """(genes, transcripts, coding transcripts) of a GFF3 by the import rules, read directly:

    * every gene-level line is a gene; a transcript whose Parent has no line gets a gene made for
      it (one per missing Parent ID);
    * an exon/CDS Parent without any line (FlyBase, WormBase) is a transcript of its own, spanning
      its exons/CDS; it joins a gene line on the same sequence and strand that contains it, else it
      gets a gene of its own (line-less genes are not candidates);
    * a transcript is coding when at least one CDS line names it as Parent (a Parent that is a
      protein line, as in TAIR10, is not a transcript)."""
    gene_spans, tx_parent, children, ids = {}, {}, collections.defaultdict(list), set()
    with gzip.open(path, "rt") as fh:
        for text in fh:
            if text.startswith("#") or not text.strip():
                continue
            seqid, _, ftype, start, end, _, strand, _, attr = text.rstrip("\n").split("\t")
            attrs = dict(a.split("=", 1) for a in attr.split(";") if "=" in a)
            parents = attrs.get("Parent", "").split(",")
            if "ID" in attrs:
                ids.add(attrs["ID"])
            if ftype in RAW_GENE_TYPES:
                gene_spans.setdefault(attrs["ID"], (seqid, strand, int(start), int(end)))
            elif ftype in RAW_TX_TYPES:
                tx_parent.setdefault(attrs["ID"], parents[0])
            elif ftype in ("exon", "CDS"):
                for p in parents:
                    children[p].append((ftype, seqid, strand, int(start), int(end)))
    made_genes = {p for p in tx_parent.values() if p not in gene_spans}
    lineless = [p for p in children if p not in ids]
    own_genes = 0
    for tx in lineless:
        (_, seqid, strand, _, _), lo = children[tx][0], min(c[3] for c in children[tx])
        hi = max(c[4] for c in children[tx])
        own_genes += not any((gs, gst) == (seqid, strand) and s <= lo and hi <= e
                             for gs, gst, s, e in gene_spans.values())
    coding = sum(any(c[0] == "CDS" for c in children[t]) for t in list(tx_parent) + lineless)
    return len(gene_spans) + len(made_genes) + own_genes, len(tx_parent) + len(lineless), coding


# Hand-checked against the raw files:
# * A. thaliana: 226 gene + 1 pseudogene + 1 transposable_element_gene lines = 228 genes; 293 mRNA
#   lines with CDS (the CDS lines' second Parent is a protein line); 310 transcripts.
# * C. elegans: 260 gene lines + 2 genes made for transcripts whose Parent has no line + 7 genes
#   for line-less transcripts outside every gene line = 269; 394 transcripts, 307 coding.
# * D. melanogaster: the file has 108 `gene` lines; the 11 more genes are 1 made for mRNA
#   FBtr0078145 (Parent FBgn0266557 has no line in this 1% cut) + 10 for FlyBase transcripts
#   without a line (named only as exon/CDS Parents) that lie in no gene line on their strand
#   (5 are isoforms of that same FBgn0266557, 2L:210735-234174, each getting its own gene as only
#   gene lines take such transcripts). 285 transcripts = 236 mRNA lines + 49 line-less ones;
#   244 coding = the 236 mRNAs + 8 line-less transcripts with CDS (= data/README's "coding tx").
@pytest.mark.realdata
@pytest.mark.parametrize("fasta,gff,genes,transcripts,coding", [
    ("arabidopsis_thaliana/at_tair10_1pct.shared.fa.gz",
     "arabidopsis_thaliana/at_tair10_1pct.shared.genes.gff3.gz", 228, 310, 293),
    ("extra_invertebrates/snap_ce_1pct.fa.gz", "extra_invertebrates/snap_ce_1pct.gff3.gz",
     269, 394, 307),
    ("extra_invertebrates/snap_dm_1pct.fa.gz", "extra_invertebrates/snap_dm_1pct.gff3.gz",
     119, 285, 244),
])
def test_real_annotations_import(shared_data, tmp_path, run_tool, fasta, gff, genes, transcripts,
                                 coding):
    assert count_raw_models(shared_data / gff) == (genes, transcripts, coding)
    db, log = tmp_path / "x.sqlite3", tmp_path / "x.log"
    code, err = run_tool(import2geenuff.main, ["--gff3", shared_data / gff, "--fasta", shared_data / fasta,
                                               "--species", "sp", "--db-path", db, "--log-file", log,
                                               "--quiet"])
    assert code == 0, err
    text = log.read_text()
    assert f"genes: {genes}\n" in text and f"coding transcripts: {coding}\n" in text, text
    assert f"\ntranscripts: {transcripts}\n" in text, text
    assert "unknown feature types" not in text  # every type in these files is known


# ---------------------------------------------------------------------------------------------
# Hard errors: message with file and line, non-zero exit, no database left behind

GOOD = "chr\tt\tgene\t11\t100\t.\t+\t.\tID=g\n"
BAD = [
    ("not_gff", "hello world\n", "not a GFF3 or GTF file"),
    ("columns", GOOD + "chr\tt\tgene\t1\t5\t.\t+\n", "line 2: expected 9 tab-separated columns"),
    ("start_gt_end", "chr\tt\tgene\t50\t40\t.\t+\t.\tID=g\n", "line 1: start 50 > end 40"),
    ("beyond_end", "chr\tt\tgene\t11\t131\t.\t+\t.\tID=g\n", "line 1: end 131 is beyond the end"),
    ("unknown_seqid", GOOD + "chrX\tt\tgene\t1\t5\t.\t+\t.\tID=x\nchrY\tt\tgene\t1\t5\t.\t+\t.\tID=y\n",
     "2 sequence ID(s) not in the FASTA"),
    ("bad_phase", "chr\tt\tCDS\t11\t20\t.\t+\t3\tParent=x\n", "line 1: phase must be"),
    ("bad_coord", "chr\tt\tgene\tone\t20\t.\t+\t.\tID=g\n", "line 1: start and end must be integers"),
    ("empty", "# just a comment\n", "no annotation lines"),
]


@pytest.mark.parametrize("name,text,message", BAD, ids=[b[0] for b in BAD])
def test_hard_errors(tmp_path, run_tool, name, text, message):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr\n" + "C" * N + "\n")
    gff = tmp_path / "a.gff3"
    gff.write_text(text)
    db = tmp_path / "out.sqlite3"
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--db-path", db,
                                               "--species", "sp"])
    assert code == 1 and message in err and str(gff) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gff3", "g.fa"]


def test_bad_fasta_and_options(tmp_path, run_tool):
    gff = tmp_path / "a.gff3"
    gff.write_text(GOOD)
    fasta = tmp_path / "g.fa.gz"
    fasta.write_bytes(gzip.compress(b">chr\nCC")[:-6])  # truncated gzip
    db = tmp_path / "o.sqlite3"
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--db-path", db,
                                               "--species", "sp"])
    assert code == 1 and "g.fa.gz" in err and not db.exists()
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--db-path", db])
    assert code == 2 and "--species" in err
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", tmp_path / "nope.fa",
                                               "--db-path", db, "--species", "sp"])
    assert code == 1 and "nope.fa" in err
    db.write_text("x")
    fasta.write_text(">chr\n" + "C" * N + "\n")
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--db-path", db,
                                               "--species", "sp"])
    assert code == 1 and "--replace-db" in err and db.read_text() == "x"


def test_galaxy_test_database_up_to_date(tmp_path):
    """galaxy/test-data/annotated.sqlite3 is what import2geenuff makes of annotated.gff3/.fa."""
    data = import2geenuff.__file__.rsplit("/tools/", 1)[0] + "/galaxy/test-data"
    db = tmp_path / "a.sqlite3"
    assert import2geenuff.main(["--gff3", f"{data}/annotated.gff3", "--fasta", f"{data}/annotated.fa",
                                "--species", "tiny", "--db-path", str(db), "--quiet"]) == 0
    query = ('SELECT f.type, f.start, f."end", f.is_plus_strand, f.phase, t.given_name, t.longest '
             "FROM feature f JOIN association_transcript_piece_to_feature a ON a.feature_id = f.id "
             "JOIN transcript_piece tp ON tp.id = a.transcript_piece_id "
             "JOIN transcript t ON t.id = tp.transcript_id ORDER BY f.id")
    fresh = sqlite3.connect(db).execute(query).fetchall()
    committed = sqlite3.connect(f"{data}/annotated.sqlite3").execute(query).fetchall()
    assert fresh == committed and len(fresh) == 6


# ---------------------------------------------------------------------------------------------
# Unknown feature types (a typo must not silently drop a CDS)


def _typo_case(tmp_path):
    lines = [x if x[2] != "CDS" else x[:2] + ("CSD",) + x[3:] for x in gene("g", **BASE)]
    lines += [("chr", "t", "five_prime_UTR", 11, 20, ".", "+", ".", "Parent=g.1"),
              ("chr", "t", "region", 1, N, ".", "+", ".", "ID=chr")]
    return write_case(tmp_path, base_seq(), lines)


def test_unknown_feature_type_warned(tmp_path):
    """The executable warns on stderr (even with --quiet) and in the report; exit 0."""
    fasta, gff = _typo_case(tmp_path)
    csd_lines = [i for i, t in enumerate(gff.read_text().splitlines(), 1) if "\tCSD\t" in t]
    assert len(csd_lines) == 2
    db, log = tmp_path / "o.sqlite3", tmp_path / "o.log"
    proc = subprocess.run(["import2geenuff.py", "--gff3", gff, "--fasta", fasta, "--db-path", db,
                           "--log-file", log, "--species", "sp", "--quiet"],
                          capture_output=True, text=True, check=False)
    code, err = proc.returncode, proc.stderr
    assert code == 0, err
    expected = f"'CSD': 2 line(s), e.g. {gff}:{csd_lines[0]}, {gff}:{csd_lines[1]}"
    assert "WARNING: unknown feature types" in err and expected in err, err
    report = log.read_text()
    assert expected in report, report
    # known but ignored types (UTR, region) are not reported
    assert "five_prime_UTR'" not in err + report and "'region'" not in err + report
    # the transcript is kept, without CDS and protein
    con = sqlite3.connect(db)
    assert con.execute("SELECT given_name FROM transcript").fetchall() == [("g.1",)]
    assert con.execute("SELECT count(*) FROM feature WHERE type = 'geenuff_cds'").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM protein").fetchone() == (0,)
    assert "coding transcripts: 0\n" in report


def test_unknown_feature_type_examples_capped(tmp_path, run_tool):
    lines = gene("g", **BASE) + [("chr", "t", "Gene", 1, 5, ".", "+", ".", f"ID=x{i}")
                                 for i in range(5)]
    fasta, gff = write_case(tmp_path, base_seq(), lines)
    first = next(i for i, t in enumerate(gff.read_text().splitlines(), 1) if "\tGene\t" in t)
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--species", "sp",
                                               "--db-path", tmp_path / "o.sqlite3", "--quiet"])
    assert code == 0
    examples = ", ".join(f"{gff}:{first + k}" for k in range(3))
    assert f"'Gene': 5 line(s), e.g. {examples}\n" in err, err


def test_unknown_feature_type_strict(tmp_path, run_tool):
    fasta, gff = _typo_case(tmp_path)
    first = next(i for i, t in enumerate(gff.read_text().splitlines(), 1) if "\tCSD\t" in t)
    db, log = tmp_path / "o.sqlite3", tmp_path / "o.log"
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = run_tool(import2geenuff.main, ["--gff3", gff, "--fasta", fasta, "--db-path", db,
                                               "--log-file", log, "--species", "sp", "--strict"])
    assert code == 1
    assert f"{gff}: line {first}: unknown feature type 'CSD'" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no database, log or .part
