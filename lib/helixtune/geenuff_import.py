"""Importing a GFF3 (or GTF) annotation and its genome FASTA into a GeenuFF 0.3.2 SQLite database,
sequence by sequence: the engine of ``import2geenuff.py`` (whose help states the rules and where
they differ from GeenuFF's), also used by ``compare_annotations.py`` to label GFF3s."""
import collections
import dataclasses
import hashlib
import logging
import math
import os
import re
import sqlite3
import urllib.parse

from helixtune import cli, geenuffdb
from helixtune.fasta import open_binary, read_sequences

log = logging.getLogger("helixtune.import2geenuff")

MIN_INTRON_LENGTH = 20  # GeenuFF's config default (config/import.yml: min_intron_length)

# Sequence Ontology names GeenuFF 0.3.2 reads (matched case-sensitively), by level.
GENE_TYPES = {
    "gene", "pseudogene", "ncRNA_gene", "tRNA_gene", "rRNA_gene", "snRNA_gene", "snoRNA_gene",
    "miRNA_gene", "lincRNA_gene", "lncRNA_gene", "piRNA_gene", "scRNA_gene", "SRP_RNA_gene",
    "RNase_P_RNA_gene", "RNase_MRP_RNA_gene", "telomerase_RNA_gene", "protein_coding_gene",
    "transposable_element_gene", "mt_gene", "plastid_gene", "nuclear_gene", "nc_conserved_region",
    "polymorphic_pseudogene", "processed_pseudogene", "unitary_pseudogene",
    "non_processed_pseudogene", "transcribed_pseudogene", "translated_unprocessed_pseudogene",
}
TRANSCRIPT_TYPES = {
    "mRNA", "transcript", "primary_transcript", "processed_transcript", "lnc_RNA", "lncRNA",
    "lincRNA", "ncRNA", "tRNA", "rRNA", "snoRNA", "snRNA", "miRNA", "pre_miRNA", "piRNA",
    "scRNA", "siRNA", "guide_RNA", "antisense_RNA", "antisense_lncRNA", "circular_ncRNA",
    "nc_primary_transcript", "SRP_RNA", "RNase_P_RNA", "RNase_MRP_RNA", "telomerase_RNA",
    "vault_RNA", "Y_RNA", "tmRNA", "mRNA_with_frameshift", "polyadenylated_mRNA",
    "capped_mRNA", "exemplar_mRNA", "enzymatic_RNA", "ribozyme", "scaRNA", "class_I_RNA",
    "class_II_RNA", "small_regulatory_ncRNA", "three_prime_overlapping_ncrna",
    "mRNA_TE_gene",  # TAIR10's transcript of a transposable-element gene (GeenuFF rejects it)
}
EXON_TYPES = {
    "exon", "coding_exon", "noncoding_exon", "exon_of_single_exon_gene", "five_prime_coding_exon",
    "three_prime_coding_exon", "interior_coding_exon", "interior_exon", "decayed_exon",
    "pseudogenic_exon_placeholder",
}
CDS_TYPES = {"CDS", "CDS_predicted", "CDS_fragment", "edited_CDS", "CDS_supported_by_EST_or_cDNA_data",
             "CDS_supported_by_domain_match_data", "CDS_supported_by_sequence_similarity_data",
             "orphan_CDS", "CDS_independently_known", "polypeptide_coding_region"}

# Types read by no gene model but known (not typos): common Sequence Ontology 2.5.3 names that
# GeenuFF 0.3.2 ignores (spec 1.2; the rest of its 1,304 ignored SO names are not listed here and
# are reported like typos), Augustus's extras, GTF 2.2 feature names and TAIR10's `protein`.
KNOWN_IGNORED_TYPES = {
    # UTRs, introns, codons and sites (implied by transcript, exons and CDS)
    "five_prime_UTR", "three_prime_UTR", "UTR", "five_prime_utr", "three_prime_utr",
    "transcription_start_site", "tss", "tts", "transcription_end_site", "TSS", "TES",
    "intron", "five_prime_intron", "three_prime_intron", "interior_intron", "start_codon",
    "stop_codon", "polyA_site", "polyA_signal_sequence", "splice_site", "five_prime_cis_splice_site",
    "three_prime_cis_splice_site", "branch_site", "exon_junction", "transcript_region",
    "five_prime_coding_exon_noncoding_region", "three_prime_coding_exon_noncoding_region",
    "signal_peptide", "mature_protein_region", "stop_codon_redefined_as_selenocysteine",
    "selenocysteine", "Selenocysteine", "ribosome_entry_site", "TATA_box",
    # sequences and assembly
    "region", "chromosome", "contig", "supercontig", "gap", "assembly", "golden_path",
    "golden_path_fragment", "chromosome_band", "centromere", "telomere", "origin_of_replication",
    "sequence_feature", "biological_region", "sequence_alteration", "sequence_variant",
    "possible_base_call_error", "possible_assembly_error", "base_call_error_correction",
    "assembly_error_correction", "sequence_conflict", "sequence_difference", "SNP", "SNV",
    "deletion", "insertion", "substitution", "indel",
    # alignments and evidence
    "match", "match_part", "cDNA_match", "EST_match", "protein_match", "nucleotide_match",
    "nucleotide_to_protein_match", "expressed_sequence_match", "translated_nucleotide_match",
    "similarity", "experimental_feature", "read", "contig_read",
    # repeats and mobile elements
    "repeat_region", "dispersed_repeat", "tandem_repeat", "inverted_repeat", "direct_repeat",
    "microsatellite", "minisatellite", "satellite_DNA", "low_complexity_region",
    "transposable_element", "LTR_retrotransposon", "long_terminal_repeat", "terminal_inverted_repeat",
    "retrotransposon", "non_LTR_retrotransposon", "DNA_transposon", "helitron", "MITE", "SINE_element",
    "LINE_element", "mobile_genetic_element", "repeat_fragment", "transposable_element_fragment",
    "transposon_fragment", "rRNA_repeat",
    # pseudogenic parts (GeenuFF reads none of them) and other gene parts
    "pseudogenic_transcript", "pseudogenic_exon", "pseudogenic_region", "pseudogenic_rRNA",
    "pseudogenic_tRNA", "polypeptide", "protein_coding_primary_transcript", "operon",
    "enhancer", "promoter", "silencer", "terminator", "insulator", "binding_site",
    "TF_binding_site", "regulatory_region", "CpG_island", "D_loop", "mobile_element",
    "gene_fragment", "uORF", "sORF", "ORF", "intein", "attenuator",
    # TAIR10's protein lines (Parent of CDS lines; not an SO name, read as no model)
    "protein",
}

