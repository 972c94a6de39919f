"""The replay report as one self-contained HTML file: inline SVG charts and CSS, no scripts, nothing from the network."""

from __future__ import annotations

import datetime
from html import escape

from app.policy.loader import LoadedPolicy
from app.policy_tools.conditions import comparisons
from app.policy_tools.replay.stats import BINS, ReplayStats
from app.policy_tools.replay.worker import CONTEXT_NAMES, SCORE_NAMES, Line

COLOURS = ("#3b6fb6", "#d9822b")
CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:1px solid #dde1e7;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}.muted{color:#5d6778}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:24px}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px}
.panel{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px 12px}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #e6e9ee;padding:6px 8px;text-align:left;vertical-align:top}
th{font-size:13px;color:#5d6778;font-weight:600}.ex{font-size:13px}.ex q{quotes:none;display:block;margin:2px 0}
.key span{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px 0 12px;vertical-align:-1px}
code{background:#eef1f5;padding:1px 4px;border-radius:3px;font-size:13px}
"""


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _bars(labels: list[str], series: list[list[int]], whole: int, names: list[str]) -> str:
    """Horizontal bars, one group per label and one bar per series, with the share printed at the end."""
    row, bar_h, left, width = 10 + 16 * len(series), 14, 250, 460
    height = row * len(labels) + 10
    top = max([1, *[v for s in series for v in s]])
    parts = [f'<svg viewBox="0 0 {left + width + 110} {height}" width="100%" role="img" aria-label="bar chart">']
    for i, label in enumerate(labels):
        y = 6 + i * row
        parts.append(f'<text x="{left - 8}" y="{y + bar_h}" text-anchor="end" font-size="13">{escape(label)}</text>')
        for j, values in enumerate(series):
            w = width * values[i] / top
            yy = y + j * 16
            parts.append(f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{COLOURS[j % 2]}" rx="2">'
                         f'<title>{escape(names[j])}: {values[i]}</title></rect>')
            parts.append(f'<text x="{left + w + 6:.1f}" y="{yy + 11}" font-size="12" fill="#3a4352">'
                         f'{_pct(values[i], whole)} ({values[i]})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(name: str, counts: list[int], thresholds: list[tuple[float, str]]) -> str:
    w, h, pad = 240, 110, 18
    top = max(1, *counts)
    step = w / BINS
    parts = [f'<svg viewBox="0 0 {w} {h + pad + 4}" width="100%" role="img" aria-label="histogram of {escape(name)}">']
    for i, c in enumerate(counts):
        bh = h * c / top
        parts.append(f'<rect x="{i * step + 0.5:.1f}" y="{h - bh:.1f}" width="{step - 1:.1f}" height="{bh:.1f}" fill="#3b6fb6">'
                     f'<title>{i / BINS:.2f}-{(i + 1) / BINS:.2f}: {c}</title></rect>')
    for value, colour in thresholds:
        x = value * w
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h}" stroke="{colour}" stroke-dasharray="4 3" stroke-width="1.5">'
                     f'<title>threshold {value:g}</title></line>')
    parts.append(f'<line x1="0" x2="{w}" y1="{h}" y2="{h}" stroke="#8a94a6"/>')
    for tick in (0, 0.5, 1):
        parts.append(f'<text x="{tick * w:.0f}" y="{h + 14}" font-size="11" text-anchor="{ {0.0: "start", 1.0: "end"}.get(float(tick), "middle")}" '
                     f'fill="#5d6778">{tick:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _thresholds(policies: list[LoadedPolicy]) -> dict[str, list[tuple[float, str]]]:
    out: dict[str, list[tuple[float, str]]] = {}
    for j, policy in enumerate(policies):
        for rule in policy.document.spec.rules:
            for c in comparisons(rule.when):
                field = c.variable.split(".", 1)[-1]
                if c.variable.startswith(("reply.", "context.")) and 0 <= c.value <= 1:
                    entry = (c.value, COLOURS[j % 2])
                    if entry not in out.setdefault(field, []):
                        out[field].append(entry)
    return out


def _example(line: Line, names: list[str]) -> str:
    decided = " → ".join(f"{escape(n)}: <b>{escape(r)}</b> ({escape(a)})" for n, (r, a) in zip(names, line.decisions, strict=True))
    scores = ", ".join(f"{n} {v:.2f}" for n, v in zip((*SCORE_NAMES, *CONTEXT_NAMES), line.values, strict=True) if v >= 0.3)
    return (f'<tr class="ex"><td>line {line.number}<br><span class="muted">id {escape(str(line.id))}</span></td>'
            f'<td><q><b>User:</b> {escape(line.user)}</q><q><b>Draft:</b> {escape(line.reply)}</q></td>'
            f'<td>{decided}<br><span class="muted">{escape(scores) or "all scores below 0.30"}</span></td></tr>')


def render(stats: ReplayStats, policies: list[LoadedPolicy], log: str) -> str:
    names = [p.name for p in policies]
    whole = stats.replayed
    title = f"Replay of {names[0]}" + (f" against {names[1]}" if len(names) > 1 else "")
    key = "".join(f'<span style="background:{COLOURS[i]}"></span>{escape(n)} v{escape(p.version)} ({escape(p.file)})'
                  for i, (n, p) in enumerate(zip(names, policies, strict=True)))
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="muted">Log <code>{escape(log)}</code> · {datetime.datetime.now():%Y-%m-%d %H:%M} · '
            f'{stats.seconds:.0f} s · no LLM was called: drafts were scored and each policy decided what it would do.</p>',
            f'<p class="key">{key}</p><div class="cards">',
            f'<div class="card"><b>{stats.lines:,}</b>lines read</div><div class="card"><b>{whole:,}</b>replayed</div>',
            f'<div class="card"><b>{sum(stats.skipped.values()):,}</b>skipped</div>']
    for i, s in enumerate(stats.policies):
        acted = whole - s.action_counts.get("allow", 0)
        body.append(f'<div class="card" style="border-color:{COLOURS[i]}"><b>{_pct(acted, whole)}</b>{escape(s.name)} acts</div>')
    if len(stats.policies) == 2:
        body.append(f'<div class="card"><b>{_pct(stats.changed, whole)}</b>outcome changes ({stats.changed:,})</div>')
    body.append("</div>")
    body += _rules_section(stats, whole, names)
    body.append("<h2>Score distributions</h2><p class=\"muted\">How the replayed drafts scored (20 bins from 0 to 1). "
                "Dashed lines: thresholds the policies use for that score.</p><div class=\"grid\">")
    marks = _thresholds(policies)
    for name in (*SCORE_NAMES, *CONTEXT_NAMES):
        group = "reply" if name in SCORE_NAMES else "context"
        body.append(f'<div class="panel"><h3>{group}.{escape(name)}</h3>{_histogram(name, stats.histograms[name], marks.get(name, []))}</div>')
    body.append("</div>")
    if len(stats.policies) == 2:
        body += _changes_section(stats, whole, names)
    body += _examples_section(stats, names)
    if stats.skipped:
        body.append("<h2>Skipped lines</h2><table><tr><th>Reason</th><th>Lines</th><th>For example</th></tr>")
        for reason, count in stats.skipped.most_common():
            body.append(f"<tr><td>{escape(reason)}</td><td>{count:,}</td><td>{', '.join(map(str, stats.skipped_lines.get(reason, [])))}</td></tr>")
        body.append("</table>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def _rules_section(stats: ReplayStats, whole: int, names: list[str]) -> list[str]:
    out = ["<h2>How often each rule fires</h2><p class=\"muted\">Share of replayed lines on which each rule is the first to hold "
           "(and so decides). <code>none</code>: the draft would go out untouched.</p>"]
    rules: list[str] = []
    for s in stats.policies:
        rules += [r for r in s.rules if r not in rules]
    rules.append("none")
    out.append(_bars(rules, [[s.rule_counts.get(r, 0) for r in rules] for s in stats.policies], whole, names))
    actions = sorted({a for s in stats.policies for a in s.action_counts}, key=lambda a: (a == "allow", a))
    out.append("<h3>Actions it would take</h3>")
    out.append(_bars(actions, [[s.action_counts.get(a, 0) for a in actions] for s in stats.policies], whole, names))
    return out


def _changes_section(stats: ReplayStats, whole: int, names: list[str]) -> list[str]:
    out = [f"<h2>Conversations that change outcome</h2><p>{stats.changed:,} of {whole:,} replayed lines "
           f"({_pct(stats.changed, whole)}) get a different decision from <b>{escape(names[1])}</b> than from "
           f"<b>{escape(names[0])}</b>.</p>"]
    if not stats.changes:
        return out
    out.append(f"<table><tr><th>{escape(names[0])}</th><th>{escape(names[1])}</th><th>Lines</th><th>Share</th></tr>")
    for (ra, aa, rb, ab), count in stats.changes.most_common(30):
        out.append(f"<tr><td>{escape(ra)} ({escape(aa)})</td><td>{escape(rb)} ({escape(ab)})</td><td>{count:,}</td><td>{_pct(count, whole)}</td></tr>")
    out.append("</table>")
    for key, count in stats.changes.most_common(10):
        out.append(f"<h3>{escape(key[0])} ({escape(key[1])}) → {escape(key[2])} ({escape(key[3])}): {count:,}</h3><table>")
        out += [_example(line, names) for line in stats.change_examples[key].items]
        out.append("</table>")
    return out


def _examples_section(stats: ReplayStats, names: list[str]) -> list[str]:
    out = ["<h2>Examples per rule</h2><p class=\"muted\">A random sample of the lines each rule fired on.</p>"]
    for s in stats.policies:
        for rule in s.rules:
            sample = s.examples.get(rule)
            if sample and sample.items:
                out.append(f"<h3>{escape(s.name)} / {escape(rule)}: {s.rule_counts[rule]:,} lines</h3><table>")
                out += [_example(line, names) for line in sample.items]
                out.append("</table>")
    return out

