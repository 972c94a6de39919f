"""Server-side pieces of the pages: the draft/final diff (difflib, word by word) and SVG charts (no script, no network)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from difflib import SequenceMatcher

from markupsafe import Markup, escape

from app.console.queries import Bucket

_WORDS = re.compile(r"\s+|[^\s]+")


def side_by_side(draft: str, final: str) -> tuple[Markup, Markup]:
    """The draft with removed words marked <del>, the final reply with added words marked <ins>."""
    a, b = _WORDS.findall(draft), _WORDS.findall(final)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if i2 > i1:
            left.append(f"<del>{old}</del>")
        if j2 > j1:
            right.append(f"<ins>{new}</ins>")
    return Markup("".join(left)), Markup("".join(right))


def _label(ts: float, span: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%H:%M" if span <= 2 * 86400 else "%m-%d")


def rate_chart(buckets: list[Bucket], title: str) -> Markup:
    """Flag rate and action rate per bucket as two polylines (0-100 %), with the decision count as faint bars."""
    width, height, pad = 640, 200, 36
    if not buckets:
        return Markup("")
    step = (width - 2 * pad) / max(1, len(buckets) - 1)
    most = max((b.total for b in buckets), default=0) or 1

    def y(rate: float) -> float:
        return height - pad - rate * (height - 2 * pad)

    bars, flag_pts, act_pts, dots = [], [], [], []
    for i, b in enumerate(buckets):
        x = pad + i * step
        bar_h = (b.total / most) * (height - 2 * pad)
        bars.append(f'<rect x="{x - step / 3:.1f}" y="{height - pad - bar_h:.1f}" width="{2 * step / 3:.1f}" '
                    f'height="{bar_h:.1f}" class="count"><title>{b.total} decisions</title></rect>')
        if b.total:
            flag_pts.append(f"{x:.1f},{y(b.flagged / b.total):.1f}")
            act_pts.append(f"{x:.1f},{y(b.acted / b.total):.1f}")
            # Dots, so a bucket without neighbours still shows (a line needs two points).
            dots.append(f'<circle cx="{x:.1f}" cy="{y(b.flagged / b.total):.1f}" r="3" class="flag-dot"><title>'
                        f'{b.flagged} of {b.total} flagged</title></circle>'
                        f'<circle cx="{x:.1f}" cy="{y(b.acted / b.total):.1f}" r="3" class="act-dot"><title>'
                        f'{b.acted} of {b.total} acted on</title></circle>')
    span = buckets[-1].start - buckets[0].start
    ticks = "".join(f'<text x="{pad + i * step:.1f}" y="{height - pad + 16}" class="tick">{_label(b.start, span)}</text>'
                    for i, b in enumerate(buckets) if i % max(1, len(buckets) // 6) == 0)
    grid = "".join(f'<line x1="{pad}" x2="{width - pad}" y1="{y(r):.1f}" y2="{y(r):.1f}" class="grid"/>'
                   f'<text x="4" y="{y(r) + 4:.1f}" class="tick">{int(r * 100)}%</text>' for r in (0, 0.5, 1))
    return Markup(
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="chart">'
        f'<title>{escape(title)}</title>{grid}{"".join(bars)}'
        f'<polyline points="{" ".join(flag_pts)}" class="flag-line"/>'
        f'<polyline points="{" ".join(act_pts)}" class="act-line"/>{"".join(dots)}{ticks}'
        f'<text x="{width - pad - 150}" y="14" class="legend flag">— flag rate</text>'
        f'<text x="{width - pad - 60}" y="14" class="legend act">— action rate</text></svg>')


def bar_chart(rows: list[tuple[str, int]], title: str) -> Markup:
    """Horizontal bars, one per row, longest first."""
    if not rows:
        return Markup("<p class=muted>No decisions in this window.</p>")
    width, row_h, label_w = 640, 22, 260
    most = max(n for _, n in rows) or 1
    parts = []
    for i, (name, count) in enumerate(rows):
        w = (count / most) * (width - label_w - 60)
        parts.append(f'<text x="0" y="{i * row_h + 15}" class="tick">{escape(name)}</text>'
                     f'<rect x="{label_w}" y="{i * row_h + 4}" width="{w:.1f}" height="{row_h - 8}" class="bar"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{i * row_h + 15}" class="tick">{count}</text>')
    return Markup(f'<svg viewBox="0 0 {width} {len(rows) * row_h + 4}" role="img" aria-label="{escape(title)}" '
                  f'class="chart"><title>{escape(title)}</title>{"".join(parts)}</svg>')