START_CODON = "ATG"
STOP_CODONS = {"TAG", "TGA", "TAA"}
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclasses.dataclass
class Line:
    """One data line of the annotation (GFF coordinates: 1-based, inclusive)."""
    lineno: int
    seqid: str
    source: str
    type: str
    start: int
    end: int
    score: object
    strand: str
    phase: object
    id: object
    parents: list


_GTF_ATTR = re.compile(r'\s*([^\s";]+)\s+"?([^";]*)"?\s*')


def _gff3_attributes(text):
    attrs = {}
    for piece in text.split(";"):
        piece = piece.strip()
        if "=" not in piece:
            continue
        tag, value = piece.split("=", 1)
        attrs.setdefault(tag.strip(), []).extend(
            urllib.parse.unquote(v) for v in value.split(",") if v != "")
    return attrs


def _gtf_attributes(text):
    attrs = {}
    for piece in text.split(";"):
        if not piece.strip():
            continue
        m = _GTF_ATTR.fullmatch(piece)
        if m:
            attrs.setdefault(m.group(1), []).append(m.group(2))
    return attrs


def _detect_format(attr_text):
    if re.match(r'\s*\w+\s+"', attr_text):
        return "gtf"
    return "gff3"


def parse_annotation(path, stats):
    """All data lines of a GFF3/GTF file as :class:`Line` objects (hard errors as UserError)."""
    lines = [ln for ln, _ in iter_annotation(path, stats)]
    return lines, stats.pop("_fmt")


def _raw_lines(path):
    try:
        fh = open_binary(path)
    except (OSError, EOFError) as e:
        raise cli.UserError(f"{path}: cannot read annotation: {e}") from None
    with fh:
        try:
            for raw in fh:  # the same pieces as splitting the whole decoded file
                yield from raw.decode("utf-8", errors="replace").splitlines()
        except (OSError, EOFError) as e:
            raise cli.UserError(f"{path}: cannot read annotation: {e}") from None


def iter_annotation(path, stats):
    """Yield (:class:`Line`, text) for every data line, one line in memory at a time; the format
    ('gff3' or 'gtf') is left in ``stats['_fmt']`` at the end."""
    fmt = None
    head = []  # the first 50 lines (an empty file must at least say ##gff-version)
    for lineno, text in enumerate(_raw_lines(path), 1):
        if lineno <= 50:
            head.append(text)
        if text.startswith("##FASTA"):
            stats["repair: embedded ##FASTA section skipped"] += 1
            break
        if not text.strip():
            stats["repair: blank lines skipped"] += 1
            continue
        if text.startswith("#"):
            continue
        cols = text.split("\t")
        if fmt is None:
            if len(cols) != 9:
                raise cli.UserError(f"{path}: line {lineno}: not a GFF3 or GTF file (expected 9 "
                                    f"tab-separated columns, found {len(cols)}: {text[:60]!r})")
            fmt = _detect_format(cols[8])
        yield parse_line(path, lineno, text, fmt, stats), text
    if fmt is None:
        if not any(t.startswith("##gff-version") for t in head):
            raise cli.UserError(f"{path}: no annotation lines (not a GFF3 or GTF file?)")
        log.warning("%s: no annotation lines: every sequence is imported without genes", path)
    stats["_fmt"] = fmt or "gff3"


