"""The self-contained HTML report of compare_annotations.py: tables and inline SVG plots made
here (no scripts, no network). Every plot is an ``<svg>`` with a stable id (tests look for them):
``f1-bars``, ``confusion-<i>``, ``phase-confusion-<i>``, ``f1-along-genome``, ``feature-f1``,
``lengths-gene``, ``lengths-exon``, ``lengths-intron``."""
import html
import math

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f")
REFERENCE_COLOUR = "#333333"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
CSS = """
body{%s;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}
.sub{color:#5b6475;margin:0 0 18px;font-size:14px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);
padding:18px 22px;margin:0 0 18px}
table{border-collapse:collapse;font-size:13.5px;margin:6px 0}
th,td{padding:5px 10px;text-align:right;border-bottom:1px solid #e6e8ec}
th{background:#f0f2f5;font-weight:600}td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.note{color:#5b6475;font-size:13px;margin:6px 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:14px;margin:4px 0 10px}
.swatch{display:inline-block;width:14px;height:14px;border-radius:3px;margin-right:6px;
vertical-align:-2px}
code{font-size:12.5px;background:#f0f2f5;padding:1px 4px;border-radius:3px}
""" % FONT


def esc(value):
    return html.escape(str(value), quote=True)


def fmt(value, digits=4):
    return "–" if value is None else f"{value:.{digits}f}"


def colour(i):
    return COLOURS[i % len(COLOURS)]


def svg(element_id, width, height, body, label):
    return (f'<svg id="{esc(element_id)}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'aria-label="{esc(label)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="{FONT}">{"".join(body)}</svg>')


def text(x, y, value, size=12, anchor="middle", fill="#1d2330", extra=""):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}"{extra}>{esc(value)}</text>')


def legend(names, with_reference=False):
    items = ([("reference", REFERENCE_COLOUR)] if with_reference else []) + [
        (n, colour(i)) for i, n in enumerate(names)]
    return '<div class="legend">' + "".join(
        f'<span><span class="swatch" style="background:{c}"></span>{esc(n)}</span>'
        for n, c in items) + "</div>"


def y_axis(body, left, top, plot_w, plot_h, ticks=(0, .2, .4, .6, .8, 1.0), title=None):
    for t in ticks:
        y = top + plot_h * (1 - t)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#e3e6eb"/>')
        body.append(text(left - 6, y + 4, f"{t:.1f}", 11, "end", "#5b6475"))
    if title:
        body.append(text(14, top + plot_h / 2, title, 12, "middle", "#5b6475",
                         f' transform="rotate(-90 14 {top + plot_h / 2:.1f})"'))


def bar_chart(element_id, groups, names, values, label):
    """Grouped bars: ``values[i][g]`` of prediction i in group g (None: no bar), 0..1."""
    n = max(1, len(names))
    group_w = max(70, min(150, 24 * n + 30))
    left, top, plot_h = 52, 16, 230
    width = left + group_w * len(groups) + 16
    height = top + plot_h + 40
    body = []
    y_axis(body, left, top, group_w * len(groups), plot_h, title="score")
    bar_w = (group_w - 24) / n
    for g, group in enumerate(groups):
        x0 = left + g * group_w + 12
        for i in range(len(names)):
            v = values[i][g]
            if v is None:
                continue
            h = plot_h * max(0.0, min(1.0, v))
            x = x0 + i * bar_w
            body.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 2:.1f}" '
                        f'height="{h:.1f}" rx="2" fill="{colour(i)}"><title>{esc(names[i])} '
                        f'{esc(group)}: {v:.4f}</title></rect>')
            if bar_w >= 22:
                body.append(text(x + (bar_w - 2) / 2, top + plot_h - h - 4, f"{v:.2f}", 10))
        body.append(text(x0 + (group_w - 24) / 2, top + plot_h + 18, group, 12.5))
    body.append(f'<line x1="{left}" x2="{left + group_w * len(groups)}" y1="{top + plot_h}" '
                f'y2="{top + plot_h}" stroke="#8a92a3"/>')
    return svg(element_id, width, height, body, label)


