#!/usr/bin/env python3
"""Download pretrained Helixer models into Helixer's model directory (resumable, verified).

Models go to <directory>/<lineage>/<model file name>, the layout Helixer.py reads, by default
$XDG_DATA_HOME/Helixer/models (~/.local/share/Helixer/models), so models installed by Helixer
are reused and the other way round. A download goes to <model file name>.part beside the target
and is renamed only after its size, checksum (where the list has one) and HDF5 signature are
checked; an interrupted download resumes from the .part file on the next run. Without internet
access, use --model-list and --mirror with a local copy, or put the file where the error message
says. Lineage "default" is the small model bundled with helixtune; it is used in place.
"""
import hashlib
import http.client
import logging
import os
import pathlib
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from helixtune import cli, models

log = logging.getLogger("helixtune.fetch_helixer_models")

TIMEOUT_S = 60  # a stalled connection fails after this long without data
CHUNK = 1 << 20
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def get_parser():
    """The command-line parser (Helixer's fetch_helixer_models.py options plus list/mirror)."""
    parser = cli.new_parser("fetch_helixer_models.py", __doc__)
    what = parser.add_argument_group("Models")
    what.add_argument("-l", "--lineage",
                      help="lineage whose model to fetch (see --list); default: every lineage")
    what.add_argument("-a", "--all", action="store_true",
                      help="fetch all models of the lineage(s), not only the best one")
    what.add_argument("-c", "--custom-path", metavar="DIR",
                      help="install into DIR/<lineage>/ instead of the default directory "
                           "$XDG_DATA_HOME/Helixer/models (~/.local/share/Helixer/models)")
    what.add_argument("--list", action="store_true",
                      help="print the known and installed models (best and installed marked) "
                           "and exit")
    what.add_argument("--path", action="store_true",
                      help="print the path of the model --lineage uses (the best installed one; "
                           "the bundled file for 'default') and exit; fails if none is installed")
    sources = parser.add_argument_group("Sources (for sites without internet access)")
    sources.add_argument("--model-list", metavar="PATH|URL",
                         help="model list CSV to use instead of the one bundled with helixtune "
                              "(Helixer's format, optional sha256 column)")
    sources.add_argument("--mirror", metavar="URL",
                         help="download <URL>/<model file name> instead of the list's links "
                              "(a local directory works too)")
    cli.add_common_args(parser)
    return parser


def as_url(location):
    """``location`` unchanged if it is a URL, else the file:// URL of a local path."""
    return location if "://" in location else pathlib.Path(location).resolve().as_uri()


def download_url(entry, mirror=None):
    """The URL to download ``entry`` from: its link, or the file name under ``mirror``."""
    if mirror is None:
        return entry.download_link
    return as_url(mirror).rstrip("/") + "/" + urllib.parse.quote(entry.model_file_name)


def selected_models(entries, lineage, all_models):
    """The entries to fetch: the best (or, with ``all_models``, every) model per lineage."""
    chosen = []
    for name in [lineage] if lineage else models.lineages(entries):
        ranked = models.models_of(entries, name)
        chosen += ranked if all_models else ranked[:1]
    return chosen


def fetch(entry, model_dir, mirror=None):
    """Install ``entry`` into ``model_dir/<lineage>/`` unless it is there already."""
    if entry.bundled:
        path = entry.bundled_path()
        if path.is_file():
            log.info("%s: the model bundled with helixtune is used in place (%s); nothing to "
                     "copy", entry.lineage, path)
        else:
            log.info("%s: the model bundled with helixtune is not installed yet (%s is missing); "
                     "nothing to fetch", entry.lineage, path)
        return
    target = model_dir / entry.lineage / entry.model_file_name
    if target.is_file():
        log.info("%s: %s is installed already (%s)", entry.lineage, entry.model, target)
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise cli.UserError(f"cannot create the model directory {target.parent}: "
                            f"{e.strerror}") from None
    download(download_url(entry, mirror), target, entry)
    log.info("%s: installed %s", entry.lineage, target)


def offline_message(url, target, entry, reason):
    """What to do when the host of ``url`` cannot be reached: which file to put where."""
    return (f"cannot reach {urllib.parse.urlsplit(url).netloc or url} to download {url} "
            f"({reason}); without internet access, download {entry.download_link} elsewhere and "
            f"put it at {target} (or point --mirror/--model-list at a local copy)")


def open_download(url, offset, target, entry):
    """The HTTP response for ``url`` from byte ``offset`` on (a Range request when offset > 0)."""
    from helixtune import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"helixtune/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:
            return None  # the partial file does not fit the server's file: start again
        raise cli.UserError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if urllib.parse.urlsplit(url).scheme == "file":
            raise cli.UserError(f"cannot read {url}: {e.reason}") from None
        raise cli.UserError(offline_message(url, target, entry, e.reason)) from None
    except (OSError, http.client.HTTPException) as e:
        raise cli.UserError(offline_message(url, target, entry, e)) from None