def parse_line(path, lineno, text, fmt, stats):
    """One data line (tab-separated, no line end) as a :class:`Line`."""
    cols = text.split("\t")
    if len(cols) != 9:
        raise cli.UserError(f"{path}: line {lineno}: expected 9 tab-separated columns, "
                            f"found {len(cols)}")
    seqid, source, ftype, start, end, score, strand, phase, attr_text = cols
    try:
        start, end = int(start), int(end)
    except ValueError:
        raise cli.UserError(f"{path}: line {lineno}: start and end must be integers "
                            f"(found {cols[3]!r}, {cols[4]!r})") from None
    if start < 1:
        raise cli.UserError(f"{path}: line {lineno}: start {start} < 1")
    if start > end:
        raise cli.UserError(f"{path}: line {lineno}: start {start} > end {end}")
    if strand not in ("+", "-", ".", "?"):
        raise cli.UserError(f"{path}: line {lineno}: strand must be +, - or . "
                            f"(found {strand!r})")
    if phase not in (".", "0", "1", "2"):
        raise cli.UserError(f"{path}: line {lineno}: phase must be ., 0, 1 or 2 "
                            f"(found {phase!r})")
    try:
        score = None if score == "." else float(score)
    except ValueError:
        raise cli.UserError(f"{path}: line {lineno}: score {score!r} is not a number") \
            from None
    if fmt == "gtf":
        attrs = _gtf_attributes(attr_text)
        gene_id = (attrs.get("gene_id") or [None])[0]
        tx_id = (attrs.get("transcript_id") or [None])[0]
        if ftype == "gene":
            fid, parents = gene_id, []
        elif ftype in ("transcript", "mRNA") or ftype in TRANSCRIPT_TYPES:
            fid, parents = tx_id, [gene_id] if gene_id else []
        else:
            fid, parents = None, [tx_id] if tx_id else []
            if ftype == "stop_codon":  # GTF CDS lines exclude the stop codon
                ftype = "CDS"
                stats["repair: GTF stop_codon added to the CDS"] += 1
        if gene_id and tx_id:
            stats["_gtf_gene_of"][tx_id] = gene_id
    else:
        attrs = _gff3_attributes(attr_text)
        fid = (attrs.get("ID") or [None])[0]
        parents = attrs.get("Parent", [])
    return Line(lineno, seqid, source, ftype, start, end, score,
                "." if strand == "?" else strand,
                None if phase == "." else int(phase), fid, parents)


# ---------------------------------------------------------------------------------------------
# Gene models


def geenuff_range(start, end, plus):
    """GFF [start, end] -> GeenuFF (start, end) (direction-aware on the minus strand)."""
    return (start - 1, end) if plus else (end - 1, start - 2)


def forward(start, end, plus):
    """GeenuFF (start, end) -> forward half-open [lo, hi)."""
    return (start, end) if plus else (end + 1, start + 1)


class Feature:
    """A feature row to be written (GeenuFF coordinates)."""
    __slots__ = ("type", "start", "end", "plus", "given_name", "score", "source", "phase",
                 "bio_start", "bio_end", "backwards")

    def __init__(self, ftype, start, end, plus, given_name=None, score=None, source=None,
                 phase=0):
        self.type, self.start, self.end, self.plus = ftype, start, end, plus
        self.given_name, self.score, self.source, self.phase = given_name, score, source, phase
        self.bio_start = self.bio_end = True
        self.backwards = False


class Transcript:
    def __init__(self, tid, ttype, line, strand):
        self.id, self.type, self.line, self.strand = tid, ttype, line, strand
        self.start, self.end = (line.start, line.end) if line is not None else (None, None)
        self.seqid = line.seqid if line is not None else None
        self.exons, self.cds = [], []
        self.score = line.score if line is not None else None
        self.source = line.source if line is not None else None
        self.protein_ids = set()
        self.tf = self.cds_feature = None
        self.introns, self.errors = [], []
        self.phase_5p = self.phase_3p = None
        self.longest = False
        self.mismatched_strand = False


class Gene:
    def __init__(self, gid, gtype, line, seqid, strand, order):
        self.id, self.type, self.line, self.seqid, self.strand = gid, gtype, line, seqid, strand
        self.start, self.end = (line.start, line.end) if line is not None else (None, None)
        self.order = order
        self.transcripts = []
        self.fully_erroneous = False

    @property
    def plus(self):
        return self.strand == "+"

    def geenuff(self):
        return geenuff_range(self.start, self.end, self.plus)


def _merge_adjacent(pieces):
    """Merge CDS pieces that touch (e.g. a GTF stop codon); keep the 5' piece's phase."""
    out = []
    for s, e, strand, phase in sorted(pieces, key=lambda p: p[0]):
        if out and s <= out[-1][1] + 1 and out[-1][2] == strand:
            ps, pe, pstrand, pphase = out[-1]
            out[-1] = (ps, max(pe, e), strand, pphase if strand == "+" else phase)
        else:
            out.append((s, e, strand, phase))
    return out


