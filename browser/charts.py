"""Charts as inline SVG drawn on the server: no chart library, nothing fetched by the page.

Each function returns markup ready to drop into a template; every chart carries a
``<title>`` and per-mark ``<title>`` tooltips so the numbers are readable on hover.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#78716c", "#ea580c"]

OUTCOME_COLORS = {
    "answered": "#16a34a",
    "transferred": "#0891b2",
    "voicemail": "#7c3aed",
    "no_answer": "#f59e0b",
    "busy": "#ea580c",
    "declined": "#db2777",
    "wrong_number": "#78716c",
    "do_not_call": "#111827",
    "failed": "#dc2626",
}

LATENCY_COMPONENTS = [
    ("eou_to_stt_final_ms", "end of speech → final transcript", "#0891b2"),
    ("llm_ttft_ms", "LLM first token", "#7c3aed"),
    ("tts_ttfb_ms", "TTS first audio", "#f59e0b"),
]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 4, 5, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _color(name: str, i: int) -> str:
    return OUTCOME_COLORS.get(name, PALETTE[i % len(PALETTE)])


def _legend(names: Sequence[str], colors: Sequence[str], x: float, y: float) -> list[str]:
    parts, cx = [], x
    for name, color in zip(names, colors, strict=True):
        parts.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{cx + 14:.1f}" y="{y:.1f}" class="legend">{escape(name)}</text>')
        cx += 24 + 7 * len(name)
    return parts


def _axes(width: float, height: float, left: float, top: float, plot_h: float, y_max: float, unit: str) -> list[str]:
    parts = []
    for i in range(5):
        v = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_fmt(v)}{escape(unit)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: float) -> list[str]:
    every = max(1, len(labels) // 8)
    return [
        f'<text x="{x:.1f}" y="{y:.1f}" class="tick" text-anchor="middle">{escape(lab)}</text>'
        for i, (lab, x) in enumerate(zip(labels, xs, strict=True))
        if i % every == 0
    ]


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    return Markup(head + "".join(body) + "</svg>")


def empty_chart(title: str, message: str = "no calls in this range", width: int = 640, height: int = 120) -> Markup:
    body = [f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">{escape(message)}</text>']
    return _svg(width, height, title, body, "empty-chart")


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    unit: str = "",
    width: int = 640,
    height: int = 260,
) -> Markup:
    """One bar per label, stacked by series (calls per day by outcome)."""
    if not labels or not series:
        return empty_chart(title, width=width)
    left, top, bottom = 56, 28, 28
    plot_w, plot_h = width - left - 10, height - top - bottom
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    y_max = _nice_max(max(totals))
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.75)
    names = list(series)
    colors = [_color(n, i) for i, n in enumerate(names)]
    body = _axes(width, height, left, top, plot_h, y_max, unit)
    xs = []
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        xs.append(x + bar_w / 2)
        base = top + plot_h
        for name, color in zip(names, colors, strict=True):
            v = series[name][i]
            if v <= 0:
                continue
            h = plot_h * v / y_max
            base -= h
            body.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(label)} · {escape(name)}: {_fmt(v)}{escape(unit)}</title></rect>"
            )
    body += _x_labels(labels, xs, height - 8)
    body += _legend(names, colors, left, 14)
    return _svg(width, height, title, body, "stacked-bars")


def line_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    unit: str = "",
    y_max: float | None = None,
    width: int = 640,
    height: int = 220,
) -> Markup:
    """One line per series over the labels; gaps (None) break the line."""
    values = [v for s in series.values() for v in s if v is not None]
    if not labels or not values:
        return empty_chart(title, width=width)
    left, top, bottom = 56, 28, 28
    plot_w, plot_h = width - left - 28, height - top - bottom
    y_top = y_max if y_max is not None else _nice_max(max(values))
    step = plot_w / max(1, len(labels) - 1) if len(labels) > 1 else 0
    xs = [left + (step * i if len(labels) > 1 else plot_w / 2) for i in range(len(labels))]
    names = list(series)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
    body = _axes(width, height, left, top, plot_h, y_top, unit)
    for name, color in zip(names, colors, strict=True):
        segments: list[list[str]] = [[]]
        for i, v in enumerate(series[name]):
            if v is None:
                segments.append([])
                continue
            y = top + plot_h - plot_h * min(v, y_top) / y_top
            segments[-1].append(f"{xs[i]:.1f},{y:.1f}")
            body.append(
                f'<circle cx="{xs[i]:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(labels[i])} · {escape(name)}: {_fmt(v)}{escape(unit)}</title></circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>')
    body += _x_labels(labels, xs, height - 8)
    body += _legend(names, colors, left, 14)
    return _svg(width, height, title, body, "line-chart")


def latency_breakdown(title: str, turns: Sequence[tuple[str, dict[str, float | None]]], width: int = 900) -> Markup:
    """Per agent turn, a horizontal bar split into STT, LLM and TTS time, with the voice-to-voice total."""
    if not turns:
        return empty_chart(title, "no latency measured for this call", width=width)
    row_h, left, top = 22, 70, 30
    height = top + row_h * len(turns) + 24
    plot_w = width - left - 70
    totals = []
    for _, parts in turns:
        summed = sum(parts.get(key) or 0 for key, _, _ in LATENCY_COMPONENTS)
        totals.append(max(summed, parts.get("voice_to_voice_ms") or 0))
    x_max = _nice_max(max(totals))
    body = []
    for i in range(5):
        x = left + plot_w * i / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{height - 20}" class="grid"/>')
        body.append(
            f'<text x="{x:.1f}" y="{height - 6}" class="tick" text-anchor="middle">{_fmt(x_max * i / 4)} ms</text>'
        )
    for row, (label, parts) in enumerate(turns):
        y = top + row * row_h
        body.append(f'<text x="{left - 6}" y="{y + 14}" class="tick" text-anchor="end">{escape(label)}</text>')
        x = float(left)
        for key, name, color in LATENCY_COMPONENTS:
            v = parts.get(key)
            if not v:
                continue
            w = plot_w * v / x_max
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}" class="latency-part">'
                f"<title>{escape(label)} · {escape(name)}: {_fmt(v)} ms</title></rect>"
            )
            x += w
        v2v = parts.get("voice_to_voice_ms")
        if v2v:
            xv = left + plot_w * v2v / x_max
            body.append(
                f'<line x1="{xv:.1f}" x2="{xv:.1f}" y1="{y + 1}" y2="{y + row_h - 3}" stroke="#111827" stroke-width="2">'
                f"<title>{escape(label)} · voice to voice: {_fmt(v2v)} ms</title></line>"
            )
            body.append(f'<text x="{xv + 4:.1f}" y="{y + 14}" class="tick">{_fmt(v2v)} ms</text>')
    names = [name for _, name, _ in LATENCY_COMPONENTS] + ["| voice to voice"]
    colors = [c for _, _, c in LATENCY_COMPONENTS] + ["#111827"]
    body += _legend(names, colors, left, 14)
    return _svg(width, height, title, body, "latency-chart")
