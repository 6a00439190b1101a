"""The after-action report as one HTML page, charts drawn as inline SVG (no script, no CDN)."""

from __future__ import annotations

from html import escape
from typing import Any

_BAR_H = 18
_LABEL_W = 90
_CHART_W = 520

_STYLE = """
body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccd;padding:.25rem .5rem}
th{background:#eef1f6;text-align:left}.num{text-align:right}
svg text{font-size:11px;font-family:inherit}
"""


def _bars(title: str, rows: list[tuple[str, float]], unit: str, colour: str) -> str:
    """A horizontal bar chart: one bar per row, scaled to the largest value."""
    if not rows:
        return f"<p>{escape(title)}: none.</p>"
    top = max(v for _, v in rows) or 1.0
    height = _BAR_H * len(rows) + 24
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{_LABEL_W + _CHART_W + 80}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="12" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = 20 + i * _BAR_H
        width = max(1.0, _CHART_W * value / top)
        parts.append(f'<text x="0" y="{y + 12}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{_LABEL_W}" y="{y + 2}" width="{width:.1f}" height="{_BAR_H - 5}" '
            f'fill="{colour}"><title>{escape(label)}: {value:g} {escape(unit)}</title></rect>'
        )
        parts.append(
            f'<text x="{_LABEL_W + width + 4:.1f}" y="{y + 12}">{value:g} {escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{value:g}</td>'
    return f"<td>{escape(str(value))}</td>"


def render(report: dict[str, Any], names: dict[str, str] | None = None) -> str:
    """The page for a report from ``hub.drills.report.build``; ``names`` labels codes."""
    names = names or {}
    per = report["jurisdictions"]

    def label(code: str) -> str:
        return f"{names.get(code, code)}"

    ack = [
        (label(c), p["time_to_acknowledge_s"]["median"] / 60)
        for c, p in per.items()
        if p["time_to_acknowledge_s"]["median"] is not None
    ]
    missed = [(label(c), float(p["deadlines_missed"])) for c, p in per.items()]
    resources = report["resources"]
    fill = [
        (item, float(resources["held"].get(item, 0))) for item in sorted(resources["requested"])
    ]
    rows = "".join(
        "<tr>"
        + _cell(f"{label(c)} ({c})")
        + "".join(
            _cell(v)
            for v in (
                p["tasks"],
                p["acknowledged"],
                p["time_to_acknowledge_s"]["median"],
                p["time_to_accept_s"]["median"],
                p["deadlines_missed"],
                p["escalations"],
                p["declined"],
            )
        )
        + "</tr>"
        for c, p in per.items()
    )
    refusals = "".join(
        "<tr>" + "".join(_cell(r.get(k)) for k in ("depot", "item", "quantity", "reason")) + "</tr>"
        for r in report["policy_refusals"]
    )
    rate = resources["fill_rate"]
    drill = escape(str(report.get("drill") or ""))
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>演练评估报告 / After-action report {drill}</title><style>{_STYLE}</style>"
        f"</head><body><h1>演练评估报告 / After-action report: {drill}</h1>"
        f"<p>{report['incidents']} incidents, {report['tasks']} tasks, "
        f"{report['deadlines_missed']} deadlines missed, {report['escalations']} escalations; "
        f"fill rate {'–' if rate is None else f'{rate:.0%}'}.</p>"
        "<h2>响应时间 / Time to acknowledge</h2>"
        + _bars("median time to acknowledge", ack, "min", "#3b6fb6")
        + "<h2>超时 / Deadlines missed</h2>"
        + _bars("deadlines missed", missed, "", "#c0392b")
        + "<h2>物资 / Resources held by item</h2>"
        + _bars("held", fill, "", "#2e8b57")
        + "<h2>各辖区 / Per jurisdiction</h2><table><tr><th>jurisdiction</th><th>tasks</th>"
        "<th>acknowledged</th><th>ack median s</th><th>accept median s</th>"
        "<th>deadlines missed</th><th>escalations</th><th>declined</th></tr>"
        + rows
        + "</table><h2>策略拒绝 / Policy refusals</h2><table><tr><th>depot</th><th>item</th>"
        "<th>quantity</th><th>reason</th></tr>" + refusals + "</table></body></html>"
    )