def group_models(lines, seq_lengths, path, stats):
    """Group lines into genes and transcripts by ID/Parent (robust to file order)."""
    by_id = {}
    for ln in lines:
        if ln.id is not None and ln.id not in by_id:
            by_id[ln.id] = ln
    child_parents = set()
    for ln in lines:
        if ln.type in EXON_TYPES or ln.type in CDS_TYPES:
            child_parents.update(ln.parents)
    genes, transcripts = {}, {}
    order = 0
    gtf_gene_of = stats.pop("_gtf_gene_of")

    def new_gene(gid, gtype, line, seqid, strand):
        nonlocal order
        order += 1
        g = Gene(gid, gtype, line, seqid, strand, order)
        genes[gid] = g
        return g

    # genes (gene-level lines; duplicated IDs of multi-line features extend the first)
    for ln in lines:
        if ln.type in GENE_TYPES:
            if ln.id is None:
                raise cli.UserError(f"{path}: line {ln.lineno}: {ln.type} without an ID")
            if ln.id in genes:
                g = genes[ln.id]
                g.start, g.end = min(g.start, ln.start), max(g.end, ln.end)
                continue
            new_gene(ln.id, ln.type, ln, ln.seqid, ln.strand)
    # transcripts
    for ln in lines:
        is_tx = ln.type in TRANSCRIPT_TYPES
        if not is_tx and ln.type not in GENE_TYPES and ln.id in child_parents and ln.id is not None \
                and any(p in genes for p in ln.parents) and by_id.get(ln.id) is ln \
                and ln.type not in EXON_TYPES and ln.type not in CDS_TYPES \
                and not ln.type.startswith("pseudogenic"):
            is_tx = True
            stats[f"repair: unknown type {ln.type!r} with gene parent and exon/CDS children "
                  f"read as a transcript"] += 1
        if not is_tx:
            continue
        if ln.id is None:
            raise cli.UserError(f"{path}: line {ln.lineno}: {ln.type} without an ID")
        if ln.id in transcripts:
            t = transcripts[ln.id]
            t.start, t.end = min(t.start, ln.start), max(t.end, ln.end)
            continue
        gene_parents = [p for p in ln.parents if p in genes]
        if len(ln.parents) > 1:
            stats["repair: transcript with several parents (first gene used)"] += 1
        if gene_parents:
            g = genes[gene_parents[0]]
        else:
            gid = ln.parents[0] if ln.parents else f"{ln.id}-gene"
            if gid in genes:  # an implicit gene made for an earlier transcript
                g = genes[gid]
            else:
                stats["repair: gene made for a transcript without a gene line"] += 1
                g = new_gene(gid, "gene", None, ln.seqid, ln.strand)
                g.start, g.end = ln.start, ln.end
        if g.seqid != ln.seqid:
            raise cli.UserError(f"{path}: line {ln.lineno}: transcript {ln.id!r} is on "
                                f"{ln.seqid!r} but its gene {g.id!r} on {g.seqid!r}")
        if g.line is None:
            g.start, g.end = min(g.start, ln.start), max(g.end, ln.end)
        t = Transcript(ln.id, ln.type if ln.type in TRANSCRIPT_TYPES else "mRNA", ln, ln.strand)
        transcripts[ln.id] = t
        g.transcripts.append(t)
    # genes in file order per seqid, for implicit transcripts (FlyBase exon parents without line)
    gene_lines_sorted = [g for g in genes.values() if g.line is not None]
    implicit = []
    for ln in lines:
        is_exon, is_cds = ln.type in EXON_TYPES, ln.type in CDS_TYPES
        if not (is_exon or is_cds):
            continue
        if not ln.parents:
            stats[f"ignored: {ln.type} without Parent"] += 1
            continue
        attached = False
        for p in ln.parents:
            t = transcripts.get(p)
            if t is None and p in genes:
                g = genes[p]
                tid = f"{p}.t"
                t = transcripts.get(tid)
                if t is None:
                    stats["repair: transcript made for exon/CDS whose parent is a gene"] += 1
                    t = Transcript(tid, "mRNA" if is_cds else "transcript", None, g.strand)
                    transcripts[tid] = t
                    g.transcripts.append(t)
            if t is None and p not in by_id:
                # parent without its own line (FlyBase): an implicit transcript, placed in a gene
                # once all its children are known
                stats["repair: transcript made for exon/CDS parent without its own line"] += 1
                t = Transcript(p, "transcript", None, ln.strand)
                t.seqid = ln.seqid
                transcripts[p] = t
                implicit.append(t)
            if t is None:
                continue  # a parent that is not a transcript (e.g. TAIR10's protein lines)
            if t.seqid is None:
                t.seqid = ln.seqid
            if ln.seqid != t.seqid:
                raise cli.UserError(f"{path}: line {ln.lineno}: {ln.type} is on {ln.seqid!r} "
                                    f"but its transcript {t.id!r} is not")
            attached = True
            if is_exon:
                t.exons.append((ln.start, ln.end, ln.strand))
            else:
                t.cds.append((ln.start, ln.end, ln.strand, ln.phase))
                if ln.id is not None:
                    t.protein_ids.add(ln.id)
            if t.line is None:  # implicit transcript: extent from its children
                t.start = ln.start if t.start is None else min(t.start, ln.start)
                t.end = ln.end if t.end is None else max(t.end, ln.end)
        if not attached:
            stats[f"ignored: {ln.type} whose parent is not a transcript"] += 1
        if len(ln.parents) > 1 and is_cds and any(p not in transcripts for p in ln.parents):
            stats["repair: CDS Parent that is not a transcript ignored (e.g. protein)"] += 1
    # implicit transcripts: into the GTF gene, else the smallest gene line on the same sequence
    # and strand that contains them, else a gene of their own
    for t in implicit:
        if t.cds:
            t.type = "mRNA"
        gid = gtf_gene_of.get(t.id)
        g = genes.get(gid) if gid else None
        if g is None and gid is None:
            cands = [c for c in gene_lines_sorted if c.seqid == t.seqid and c.strand == t.strand
                     and c.start <= t.start and t.end <= c.end]
            if cands:
                g = min(cands, key=lambda c: (c.end - c.start, c.order))
        if g is None:
            gid = gid or f"{t.id}-gene"
            g = genes.get(gid)
            if g is None:
                stats["repair: gene made for a transcript without a gene line"] += 1
                g = new_gene(gid, "gene", None, t.seqid, t.strand)
                g.start, g.end = t.start, t.end
        g.transcripts.append(t)
    # implicit genes: extent covers their transcripts
    for g in genes.values():
        if g.line is None:
            for t in g.transcripts:
                g.start, g.end = min(g.start, t.start), max(g.end, t.end)
    # strands
    kept = []
    for g in sorted(genes.values(), key=lambda g: g.order):
        if g.strand not in ("+", "-"):
            strands = {t.strand for t in g.transcripts if t.strand in "+-"} | \
                      {e[2] for t in g.transcripts for e in t.exons + t.cds if e[2] in "+-"}
            if len(strands) == 1:
                g.strand = strands.pop()
                stats["repair: gene strand '.' taken from its transcripts"] += 1
            else:
                stats["ignored: gene without a strand"] += 1
                continue
        for t in g.transcripts:
            if t.strand not in ("+", "-"):
                t.strand = g.strand
                stats["repair: transcript strand '.' taken from its gene"] += 1
        kept.append(g)
    for g in kept:
        if g.end > seq_lengths.get(g.seqid, g.end):
            raise cli.UserError(f"{path}: line {g.line.lineno if g.line else '?'}: gene {g.id!r} "
                                f"ends at {g.end}, beyond the end of {g.seqid!r}")
    return kept


