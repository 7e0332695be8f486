"""The SQLite schema of GeenuFF 0.3.2 databases (written by import2geenuff.py, read by geenuff2h5.py).

Coordinates follow GeenuFF: 0-based; plus strand start inclusive, end exclusive; minus strand
start = the 5'-most base (inclusive), end = one below the 3'-most base (exclusive), so end < start
and end may be -1.
"""
import sqlite3

from helixtune.cli import UserError

TRANSCRIPT, CDS, INTRON = "geenuff_transcript", "geenuff_cds", "geenuff_intron"

#: Error feature types, in GeenuFF's enum order ("missmatching_strands" is GeenuFF's spelling).
ERROR_TYPES = (
    "missing_utr_5p", "missing_utr_3p", "empty_super_locus", "missing_start_codon",
    "missing_stop_codon", "wrong_starting_phase", "mismatched_ending_phase", "overlapping_exons",
    "too_short_intron", "super_loci_overlap_error", "missmatching_strands", "truncated_intron",
)
FEATURE_TYPES = (TRANSCRIPT, CDS, INTRON) + ERROR_TYPES


def _enum(column, values):
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"CHECK ({column} IN ({quoted}))"


def schema_sql(super_locus_types, transcript_types):
    """DDL of all tables (SQLAlchemy's SQLite rendering of GeenuFF's declarative models)."""
    return f"""
CREATE TABLE genome (
    id INTEGER NOT NULL, species VARCHAR, accession VARCHAR, version VARCHAR,
    acquired_from VARCHAR,
    PRIMARY KEY (id), UNIQUE (species, version));
CREATE TABLE coordinate (
    id INTEGER NOT NULL, sequence VARCHAR, length INTEGER NOT NULL, seqid VARCHAR NOT NULL,
    sha1 VARCHAR, genome_id INTEGER NOT NULL,
    PRIMARY KEY (id), UNIQUE (genome_id, seqid), CONSTRAINT check_length CHECK (length >= 0),
    FOREIGN KEY(genome_id) REFERENCES genome (id));
CREATE TABLE super_locus (
    id INTEGER NOT NULL, given_name VARCHAR, aliases VARCHAR, type VARCHAR(40),
    PRIMARY KEY (id), {_enum('type', super_locus_types)});
CREATE TABLE transcript (
    id INTEGER NOT NULL, given_name VARCHAR, type VARCHAR(40), longest BOOLEAN,
    super_locus_id INTEGER NOT NULL,
    PRIMARY KEY (id), {_enum('type', transcript_types)}, CHECK (longest IN (0, 1)),
    FOREIGN KEY(super_locus_id) REFERENCES super_locus (id));
CREATE TABLE transcript_piece (
    id INTEGER NOT NULL, given_name VARCHAR, position INTEGER NOT NULL,
    transcript_id INTEGER NOT NULL,
    PRIMARY KEY (id), CONSTRAINT unique_positions_per_piece UNIQUE (transcript_id, position),
    FOREIGN KEY(transcript_id) REFERENCES transcript (id));
CREATE TABLE protein (
    id INTEGER NOT NULL, given_name VARCHAR, super_locus_id INTEGER NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(super_locus_id) REFERENCES super_locus (id));
CREATE TABLE feature (
    id INTEGER NOT NULL, given_name VARCHAR, type VARCHAR(24), start INTEGER NOT NULL,
    start_is_biological_start BOOLEAN NOT NULL, "end" INTEGER NOT NULL,
    end_is_biological_end BOOLEAN NOT NULL, is_plus_strand BOOLEAN NOT NULL, score FLOAT,
    source VARCHAR, phase INTEGER, coordinate_id INTEGER NOT NULL,
    PRIMARY KEY (id), {_enum('type', FEATURE_TYPES)},
    CONSTRAINT unique_feature UNIQUE (coordinate_id, type, start, "end", is_plus_strand, given_name),
    CONSTRAINT check_start_0plus CHECK (start >= 0),
    CONSTRAINT check_end_minus1plus CHECK ("end" >= -1),
    CONSTRAINT check_phase_not_negative CHECK (phase >= 0),
    CONSTRAINT check_phase_less_three CHECK (phase < 3),
    CONSTRAINT check_phase_bio_start CHECK (phase IS NULL OR NOT start_is_biological_start OR phase = 0),
    CONSTRAINT check_strand_order CHECK ((is_plus_strand AND start <= "end") OR (NOT is_plus_strand AND "end" <= start)),
    CHECK (start_is_biological_start IN (0, 1)), CHECK (end_is_biological_end IN (0, 1)),
    CHECK (is_plus_strand IN (0, 1)),
    FOREIGN KEY(coordinate_id) REFERENCES coordinate (id));
CREATE TABLE association_transcript_piece_to_feature (
    transcript_piece_id INTEGER NOT NULL, feature_id INTEGER NOT NULL,
    FOREIGN KEY(transcript_piece_id) REFERENCES transcript_piece (id),
    FOREIGN KEY(feature_id) REFERENCES feature (id));
CREATE TABLE association_protein_to_feature (
    protein_id INTEGER NOT NULL, feature_id INTEGER NOT NULL,
    FOREIGN KEY(protein_id) REFERENCES protein (id),
    FOREIGN KEY(feature_id) REFERENCES feature (id));
CREATE TABLE association_transcript_to_protein (
    transcript_id INTEGER NOT NULL, protein_id INTEGER NOT NULL,
    FOREIGN KEY(transcript_id) REFERENCES transcript (id),
    FOREIGN KEY(protein_id) REFERENCES protein (id));
"""


def connect_existing(path):
    """Open a GeenuFF database read-only, with a clear error if it is not one."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise UserError(f"{path}: not a GeenuFF SQLite database ({e})") from None
    needed = {"genome", "coordinate", "super_locus", "transcript", "transcript_piece", "feature",
              "association_transcript_piece_to_feature"}
    if not needed <= tables:
        raise UserError(f"{path}: not a GeenuFF database (missing tables: "
                        f"{', '.join(sorted(needed - tables))})")
    return con
