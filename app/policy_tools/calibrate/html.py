"""The calibration report as one self-contained HTML file: precision, recall and action-rate curves as inline SVG, no
scripts, nothing from the network (it opens offline and can be attached to a ticket)."""

from __future__ import annotations

import datetime
from html import escape

from app.policy_tools.calibrate.metrics import MIN_FLAGGED, Point
from app.policy_tools.calibrate.run import Calibration, Item
from app.policy_tools.calibrate.summary import percent
from app.policy_tools.replay.html import CSS

SERIES = (("precision", "#3b6fb6"), ("recall", "#2f9e5b"), ("action rate", "#d9822b"))
_EXTRA_CSS = """
.item{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;margin:14px 0}
.item .cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.15fr);gap:16px}
.item table td,.item table th{font-size:13px;padding:4px 6px}
@media (max-width:760px){.item .cols{grid-template-columns:1fr}}
.warn{color:#9a4d00}.refused{color:#a12a2a}.faint{stroke:#e6e9ee}
"""
_W, _H, _L, _B = 460, 210, 34, 24


def _value(point: Point, series: str) -> float | None:
    if series == "precision":
        return point.precision if point.flagged >= MIN_FLAGGED else None
    return point.recall if series == "recall" else point.rate


def _chart(item: Item) -> str:
    def x(t: float) -> float:
        return _L + t * (_W - _L - 8)

    def y(v: float) -> float:
        return 8 + (1 - v) * (_H - _B - 8)

    parts = [f'<svg viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="precision, recall and action rate of '
             f'{escape(item.name)} by threshold">']
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<line class="faint" x1="{x(0):.1f}" x2="{x(1):.1f}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                     f'<text x="{_L - 4}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end" fill="#5d6778">{tick:g}</text>'
                     f'<text x="{x(tick):.1f}" y="{_H - 8}" font-size="10" text-anchor="middle" fill="#5d6778">{tick:g}</text>')
    for series, colour in SERIES:
        runs: list[list[str]] = [[]]
        for point in item.curve:
            value = _value(point, series)
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(point.threshold):.1f},{y(value):.1f}")
        for run in (r for r in runs if len(r) > 1):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}">'
                         f"<title>{series}</title></polyline>")
    marks = [(item.current_threshold, "#5d6778", "now")]
    if item.proposed is not None:
        marks.append((item.proposed.threshold, "#a12a2a", "proposed"))
    for value, colour, name in marks:
        if value is not None and 0 <= value <= 1:
            parts.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="8" y2="{y(0):.1f}" stroke="{colour}" '
                         f'stroke-dasharray="4 3" stroke-width="1.5"><title>{name}: {value:g}</title></line>'
                         f'<text x="{x(value) + 3:.1f}" y="16" font-size="10" fill="{colour}">{name} {value:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: float | None, interval: tuple[float, float], part: int, whole: int) -> str:
    if value is None:
        return "<td>-</td>"
    return (f"<td><b>{percent(value)}</b> <span class=\"muted\">[{percent(interval[0])}-{percent(interval[1])}] "
            f"{part:,}/{whole:,}</span></td>")


def _row(name: str, point: Point | None) -> str:
    if point is None:
        return f"<tr><td>{name}</td><td colspan=4>-</td></tr>"
    return (f"<tr><td>{name}</td><td>{point.threshold:g}</td>"
            + _cell(point.precision, point.precision_interval, point.true_positives, point.flagged)
            + _cell(point.recall, point.recall_interval, point.true_positives, point.positives)
            + _cell(point.rate, point.rate_interval, point.acted, point.traffic) + "</tr>")


def _item(item: Item) -> str:
    title = f"{escape(item.name)}" + (f' <span class="muted">({escape(item.variable)})</span>' if item.variable else "")
    if not item.curve:
        return f'<div class="item"><h3>{title}</h3><p class="refused">{escape(item.reason)}</p></div>'
    verdict = (f"<p><b>{item.current_threshold:g} → {item.proposed.threshold:g}</b>: {escape(item.reason)}</p>"
               if item.proposed is not None and item.moves else
               f"<p><b>stays at {item.current_threshold}</b>: {escape(item.reason)}</p>" if item.proposed is not None else
               f'<p class="refused">No proposal: {escape(item.reason)}</p>')
    warnings = "".join(f'<p class="warn">{escape(w)}</p>' for w in item.warnings)
    table = ("<table><tr><th></th><th>threshold</th><th>precision</th><th>recall</th><th>action rate</th></tr>"
             + _row("now", item.current) + _row("proposed", item.proposed) + "</table>")
    counts = (f'<p class="muted">{item.positives:,} reviewed decisions with the label, {item.negatives:,} without. '
              f"Precision is drawn where at least {MIN_FLAGGED} reviewed decisions act.</p>")
    return (f'<div class="item"><h3>{title}</h3><div class="cols"><div>{_chart(item)}</div><div>{verdict}{warnings}{table}'
            f"{counts}</div></div></div>")


def render(result: Calibration, proposed_file: str | None, diff_lines: list[str]) -> str:
    policy = result.policy
    title = f"Calibration of {policy.name} for {result.goal}"
    key = "".join(f'<span style="background:{c}"></span>{n}' for n, c in SERIES)
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="muted">{escape(policy.file)} v{escape(policy.version)} ({escape(policy.revision)}) · '
            f"{datetime.datetime.now():%Y-%m-%d %H:%M} · {result.reviewed:,} reviewed decisions ({result.policy_reviewed:,} "
            f"by this policy) · action rates on {escape(result.traffic_source)} ({result.traffic:,})</p>",
            "<p>Precision: of the decisions where the label is flagged or the rule acts, the share a reviewer marked as "
            "having the problem. Recall: of the reviewed decisions with the problem, the share caught. Action rate: the "
            "share of decisions acted on. Brackets: 95% intervals and the counts behind each figure; a wide interval "
            "means too few reviews to be sure.</p>"]
    body += [f'<p class="warn">{escape(n)}</p>' for n in result.notes]
    body.append(f'<p class="key">{key}<span style="background:#5d6778"></span>now<span style="background:#a12a2a">'
                f"</span>proposed</p>")
    body.append("<h2>Proposed policy change</h2>")
    if diff_lines:
        body.append(f"<p>Written to <code>{escape(proposed_file or '')}</code>; as <code>heedful policy diff</code> "
                    "prints it:</p><pre>" + escape("\n".join(diff_lines)) + "</pre>")
    else:
        body.append("<p>No rule threshold moves.</p>")
    body.append("<h2>Rules</h2><p class=\"muted\">Each rule is measured as it would act: where its condition holds and no "
                "earlier deciding rule does. <i>now</i>: the file as it is; the curve and <i>proposed</i>: with the earlier "
                "rules as the proposed file has them.</p>")
    body += [_item(i) for i in result.rules]
    body.append("<h2>Labels (the model's flag thresholds)</h2><p class=\"muted\">A flag is set where the score reaches the "
                "model's threshold (thresholds.json); rules such as <code>'crisis' in flags</code> act on flags.</p>")
    body += [_item(i) for i in result.labels]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}{_EXTRA_CSS}</style></head>'
            f"<body><main>{''.join(body)}</main></body></html>\n")