def build_transcript(t, gene, min_intron_length, stats, path):
    """Transcript/CDS/intron features and GeenuFF's structural flags for one transcript."""
    plus = t.strand == "+"
    t.tf = Feature(geenuffdb.TRANSCRIPT, *geenuff_range(t.start, t.end, plus), plus,
                   given_name=t.id, score=t.score, source=t.source)
    if not t.cds:
        return
    if any(c[2] != t.strand for c in t.cds):
        t.mismatched_strand = True
    cds = _merge_adjacent(t.cds) if any(c[0] <= p[1] + 1 for c, p in zip(
        sorted(t.cds)[1:], sorted(t.cds))) else sorted(t.cds, key=lambda c: c[0])
    exons = sorted(t.exons, key=lambda e: e[0])
    if not exons:
        stats["repair: exons derived from CDS (transcript without exon lines)"] += 1
        exons = [(c[0], c[1], c[2]) for c in cds]
        exons[0] = (min(exons[0][0], t.start), exons[0][1], exons[0][2])
        exons[-1] = (exons[-1][0], max(exons[-1][1], t.end), exons[-1][2])
    # phases: infer '.' from the chain of CDS pieces (5' to 3')
    chain = cds if plus else cds[::-1]
    if any(c[3] is None for c in chain):
        stats["repair: CDS phase '.' inferred from the CDS chain"] += 1
        p0 = next((c for c in chain if c[3] is not None), None)
        consumed, first_phase = 0, 0
        if p0 is not None:
            for c in chain:
                if c is p0:
                    break
                consumed += c[1] - c[0] + 1
            # phase of piece k = (first_phase - consumed) mod 3
            first_phase = (p0[3] + consumed) % 3
        done, fixed = 0, []
        for c in chain:
            phase = c[3] if c[3] is not None else (first_phase - done) % 3
            fixed.append((c[0], c[1], c[2], phase))
            done += c[1] - c[0] + 1
        chain = fixed
        cds = chain if plus else chain[::-1]
    t.phase_5p, t.phase_3p = chain[0][3], chain[-1][3]
    if len({tid for tid in t.protein_ids}) > 1:
        stats["repair: CDS lines with several IDs (one protein per transcript)"] += 1
    # CDS range (ascending GFF), with the hanging-intron rule
    lo, hi = cds[0][0], cds[-1][1]
    if exons[0][0] == lo and lo != t.start:
        lo = t.start
    if exons[-1][1] == hi and hi != t.end:
        hi = t.end
    t.cds_feature = Feature(geenuffdb.CDS, *geenuff_range(lo, hi, plus), plus,
                            score=t.score, source=t.source, phase=t.phase_5p)
    # introns = transcript minus exons; overlapping exons give backwards markers
    remaining = [(t.start, t.end)]
    added = []
    introns = []
    for s, e, strand in exons:
        if strand != t.strand:
            gene.fully_erroneous = True
            break
        overlaps = [(max(s, a), min(e, b)) for a, b in added if a <= e and s <= b]
        if overlaps:
            if len(overlaps) > 1:
                stats["warning: exon overlapping several earlier exons"] += 1
            os_, oe = min(o[0] for o in overlaps), max(o[1] for o in overlaps)
            start, end = geenuff_range(os_, oe, plus)
            marker = Feature(geenuffdb.INTRON, end, start, plus)  # swapped: backwards
            marker.backwards = True
            introns.append(marker)
        added.append((s, e))
        nxt = []
        for a, b in remaining:
            if e < a or s > b:
                nxt.append((a, b))
                continue
            if a < s:
                nxt.append((a, s - 1))
            if e < b:
                nxt.append((e + 1, b))
        remaining = nxt
    for a, b in remaining:
        introns.append(Feature(geenuffdb.INTRON, *geenuff_range(a, b, plus), plus,
                               score=t.score, source=t.source))
    introns.sort(key=lambda f: f.start, reverse=not plus)
    t.introns = introns


def cds_score(t):
    """GeenuFF's 'longest' score: CDS length minus the length of introns overlapping it."""
    c = t.cds_feature
    lo, hi = forward(c.start, c.end, c.plus)
    lo, hi = min(lo, hi), max(lo, hi)
    score = abs(c.end - c.start)
    for i in t.introns:
        ilo, ihi = sorted(forward(i.start, i.end, i.plus))
        if min(hi, ihi) - max(lo, ilo) > 0:
            score -= abs(i.end - i.start)
    return score