def heatmap(element_id, matrix, classes, title):
    """A confusion matrix: cells coloured by the row fraction (recall), counts written in."""
    cell, left, top = 78, 96, 56
    k = len(classes)
    width, height = left + cell * k + 12, top + cell * k + 14
    body = [text(left + cell * k / 2, 16, title, 13.5, extra=' font-weight="600"'),
            text(left + cell * k / 2, 38, "predicted", 11.5, fill="#5b6475")]
    for j, c in enumerate(classes):
        body.append(text(left + cell * (j + .5), top - 5, c, 11.5))
    for i, row in enumerate(matrix):
        total = sum(row)
        body.append(text(left - 6, top + cell * (i + .5) + 4, classes[i], 11.5, "end"))
        for j, v in enumerate(row):
            frac = v / total if total else 0.0
            # white -> deep blue
            r, g, b = (round(255 - frac * (255 - c)) for c in (23, 82, 160))
            fill = f"rgb({r},{g},{b})"
            ink = "#ffffff" if frac > 0.55 else "#1d2330"
            x, y = left + cell * j, top + cell * i
            body.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="3" '
                        f'fill="{fill}" stroke="{"#1d2330" if i == j else "none"}" '
                        f'stroke-width="{1.2 if i == j else 0}"><title>reference {esc(classes[i])}'
                        f', predicted {esc(classes[j])}: {v}</title></rect>')
            body.append(text(x + cell / 2 - 1, y + cell / 2 - 4, f"{100 * frac:.1f}%", 12.5,
                             fill=ink, extra=' font-weight="600"'))
            body.append(text(x + cell / 2 - 1, y + cell / 2 + 12, _short(v), 10.5, fill=ink))
    body.append(text(12, top + cell * k / 2, "reference", 11.5, fill="#5b6475",
                     extra=f' transform="rotate(-90 12 {top + cell * k / 2:.1f})"'))
    return svg(element_id, width, height, body, title)


def _short(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _bp(n):
    """A round length: 100 bp, 1 kbp, 10 kbp, 1 Mbp."""
    for unit, size in (("Mbp", 10 ** 6), ("kbp", 10 ** 3)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bp"


def line_chart(element_id, windows, names, series, label):
    """Genic F1 per window, windows side by side in genome order; sequence boundaries marked."""
    left, top, plot_w, plot_h = 52, 16, 1000, 220
    width, height = left + plot_w + 16, top + plot_h + 46
    n = len(windows)
    body = []
    y_axis(body, left, top, plot_w, plot_h, title="genic F1")

    def x_of(k):
        return left + (k + 0.5) * plot_w / max(1, n)

    starts = [k for k in range(n) if k == 0 or windows[k]["seqid"] != windows[k - 1]["seqid"]]
    for pos, k in enumerate(starts):
        end = starts[pos + 1] if pos + 1 < len(starts) else n
        xa, xb = left + k * plot_w / n, left + end * plot_w / n
        if k:
            body.append(f'<line x1="{xa:.1f}" x2="{xa:.1f}" y1="{top}" y2="{top + plot_h}" '
                        'stroke="#aab1bf" stroke-dasharray="3 3"/>')
        if len(starts) <= 24 and xb - xa > 7 * len(windows[k]["seqid"]) + 6:
            body.append(text((xa + xb) / 2, top + plot_h + 18, windows[k]["seqid"], 11))
    body.append(text(left + plot_w / 2, top + plot_h + 38,
                     "position along the genome (sequences in reference order)", 11.5,
                     fill="#5b6475"))
    for i, values in enumerate(series):
        path, pen_down = [], False
        for k, v in enumerate(values):
            if v is None:
                pen_down = False
                continue
            y = top + plot_h * (1 - v)
            path.append(f"{'L' if pen_down else 'M'}{x_of(k):.1f},{y:.1f}")
            pen_down = True
        body.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour(i)}" '
                    f'stroke-width="1.8" stroke-linejoin="round"><title>{esc(names[i])}</title>'
                    '</path>')
        # dots: every window when there are few, else those without a neighbour to join
        isolated = [v is not None and (n <= 60 or (k == 0 or values[k - 1] is None)
                                       and (k == n - 1 or values[k + 1] is None))
                    for k, v in enumerate(values)]
        body += [f'<circle cx="{x_of(k):.1f}" cy="{top + plot_h * (1 - v):.1f}" r="2.6" '
                 f'fill="{colour(i)}"/>' for k, v in enumerate(values) if isolated[k]]
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
                f'y2="{top + plot_h}" stroke="#8a92a3"/>')
    return svg(element_id, width, height, body, label)


