#!/usr/bin/env python3
"""Import a GFF3 (or GTF) annotation and its genome FASTA into a GeenuFF 0.3.2 SQLite database.

Gene models are built and checked as GeenuFF does; every faulty model is recorded as an error
region (which later masks training weights), never a reason to abort. Unlike GeenuFF, features are
grouped by their Parent attribute (not by file order), exons missing from a coding transcript are
derived from its CDS, CDS phase '.' is inferred from the CDS chain, CDS lines may have several
Parents, and GTF files are accepted; each such repair is counted in the log.
"""
import collections
import logging
import os
import re

from helixtune import cli, geenuffdb
from helixtune.geenuff_import import MIN_INTRON_LENGTH, import_genome

log = logging.getLogger("helixtune.import2geenuff")


def get_parser():
    """The command-line parser (GeenuFF 0.3.2 option names)."""
    parser = cli.new_parser("import2geenuff.py", __doc__.split("\n\n")[0])
    io = parser.add_argument_group("Input and output")
    io.add_argument("--gff3", help="annotation: GFF3 or GTF (plain or gzip)")
    io.add_argument("--fasta", help="genome assembly FASTA (plain, gzip or bgzip)")
    io.add_argument("--db-path", help="SQLite database to write (GeenuFF 0.3.2 schema)")
    io.add_argument("--log-file", help="import report: counts of genes, transcripts, repairs and "
                                       "error regions by type")
    io.add_argument("--basedir", help="instead of the four paths: take the single FASTA and "
                                      "GFF3 from BASEDIR/input/, write BASEDIR/output/"
                                      "<species>.sqlite3 and BASEDIR/output/import.log")
    io.add_argument("--replace-db", action="store_true",
                    help="overwrite an existing database (otherwise an existing one is an error)")
    meta = parser.add_argument_group("Genome metadata (stored in the genome table)")
    meta.add_argument("--species", required=True, help="species name")
    meta.add_argument("--accession", default="", help="assembly accession")
    meta.add_argument("--assembly-version", dest="assembly_version", default="",
                      help="assembly version (GeenuFF's --version; renamed because --version "
                           "prints the program version in this suite)")
    meta.add_argument("--acquired-from", default="", help="where the assembly came from")
    model = parser.add_argument_group("Gene models")
    model.add_argument("--min-intron-length", type=cli.positive_int, default=MIN_INTRON_LENGTH,
                       help="introns shorter than this are marked as too_short_intron errors")
    model.add_argument("--config-file",
                       help="GeenuFF YAML config; only its min_intron_length key is read")
    model.add_argument("--strict", action="store_true",
                       help="stop with an error at an unknown feature type (e.g. the typo CSD "
                            "for CDS) instead of warning and ignoring its lines")
    cli.add_common_args(parser)
    return parser


def unknown_type_lines(unknown):
    """Report lines for unknown feature types, most frequent first."""
    if not unknown:
        return []
    out = [f"unknown feature types (lines ignored; --strict makes them an error): "
           f"{sum(c for c, _ in unknown.values())} line(s) of {len(unknown)} type(s)"]
    for ftype, (count, examples) in sorted(unknown.items(), key=lambda kv: (-kv[1][0], kv[0])):
        out.append(f"  {ftype!r}: {count} line(s), e.g. {', '.join(examples)}")
    return out


def write_log(path, args, stats):
    lines = [f"import2geenuff.py: {args.gff3} ({stats.get('_format', '?')}) + {args.fasta} "
             f"-> {args.db_path}", f"species: {args.species}"]
    for key in ("sequences", "genes", "genes without transcripts", "transcripts",
                "coding transcripts"):
        lines.append(f"{key}: {stats.get(key, 0)}")
    lines.append("error regions on exported (longest coding) transcripts, by type:")
    for etype in geenuffdb.ERROR_TYPES:
        lines.append(f"  {etype}: {stats.get(etype, 0)}")
    lines.append("error regions on all transcripts, by type:")
    for etype in geenuffdb.ERROR_TYPES:
        lines.append(f"  {etype}: {stats.get('_all_' + etype, 0)}")
    repairs = sorted(k for k in stats if isinstance(k, str) and k.startswith(("repair", "ignored",
                                                                            "warning")))
    lines.append("repairs and skipped lines (where GeenuFF would abort or lose data):")
    for k in repairs:
        if stats[k]:
            lines.append(f"  {k}: {stats[k]}")
    ignored = stats.get("_ignored_types") or {}
    if ignored:
        lines.append("line types not used for gene models: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(ignored.items())))
    unknown = unknown_type_lines(stats.get("_unknown_types"))
    lines += unknown
    text = "\n".join(lines) + "\n"
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    for line in lines:
        if line not in unknown:
            log.info("%s", line)
    for line in unknown:
        log.warning("%s", line)


def _resolve_paths(args):
    if args.basedir:
        inp, out = os.path.join(args.basedir, "input"), os.path.join(args.basedir, "output")
        os.makedirs(inp, exist_ok=True)
        os.makedirs(out, exist_ok=True)
        names = sorted(os.listdir(inp))
        fas = [n for n in names if re.search(r"\.(fa|fasta|fna)(\.gz)?$", n)]
        gffs = [n for n in names if re.search(r"\.(gff|gff3|gtf)(\.gz)?$", n)]
        if len(fas) != 1 or len(gffs) != 1:
            raise cli.UserError(f"{inp}: needs exactly one FASTA and one GFF3/GTF file "
                                f"(found {len(fas)} and {len(gffs)})", code=2)
        args.fasta = args.fasta or os.path.join(inp, fas[0])
        args.gff3 = args.gff3 or os.path.join(inp, gffs[0])
        args.db_path = args.db_path or os.path.join(out, f"{args.species}.sqlite3")
        args.log_file = args.log_file or os.path.join(out, "import.log")
    missing = [opt for opt, v in (("--gff3", args.gff3), ("--fasta", args.fasta),
                                  ("--db-path", args.db_path)) if not v]
    if missing:
        raise cli.UserError(f"{', '.join(missing)} required (or --basedir)", code=2)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    if not args.species.strip():
        raise cli.UserError("--species must not be empty", code=2)
    _resolve_paths(args)
    for opt, path in (("--fasta", args.fasta), ("--gff3", args.gff3)):
        if not os.path.isfile(path):
            raise cli.UserError(f"{opt} {path}: no such file")
    if os.path.exists(args.db_path) and not args.replace_db:
        raise cli.UserError(f"{args.db_path} exists; use --replace-db to overwrite it")
    stats = collections.Counter()
    stats["_gtf_gene_of"] = {}
    with cli.atomic_output(args.db_path) as tmp:
        import_genome(args, tmp, stats)
    write_log(args.log_file, args, stats)
    log.info("wrote %s", args.db_path)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