def resume_point(response, offset):
    """(first byte the response carries, total size or None): ``offset`` when the server
    answered the Range request with 206 and a matching Content-Range, else 0."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if offset and getattr(response, "status", None) == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)",
                             response.headers.get("Content-Range", "").strip())
        if match and int(match[1]) == offset:
            total = int(match[3]) if match[3] != "*" else None
            return offset, total or (offset + length if length is not None else None)
        return 0, None  # unusable answer; the caller starts again
    return 0, length


def download(url, target, entry):
    """Download ``url`` to ``target`` through ``target.part``: resumed when the server supports
    it, renamed only after the size, sha256 (if listed) and HDF5 signature checks pass."""
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    response = open_download(url, offset, target, entry)
    start, total = resume_point(response, offset) if response is not None else (0, None)
    if response is None or (start != offset and getattr(response, "status", None) == 206):
        if response is not None:
            response.close()
        log.info("%s: the partial download does not fit the server's file; starting again", part)
        response = open_download(url, 0, target, entry)
        start, total = resume_point(response, 0)
    elif start != offset:
        log.info("%s: the server cannot resume; downloading again from the start", url)
    with response:
        log.info("%s: downloading %s%s", entry.lineage, url,
                 f" (resuming at {start} bytes)" if start else "")
        copy_response(response, part, start, total, url)
    size = part.stat().st_size
    if total is not None and size != total:
        raise cli.UserError(f"download of {url} stopped after {size} of {total} bytes; "
                            f"{part} is kept: run the same command again to resume")
    check_download(part, url, entry)
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    cli.stage("commit")
    os.replace(part, target)


def copy_response(response, part, start, total, url):
    """Append the response body to ``part`` (truncated to ``start`` bytes first)."""
    progress = None
    if total:
        progress = cli.Progress(part.name[:-len(".part")], total, "bytes", every_s=10)
        progress.done = start
    read = getattr(response, "read1", response.read)  # what has arrived, not a full chunk
    with open(part, "r+b" if start else "wb") as out:
        out.truncate(start)
        out.seek(start)
        while True:
            try:
                chunk = read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                out.flush()
                raise cli.UserError(f"download of {url} broke off after {out.tell()} bytes "
                                    f"({e or type(e).__name__}); {part} is kept: run the same "
                                    f"command again to resume") from None
            if not chunk:
                break
            out.write(chunk)
            if progress:
                progress.update(len(chunk))


def check_download(part, url, entry):
    """Delete ``part`` and fail unless it has the listed sha256 and is an HDF5 file."""
    digest = hashlib.sha256()
    with open(part, "rb") as f:
        head = f.read(len(HDF5_SIGNATURE))
        digest.update(head)
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    if entry.sha256 and digest.hexdigest() != entry.sha256:
        part.unlink()
        raise cli.UserError(f"checksum mismatch for {url}: sha256 {digest.hexdigest()}, the model "
                            f"list ({entry.source}) says {entry.sha256}; the download was deleted "
                            "and nothing was installed")
    if head != HDF5_SIGNATURE:
        part.unlink()
        raise cli.UserError(f"{url} is not an HDF5 model file (wrong server or an error page?); "
                            "the download was deleted and nothing was installed")


def bundled_description(entry):
    """What --list says about a bundled model: its provenance, or that it is missing."""
    path = entry.bundled_path()
    if not path.is_file():
        return f"bundled with helixtune, not installed yet ({path} is missing)"
    return models.provenance(path) or f"bundled with helixtune ({path})"


def list_models(entries, model_dir, lineage, out):
    """Print the known and installed models, best and installed ones marked."""
    print(f"# model directory: {model_dir}", file=out)
    rows = []
    for name in [lineage] if lineage else models.lineages(entries):
        ranked = models.models_of(entries, name)
        installed = models.installed_models(name, model_dir, entries)
        installed_entries = {id(e): p for p, e in installed if e is not None}
        in_use = installed[0][0] if installed else None
        for entry in ranked:
            marks = ["best"] if entry is ranked[0] else []
            path = installed_entries.get(id(entry))
            if entry.bundled:
                marks.append(bundled_description(entry))
            elif path is not None:
                marks.append(f"installed: {path}")
            else:
                marks.append("not installed")
            if path is not None and path == in_use:
                marks.append("used by Helixer.py")
            rows.append((name, entry.model, str(entry.priority), ", ".join(marks)))
        for path, entry in installed:
            if entry is None:
                marks = [f"installed: {path}", "not in the list"]
                if path == in_use:
                    marks.append("used by Helixer.py")
                rows.append((name, path.stem, "-", ", ".join(marks)))
    header = ("lineage", "model", "priority", "status")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
    for row in [header] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + row[3], file=out)


def main(argv=None):
    args = get_parser().parse_args(argv)
    cli.setup_logging(args.quiet, args.debug)
    entries = models.load_model_list(args.model_list)
    model_dir = pathlib.Path(args.custom_path) if args.custom_path else models.default_model_dir()
    if args.lineage:
        models.models_of(entries, args.lineage)  # fails with the known lineages
    if args.list:
        list_models(entries, model_dir, args.lineage, sys.stdout)
        return 0
    if args.path:
        if not args.lineage:
            raise cli.UserError("--path needs --lineage", code=2)
        print(models.resolve_lineage_model(args.lineage, model_dir, entries))
        return 0
    # SIGTERM/SIGINT (cli.run) stop a download: its .part file stays for resuming.
    for entry in selected_models(entries, args.lineage, args.all):
        fetch(entry, model_dir, args.mirror)
    return 0


def main_cli():
    cli.run(main)


if __name__ == "__main__":
    main_cli()