def histogram_chart(element_id, title, edges, entries):
    """Step lines of length histograms (share of each annotation's features), log x axis."""
    used = [k for k in range(len(edges) - 1) if any(e["histogram"][k] for _, _, e in entries)]
    left, top, plot_w, plot_h = 50, 30, 260, 190
    width, height = left + plot_w + 34, top + plot_h + 44
    body = [text(left + plot_w / 2, 16, title, 13.5, extra=' font-weight="600"')]
    if not used:
        body.append(text(left + plot_w / 2, top + plot_h / 2, "none", 12, fill="#5b6475"))
        return svg(element_id, width, height, body, title)
    lo, hi = used[0], used[-1] + 1
    x_lo, x_hi = math.log10(edges[lo]), math.log10(edges[hi])

    def x_of(v):
        return left + plot_w * (math.log10(v) - x_lo) / max(1e-9, x_hi - x_lo)

    shares = [[c / max(1, e["n"]) for c in e["histogram"][lo:hi]] for _, _, e in entries]
    top_share = max(max(s) for s in shares) or 1.0
    ticks = [i / 4 * top_share for i in range(5)]
    for t in ticks:
        y = top + plot_h * (1 - t / top_share)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#e3e6eb"/>')
        body.append(text(left - 6, y + 4, f"{100 * t:.0f}%", 10.5, "end", "#5b6475"))
    for decade in range(math.ceil(x_lo), math.floor(x_hi) + 1):
        x = x_of(10 ** decade)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" '
                    'stroke="#8a92a3"/>')
        body.append(text(x, top + plot_h + 17, _bp(10 ** decade), 10.5))
    for (name, col, _), share in zip(entries, shares):
        pts = []
        for k, s in enumerate(share):
            y = top + plot_h * (1 - s / top_share)
            pts += [f"{x_of(edges[lo + k]):.1f},{y:.1f}", f"{x_of(edges[lo + k + 1]):.1f},{y:.1f}"]
        body.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{col}" '
                    f'stroke-width="1.8"><title>{esc(name)}</title></polyline>')
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
                f'y2="{top + plot_h}" stroke="#8a92a3"/>')
    body.append(text(left + plot_w / 2, top + plot_h + 36, "length (log scale)", 11.5,
                     fill="#5b6475"))
    return svg(element_id, width, height, body, title)