class StrandErrors:
    """GeenuFF's error detection for the genes of one strand of one sequence (5' to 3')."""

    def __init__(self, genes, plus, seq, seq_len, min_intron_length):
        self.plus, self.seq, self.len = plus, seq, seq_len
        self.min_intron_length = min_intron_length
        self.genes = sorted(genes, key=lambda g: g.geenuff()[0], reverse=not plus)
        self.spans = [g.geenuff() for g in self.genes]

    def _mark(self, a, b):
        """Border between gene spans a (5') and b (3'): at most half-way, <= 10*sqrt(gap)."""
        dist = (b[0] - a[1]) if self.plus else (a[1] - b[0])
        offset = 0 if dist <= 0 else min(dist // 2, math.isqrt(dist) * 10)
        return a[1] + offset if self.plus else a[1] - offset

    def anchor5(self, i):
        if i == 0:
            return 0 if self.plus else self.len
        return self._mark(self.spans[i - 1], self.spans[i])

    def anchor3(self, i):
        if i == len(self.genes) - 1:
            return self.len if self.plus else -1
        return self._mark(self.spans[i], self.spans[i + 1])

    def add(self, t, etype, start, end):
        f = Feature(etype, start, end, self.plus)
        t.errors.append(f)
        return f

    def add5p(self, i, t, handler, etype, others=()):
        start = self.anchor5(i)
        end = handler.start
        if start == end and start in ((0,) if self.plus else (self.len - 1,)):
            pass
        else:
            self.add(t, etype, start, end)
        for h in (handler,) + tuple(others):
            h.bio_start = False

    def add3p(self, i, t, handler, etype, others=()):
        start, end = handler.end, self.anchor3(i)
        if start == end and start == (self.len if self.plus else -1):
            pass
        else:
            self.add(t, etype, start, end)
        for h in (handler,) + tuple(others):
            h.bio_end = False

    def has_start(self, cds):
        if self.plus:
            return self.seq[cds.start:cds.start + 3] == START_CODON
        lo = cds.start - 2
        return lo >= 0 and self.seq[lo:cds.start + 1].translate(_COMPLEMENT)[::-1] == START_CODON

    def has_stop(self, cds):
        if self.plus:
            lo = cds.end - 3
            return lo >= 0 and self.seq[lo:cds.end] in STOP_CODONS
        return self.seq[cds.end + 1:cds.end + 4].translate(_COMPLEMENT)[::-1] in STOP_CODONS

    def resolve(self):
        gene_errors = collections.defaultdict(set)
        for i, g in enumerate(self.genes):
            if g.fully_erroneous:
                # GeenuFF would crash inserting the backwards overlap markers of such a gene
                for t in g.transcripts:
                    t.introns = [x for x in t.introns if not x.backwards]
                if g.transcripts:
                    s, e = self.spans[i]
                    self.add(g.transcripts[0], "missmatching_strands", s, e)
                continue
            if not g.transcripts:
                continue
            for t in g.transcripts:
                if t.cds_feature is None:
                    continue
                cds, tf = t.cds_feature, t.tf
                if cds.start == tf.start:
                    self.add5p(i, t, cds, "missing_utr_5p", (tf,))
                    gene_errors[i].add("missing_utr_5p")
                if cds.end == tf.end:
                    self.add3p(i, t, cds, "missing_utr_3p", (tf,))
                    gene_errors[i].add("missing_utr_3p")
                if not self.has_start(cds):
                    self.add5p(i, t, cds, "missing_start_codon")
                if not self.has_stop(cds):
                    self.add3p(i, t, cds, "missing_stop_codon")
                if t.phase_5p != 0:
                    self.add5p(i, t, cds, "wrong_starting_phase")
                if i > 0:
                    self._neighbour(i, t, gene_errors)
                real = [x for x in t.introns if not x.backwards]
                if t.introns:
                    if self.plus:
                        ends = [x.end for x in real if cds.start < x.end < cds.end]
                        x = max(ends) if ends else cds.start
                    else:
                        ends = [x.end for x in real if cds.end < x.end < cds.start]
                        x = min(ends) if ends else cds.start
                    if t.phase_3p != abs(cds.end - x) % 3:
                        self.add3p(i, t, cds, "mismatched_ending_phase")
                kept = []
                for k, x in enumerate(t.introns):
                    if x.backwards:
                        before = t.introns[k - 1].end if k > 0 else tf.start
                        after = t.introns[k + 1].start if k + 1 < len(t.introns) else tf.end
                        self.add(t, "overlapping_exons", before, after)
                        continue
                    if abs(x.end - x.start) < self.min_intron_length:
                        self.add(t, "too_short_intron", x.start, x.end)
                    kept.append(x)
                t.introns = kept
                for x in kept:
                    if x.start == tf.start:
                        self.add5p(i, t, x, "truncated_intron")
                    if x.end == tf.end:
                        self.add3p(i, t, x, "truncated_intron")
        for g in self.genes:
            for t in g.transcripts:
                t.errors = [e for e in t.errors
                            if (e.end >= e.start if self.plus else e.end <= e.start)]

    def _neighbour(self, i, t, gene_errors):
        prev, cur = self.spans[i - 1], self.spans[i]
        if self.plus:
            overlapping, nested = prev[1] > cur[0], prev[1] > cur[1]
        else:
            overlapping, nested = prev[1] < cur[0], prev[1] < cur[1]
        if not overlapping:
            return
        if nested:
            if gene_errors[i] & {"missing_utr_5p", "missing_utr_3p"}:
                t.errors = [e for e in t.errors
                            if e.type not in ("missing_utr_5p", "missing_utr_3p")]
            return
        # The anchors of overlap errors skip over neighbours that overlap (are not "normal").
        if "missing_utr_3p" in gene_errors[i - 1]:
            j = i
            while j < len(self.genes) - 1 and self._overlaps(j, j + 1):
                j += 1
            self.add(t, "super_loci_overlap_error", prev[1], self.anchor3(j))
        elif "missing_utr_5p" in gene_errors[i]:
            j = i
            while j > 0 and self._overlaps(j - 1, j):
                j -= 1
            self.add(t, "super_loci_overlap_error", self.anchor5(j), cur[0])

    def _overlaps(self, j, k):
        a, b = self.spans[j], self.spans[k]
        return a[1] > b[0] if self.plus else a[1] < b[0]


# ---------------------------------------------------------------------------------------------
# Writing


class Writer:
    def __init__(self, con):
        self.con = con
        self.ids = collections.Counter()
        self.rows = collections.defaultdict(list)

    def next_id(self, table):
        self.ids[table] += 1
        return self.ids[table]

    def feature(self, f, coord_id):
        fid = self.next_id("feature")
        self.rows["feature"].append((fid, f.given_name, f.type, f.start, int(f.bio_start), f.end,
                                     int(f.bio_end), int(f.plus), f.score, f.source, f.phase,
                                     coord_id))
        return fid

    def flush(self):
        sql = {
            "super_locus": "INSERT INTO super_locus VALUES (?, ?, NULL, ?)",
            "transcript": "INSERT INTO transcript VALUES (?, ?, ?, ?, ?)",
            "transcript_piece": "INSERT INTO transcript_piece VALUES (?, ?, 0, ?)",
            "protein": "INSERT INTO protein VALUES (?, ?, ?)",
            "feature": "INSERT INTO feature VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            "association_transcript_piece_to_feature":
                "INSERT INTO association_transcript_piece_to_feature VALUES (?, ?)",
            "association_protein_to_feature":
                "INSERT INTO association_protein_to_feature VALUES (?, ?)",
            "association_transcript_to_protein":
                "INSERT INTO association_transcript_to_protein VALUES (?, ?)",
        }
        for table, stmt in sql.items():
            if self.rows[table]:
                self.con.executemany(stmt, self.rows[table])
        self.rows.clear()


def write_gene(w, g, coord_id, stats):
    slid = w.next_id("super_locus")
    w.rows["super_locus"].append((slid, g.id, g.type))
    for t in g.transcripts:
        tid = w.next_id("transcript")
        w.rows["transcript"].append((tid, t.id, t.type, int(t.longest), slid))
        pid = w.next_id("transcript_piece")
        w.rows["transcript_piece"].append((pid, t.id, tid))
        feats = [t.tf] + ([t.cds_feature] if t.cds_feature is not None else []) + t.introns \
            + t.errors
        fids = [w.feature(f, coord_id) for f in feats]
        w.rows["association_transcript_piece_to_feature"].extend((pid, fid) for fid in fids)
        if t.cds_feature is not None:
            prid = w.next_id("protein")
            name = sorted(t.protein_ids)[0] if len(t.protein_ids) == 1 else t.id
            w.rows["protein"].append((prid, name, slid))
            w.rows["association_protein_to_feature"].append((prid, fids[1]))
            w.rows["association_transcript_to_protein"].append((tid, prid))
        for e in t.errors:
            stats[e.type] += 1 if t.longest else 0
            stats["_all_" + e.type] += 1


def _read_config(path):
    """min_intron_length from a GeenuFF YAML config (a flat 'key: value' file)."""
    if path is None or not os.path.exists(path):
        return None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*min_intron_length\s*:\s*(\d+)", line)
        if m:
            return int(m.group(1))
    return None


def import_genome(args, db_tmp, stats):
    """Import in two streaming passes. The annotation's lines are checked and parked on disk
    (SQLite beside the database) by sequence; then each FASTA sequence is imported with its own
    lines, so memory holds one sequence and its genes. Files whose IDs or Parents span sequences
    are grouped as a whole instead (same result as sequence by sequence otherwise)."""
    min_intron = _read_config(args.config_file) or args.min_intron_length
    lengths, order = {}, []
    for seqid, seq in read_sequences(args.fasta):
        lengths[seqid] = len(seq)
        order.append(seqid)
    parked = db_tmp + ".lines"
    try:
        lines_db = sqlite3.connect(parked)
        spans = _park_annotation(args, lengths, lines_db, stats)
        fmt = stats["_format"]
        con = sqlite3.connect(db_tmp)
        con.executescript(geenuffdb.schema_sql(sorted(GENE_TYPES), sorted(TRANSCRIPT_TYPES)))
        con.execute("INSERT INTO genome VALUES (1, ?, ?, ?, ?)",
                    (args.species, args.accession, args.assembly_version, args.acquired_from))
        w = Writer(con)
        if spans:
            by_seq = collections.defaultdict(list)
            for g in _models(_parked_lines(lines_db, None, args.gff3, fmt, stats), lengths, args,
                             min_intron, stats):
                by_seq[g.seqid].append(g)
        cli.stage("progress")  # the database half-written (tests stop the run here)
        for cid, (seqid, seq) in enumerate(read_sequences(args.fasta), 1):
            seq = seq.decode("ascii").upper()
            con.execute("INSERT INTO coordinate VALUES (?, ?, ?, ?, ?, 1)",
                        (cid, seq, len(seq), seqid, hashlib.sha1(seq.encode()).hexdigest()))
            if spans:
                seq_genes = by_seq.pop(seqid, [])
            else:
                seq_genes = _models(_parked_lines(lines_db, seqid, args.gff3, fmt, stats),
                                    lengths, args, min_intron, stats)
            for plus in (True, False):
                strand_genes = [g for g in seq_genes if g.plus == plus]
                StrandErrors(strand_genes, plus, seq, len(seq), min_intron).resolve()
            for g in seq_genes:
                write_gene(w, g, cid, stats)
            stats["genes"] += len(seq_genes)
            stats["transcripts"] += sum(len(g.transcripts) for g in seq_genes)
            stats["coding transcripts"] += sum(t.cds_feature is not None for g in seq_genes
                                               for t in g.transcripts)
            stats["genes without transcripts"] += sum(not g.transcripts for g in seq_genes)
            w.flush()
        con.commit()
        con.execute("ANALYZE")
        con.close()
    finally:
        lines_db.close()
        if os.path.exists(parked):
            os.unlink(parked)
    stats["sequences"] = len(order)


def _park_annotation(args, lengths, lines_db, stats):
    """Pass 1: parse and check every line (the errors of a whole-file read, in the same order),
    count types, and store the lines by sequence. Returns whether an ID or Parent occurs on more
    than one sequence."""
    lines_db.executescript("CREATE TABLE line (seqid TEXT, lineno INTEGER, text TEXT);"
                           "CREATE TABLE name (name TEXT, seqid TEXT);")
    known = GENE_TYPES | TRANSCRIPT_TYPES | EXON_TYPES | CDS_TYPES | KNOWN_IGNORED_TYPES
    read = GENE_TYPES | TRANSCRIPT_TYPES | EXON_TYPES | CDS_TYPES
    unknown, ignored = {}, collections.Counter()
    first_unknown = beyond = None
    missing = collections.OrderedDict()
    gtf_gene_of = stats["_gtf_gene_of"]
    batch, names = [], []
    for ln, text in iter_annotation(args.gff3, stats):
        if ln.type not in known:
            if first_unknown is None:
                first_unknown = ln
            count, examples = unknown.get(ln.type, (0, []))
            if len(examples) < 3:
                examples.append(f"{args.gff3}:{ln.lineno}")
            unknown[ln.type] = (count + 1, examples)
        if ln.type not in read:
            ignored[ln.type] += 1
        if ln.seqid not in lengths:
            missing.setdefault(ln.seqid, ln.lineno)
        elif ln.end > lengths[ln.seqid] and beyond is None:
            beyond = ln
        batch.append((ln.seqid, ln.lineno, text))
        names.extend((n, ln.seqid) for n in [ln.id, *ln.parents] if n is not None)
        if gtf_gene_of:  # GTF: the transcript's gene also links lines
            names.extend((n, ln.seqid) for n in gtf_gene_of.values())
            gtf_gene_of.clear()
        if len(batch) >= 10000:
            lines_db.executemany("INSERT INTO line VALUES (?, ?, ?)", batch)
            lines_db.executemany("INSERT INTO name VALUES (?, ?)", names)
            batch, names = [], []
    lines_db.executemany("INSERT INTO line VALUES (?, ?, ?)", batch)
    lines_db.executemany("INSERT INTO name VALUES (?, ?)", names)
    stats["_format"] = stats.pop("_fmt")
    if args.strict and first_unknown is not None:
        raise cli.UserError(f"{args.gff3}: line {first_unknown.lineno}: unknown feature type "
                            f"{first_unknown.type!r} (--strict)")
    stats["_unknown_types"] = unknown
    if beyond is not None:
        raise cli.UserError(f"{args.gff3}: line {beyond.lineno}: end {beyond.end} is beyond the "
                            f"end of sequence {beyond.seqid!r} ({lengths[beyond.seqid]} bp)")
    if missing:
        listed = ", ".join(f"{k!r} (line {v})" for k, v in list(missing.items())[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise cli.UserError(f"{args.gff3}: {len(missing)} sequence ID(s) not in the FASTA "
                            f"{args.fasta}: {listed}{more}")
    stats["_ignored_types"] = ignored
    lines_db.execute("CREATE INDEX line_seqid ON line (seqid, lineno)")
    return lines_db.execute("SELECT 1 FROM name GROUP BY name HAVING MIN(seqid) != MAX(seqid) "
                            "LIMIT 1").fetchone() is not None


def _parked_lines(lines_db, seqid, path, fmt, stats):
    """The parked lines of one sequence (all lines if ``seqid`` is None), in file order."""
    stats["_gtf_gene_of"] = {}
    quiet = collections.Counter(_gtf_gene_of=stats["_gtf_gene_of"])  # counted in pass 1
    rows = (lines_db.execute("SELECT lineno, text FROM line ORDER BY lineno") if seqid is None
            else lines_db.execute("SELECT lineno, text FROM line WHERE seqid = ? ORDER BY lineno",
                                  (seqid,)))
    return [parse_line(path, lineno, text, fmt, quiet) for lineno, text in rows]


def _models(lines, lengths, args, min_intron, stats):
    """Gene models of ``lines`` (grouped, transcripts built, longest coding ones marked)."""
    genes = group_models(lines, lengths, args.gff3, stats)
    for g in genes:
        for t in g.transcripts:
            build_transcript(t, g, min_intron, stats, args.gff3)
            if t.mismatched_strand:
                g.fully_erroneous = True
        coding = [t for t in g.transcripts if t.cds_feature is not None]
        if coding:
            best = max(coding, key=cds_score)  # max() keeps the first of equal scores
            best.longest = True
    return genes


def check_types(lines, path, strict):
    """{unknown feature type: (count, up to 3 'file:line' examples)}; with strict, the first
    unknown type is a UserError."""
    known = GENE_TYPES | TRANSCRIPT_TYPES | EXON_TYPES | CDS_TYPES | KNOWN_IGNORED_TYPES
    unknown = {}
    for ln in lines:
        if ln.type in known:
            continue
        if strict:
            raise cli.UserError(f"{path}: line {ln.lineno}: unknown feature type {ln.type!r} "
                                f"(--strict)")
        count, examples = unknown.get(ln.type, (0, []))
        if len(examples) < 3:
            examples.append(f"{path}:{ln.lineno}")
        unknown[ln.type] = (count + 1, examples)
    return unknown
