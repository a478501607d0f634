"""The report document (a stable JSON schema, README "Compliance reports") and its HTML rendering.

The HTML page is self-contained (inline CSS, no scripts, no external resources) and every value
drawn from the store passes through ``html.escape``: bucket names, keys and user names are
client-chosen text.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any

from rs3gw import __version__
from rs3gw.compliance.checks import STANDARDS, STATUSES, Finding, Params
from rs3gw.compliance.state import State
from rs3gw.timefmt import iso8601

SCHEMA = "rs3gw-compliance-report/1"


def summarize(standard: str, findings: list[Finding]) -> dict[str, Any]:
    counts = {st: sum(1 for f in findings if f.status == st) for st in STATUSES}
    parts = ", ".join(f"{counts[st]} {st}" for st in STATUSES)
    failing = sorted({f.control for f in findings if f.status == "fail"})
    return {
        **counts,
        "total": len(findings),
        "failing_controls": failing,
        "line": f"{standard.upper()}: {len(findings)} findings: {parts}",
    }


def build_document(standard: str, state: State, params: Params, findings: list[Finding]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generator": f"rs3gw {__version__}",
        "standard": standard,
        "standard_name": STANDARDS[standard][0],
        "generated_at": iso8601(state.now),
        "data_dir": state.data_dir,
        "parameters": asdict(params),
        "summary": summarize(standard, findings),
        "findings": [
            {
                "id": f"{f.check}:{f.resource}",
                "control": f.control,
                "control_title": f.control_title,
                "check": f.check,
                "resource": f.resource,
                "status": f.status,
                "title": f.title,
                "evidence": f.evidence,
                "recommendation": f.recommendation,
                "data": f.data,
            }
            for f in findings
        ],
    }


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f0f0f0}
.fail{background:#fdd}.warn{background:#ffe9b3}.pass{background:#dfd}.na{background:#eee}
.status{font-weight:bold;text-transform:uppercase}
"""


def render_html(doc: dict[str, Any]) -> str:
    e = html.escape
    s = doc["summary"]
    rows = []
    for f in doc["findings"]:
        cls = "na" if f["status"] == "n/a" else f["status"]
        rows.append(
            f'<tr class="{cls}" id="{e(f["id"])}"><td>{e(f["control"])}<br><small>{e(f["control_title"])}'
            f"</small></td><td>{e(f['check'])}</td><td>{e(f['resource'])}</td>"
            f'<td class="status">{e(f["status"])}</td><td>{e(f["evidence"])}</td>'
            f"<td>{e(f['recommendation'])}</td></tr>"
        )
    counts = "".join(f"<li>{e(st)}: {s[st]}</li>" for st in STATUSES)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(doc['standard_name'])} report: rs3gw</title><style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{e(doc['standard_name'])}: findings</h1>\n"
        f"<p>Generated {e(doc['generated_at'])} by {e(doc['generator'])} from {e(doc['data_dir'])}. "
        "Findings describe the state read at that time; they are evidence for the named controls, "
        "not a certification.</p>\n"
        f'<p id="summary">{e(s["line"])}</p><ul>{counts}</ul>\n'
        "<table><thead><tr><th>Control</th><th>Check</th><th>Resource</th><th>Status</th>"
        "<th>Evidence</th><th>Recommendation</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n</body></html>\n"
    )