def table(header, rows):
    return ("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" +
            "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                    for row in rows) + "</table>")


def html_page(results, length_edges):
    preds = results["predictions"]
    names = [p["name"] for p in preds]
    classes = results["classes"]
    has_phase = any(p["phase_f1"] is not None for p in preds)
    ref = results["reference"]
    parts = [f"<h1>Annotation comparison</h1><p class=\"sub\">reference <code>{esc(ref['path'])}"
             f"</code> · {len(preds)} prediction(s) · rows of {results['subsequence_length']} bp"
             f" · {esc(results['tool'])} {esc(results['version'])}</p>"]
    # summary
    rows = []
    for p in preds:
        b = p["base_level"]
        rows.append([p["name"], fmt(b["genic"]["precision"]), fmt(b["genic"]["recall"]),
                     fmt(p["genic_f1"]), fmt(p["sub_genic_f1"]), fmt(p["phase_f1"])] +
                    [fmt(b["per_class"][c]["f1"]) for c in ("ig", "utr", "exon", "intron")] +
                    [f"{b['n_bases']:,}", f"{b['masked_bases']:,}",
                     f"{b['rows_compared']:,}/{ref['rows']:,}"])
    parts.append("<section><h2>Base level</h2>" + legend(names) + table(
        ["prediction", "genic precision", "genic recall", "genic F1", "sub-genic F1", "phase F1"]
        + [f"{c} F1" for c in classes] + ["bases compared", "bases masked", "rows"], rows) +
        "<p class=\"note\">Helixer's definitions: genic = TP/FP/FN summed over UTR, CDS and "
        "intron; sub-genic = over CDS and intron; phase = over phases 0, 1, 2. Masked bases "
        "(reference sample weight 0: error regions of the reference's gene models) are left "
        "out and counted.</p>")
    groups = ["genic", "sub-genic"] + classes + (["phase"] if has_phase else [])
    values = [[p["genic_f1"], p["sub_genic_f1"]] +
              [p["base_level"]["per_class"][c]["f1"] for c in ("ig", "utr", "exon", "intron")] +
              ([p["phase_f1"]] if has_phase else []) for p in preds]
    parts.append(bar_chart("f1-bars", groups, names, values, "F1 per prediction") +
                 "</section>")
    # confusion matrices
    maps = []
    for i, p in enumerate(preds):
        b = p["base_level"]
        maps.append(heatmap(f"confusion-{i}", b["confusion_matrix"], classes, p["name"]))
        if p["phase_f1"] is not None:
            maps.append(heatmap(f"phase-confusion-{i}", b["phase"]["confusion_matrix"],
                                ["none", "0", "1", "2"], f"{p['name']}: phase"))
    parts.append("<section><h2>Confusion matrices</h2><p class=\"note\">Rows: reference class; "
                 "columns: predicted class. Colour and percentage: share of the reference row "
                 "(recall); below: bases.</p><div class=\"grid\">" + "".join(maps) +
                 "</div></section>")
    # along the genome
    along = results["f1_along_genome"]
    parts.append("<section><h2>Genic F1 along the genome</h2>" + legend(names) +
                 line_chart("f1-along-genome", along["windows"], names,
                            [p["f1_along_genome"] for p in preds], "genic F1 along the genome") +
                 f"<p class=\"note\">Windows of {along['window_bp']:,} bp (both strands); gaps: "
                 "windows with no genic base in either the reference or the prediction.</p>"
                 "</section>")
    # features
    with_features = [p for p in preds if "features" in p]
    if with_features:
        levels = ["gene", "transcript", "exon", "intron", "cds_structure"]
        rows = [[p["name"], level.replace("_", " "), f"{p['features'][level]['reference']:,}",
                 f"{p['features'][level]['predicted']:,}",
                 f"{p['features'][level]['matched']:,}", fmt(p["features"][level]["precision"]),
                 fmt(p["features"][level]["recall"]), fmt(p["features"][level]["f1"])]
                for p in with_features for level in levels]
        fnames = [p["name"] for p in with_features]
        parts.append(
            "<section><h2>Feature level (exact coordinates)</h2>" + legend(fnames) +
            bar_chart("feature-f1", [lv.replace("cds_structure", "CDS structure")
                                     for lv in levels], fnames,
                      [[p["features"][lv]["f1"] for lv in levels] for p in with_features],
                      "feature F1") +
            table(["prediction", "level", "reference", "predicted", "matched", "precision",
                   "recall", "F1"], rows) +
            "<p class=\"note\">Coding models only. Gene: span of its coding transcripts; "
            "transcript: exon chain; CDS structure: a gene matches when one of its transcripts "
            "has exactly a CDS chain of the other side (recall over reference genes, precision "
            "over predicted genes).</p></section>")
    annotations = [a for a in results.get("annotations", []) if a.get("kind") == "gff3"]
    if annotations:
        entries = [(a["name"], REFERENCE_COLOUR if a["name"] == "reference" and
                    i == 0 else colour(names.index(a["name"])), a) for i, a in
                   enumerate(results["annotations"]) if a.get("kind") == "gff3"]
        count_keys = ["genes", "transcripts", "mono_exon_genes", "multi_exon_genes", "exons",
                      "introns"]
        rows = [[a["name"]] + [f"{a['counts'][k]:,}" for k in count_keys] +
                [f"{a['lengths'][lv].get('median', 0):,.0f}" for lv in ("gene", "exon", "intron")]
                for a in annotations]
        site_rows = [[a["name"], f"{a['splice_sites']['introns']:,}"] +
                     [f"{a['splice_sites'][k]:,}" for k in ("GT-AG", "GC-AG", "AT-AC")] +
                     [f"{a['splice_sites']['non_canonical']:,}",
                      f"{100 * a['splice_sites']['non_canonical_fraction']:.1f}%"]
                     for a in annotations]
        hists = "".join(histogram_chart(
            f"lengths-{lv}", f"{lv} lengths", length_edges,
            [(n, c, a["lengths"][lv]) for n, c, a in entries]) for lv in ("gene", "exon", "intron"))
        parts.append(
            "<section><h2>Gene models</h2>" +
            legend([a["name"] for a in annotations if a["name"] != "reference"],
                   with_reference=annotations[0]["name"] == "reference") +
            table(["annotation", "genes", "transcripts", "mono-exon genes", "multi-exon genes",
                   "exons", "introns", "median gene bp", "median exon bp", "median intron bp"],
                  rows) +
            "<div class=\"grid\">" + hists + "</div><h2>Splice sites</h2>" +
            table(["annotation", "introns", "GT-AG", "GC-AG", "AT-AC", "non-canonical",
                   "non-canonical share"], site_rows) +
            "<p class=\"note\">Intron dinucleotides on the transcript's strand (donor-acceptor)."
            "</p></section>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>Annotation comparison</title><style>" + CSS + "</style></head><body><main>"
            + "".join(parts) + "</main></body></html>\n")
