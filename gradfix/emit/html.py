"""The review page: one self-contained HTML file (inline CSS and SVG, nothing fetched) made from the report document.

For each finding: what and why, the fix side by side with the code it replaces (``html_diff``), its applicability
and verification. Above them, the model as the run saw it (``html_picture``).
"""

from __future__ import annotations

from gradfix.docs import installed_page_url, page
from gradfix.emit.html_diff import side_by_side
from gradfix.emit.html_picture import (
    BOX_WIDTH,
    BREAK_LENGTH,
    GAP,
    model_picture,
    narrow_model_picture,
    picture_width,
)
from gradfix.emit.html_text import escaped, prose
from gradfix.emit.markdown import to_html as markdown_html
from gradfix.patch import verification_text
from gradfix.registry import rule_by_code

# --------------------------------------------------------------------------- findings

BADGE = {"safe": "safe", "unsafe": "unsafe", "display-only": "display"}
SHOWN_VARIABLES = 8  # more are summarised in one line, the list behind it


def _fix_diff(document: dict, finding: dict) -> str:
    """The diff of the file patch that holds this finding's fix (the file's whole patch: fixes compose)."""
    fix = finding.get("fix")
    if not fix:
        return ""
    for patch in document.get("fixes", []):
        if patch["path"] == finding["span"]["path"] and any(f["rule"] == fix["rule"] for f in patch["fixes"]):
            return patch["diff"]
    return ""


def rule_link(finding: dict) -> str:
    """Where a finding's rule is explained: the project's published page when it set ``docs-url``, else the rule's
    documentation on this page (the page installed with gradfix is Markdown, which a browser shows as raw text)."""
    url = finding.get("url") or ""
    try:
        installed = url == installed_page_url(finding["rule"])
    except KeyError:  # a code no rule has: its link leads to the folder of pages
        return url
    return f"#rule-{finding['rule']}" if installed or not url else url


def finding_section(document: dict, finding: dict, index: int) -> str:
    span = finding["span"]
    fix = finding.get("fix")
    where = f"{span['path']}:{span['start_line']}:{span['start_column']}"
    link = rule_link(finding)
    code = (f'<a class="code-id" href="{escaped(link)}">{escaped(finding["rule"])}</a>' if link
            else f'<span class="code-id">{escaped(finding["rule"])}</span>')
    parts = [f'<section class="finding" id="finding-{index}">',
             f'<h2>{code} {escaped(finding["name"])} '
             f'<span class="where">{escaped(where)}</span></h2>',
             f'<p class="message">{prose(finding["message"])}</p>']
    if finding.get("detail"):
        parts.append(f'<p class="detail">{prose(finding["detail"])}</p>')
    if finding.get("explanation"):
        parts.append(f'<p class="explanation">{prose(finding["explanation"])}</p>')
    if finding.get("variables"):
        listed = ", ".join(f"<code>{escaped(v)}</code>" for v in finding["variables"])
        if len(finding["variables"]) <= SHOWN_VARIABLES:
            parts.append(f'<p class="vars">Variables without a gradient: {listed}</p>')
        else:  # a long list is one line until opened
            from gradfix.messages import variables_summary

            parts.append(f'<details class="vars"><summary>{prose(variables_summary(finding["variables"]))} get no '
                         f'gradient</summary><p>{listed}</p></details>')
    if fix:
        applicability = fix["applicability"]
        verified = fix.get("verified")
        state = {True: "verified", False: "failed", None: "unverified"}[verified]
        parts.append('<div class="fixline">'
                     f'<span class="badge {BADGE[applicability]}">{escaped(applicability)}</span>'
                     f'<span class="badge {state}">{escaped(verification_text(verified))}</span>'
                     f'<span class="desc">{prose(fix["description"])}</span></div>')
        if fix.get("reason"):
            parts.append(f'<p class="reason">Why {escaped(applicability)}: {prose(fix["reason"])}</p>')
        diff = _fix_diff(document, finding)
        label = f"finding {index + 1} ({finding['rule']} at {where}): the code before and after the fix"  # unique
        parts.append(side_by_side(diff, label) if diff
                     else '<p class="empty">This fix is a suggestion; gradfix writes no patch for it.</p>')
    else:
        parts.append('<div class="fixline"><span class="badge none">no automatic fix</span></div>')
    if link:
        words = "the rule's documentation, at the end of this page" if link.startswith("#") else "the rule's page"
        parts.append(f'<p class="doc"><a href="{escaped(link)}">{escaped(finding["rule"])} {escaped(finding.get("name", ""))}: '
                     f'{words}</a></p>')
    parts.append("</section>")
    return "".join(parts)


def rules_section(document: dict) -> str:
    """The documentation of every rule the page reports, from the Markdown pages gradfix ships, each folded in a
    ``<details id="rule-CODE">`` that the findings link to. Open, so that a link to it shows it in any browser."""
    parts = []
    for code in dict.fromkeys(finding["rule"] for finding in document["findings"]):
        try:
            rule = rule_by_code(code)
        except KeyError:
            continue
        markdown = page(rule)
        if markdown.startswith("# "):  # the title is the summary line of the details
            markdown = markdown.split("\n", 1)[1] if "\n" in markdown else ""
        parts.append(f'<details class="rule" id="rule-{escaped(rule.code)}" open><summary><span class="code-id">{escaped(rule.code)}'
                     f'</span> {escaped(rule.name)}</summary>{markdown_html(markdown, heading_offset=1)}</details>')
    if not parts:
        return ""
    return ('<section class="panel rules" id="rules"><h2>The rules reported</h2>' + "".join(parts) + "</section>")


def _count_item(document: dict) -> str:
    findings = document["findings"]
    read = sum(1 for f in findings if f.get("evidence") == "static") if document.get("diagnose") else 0
    total = f"<b>{len(findings)}</b> finding{'s' * (len(findings) != 1)}"
    return f"<li>{total} ({len(findings) - read} from the run, {read} by reading the code)</li>" if read else f"<li>{total}</li>"


def _findings(document: dict) -> str:
    """The run's findings, then those found by reading the code that the run does not account for."""
    indexed = list(enumerate(document["findings"]))
    ran = [(i, f) for i, f in indexed if f.get("evidence") != "static"]
    read = [(i, f) for i, f in indexed if f.get("evidence") == "static"]
    if not document.get("diagnose"):
        ran, read = indexed, []
    parts = ['<h2 class="findings-title">Findings and their fixes</h2>']
    parts.extend(finding_section(document, f, i) for i, f in ran)
    if not ran:
        parts.append('<p class="empty">No findings from the run: every trainable variable gets a gradient.</p>'
                     if document.get("diagnose") else '<p class="empty">No findings.</p>')
    if read:
        parts.append('<h2 class="findings-title">Also found by reading the code</h2><p class="detail">What '
                     '<code>gradfix check</code> finds in the same files that the run does not account for: bug shapes '
                     'on paths this step did not take, or findings the run disproves. Their fixes were not run.</p>')
        parts.extend(finding_section(document, f, i) for i, f in read)
    return "".join(parts)


def _summary(document: dict) -> str:
    diagnose = document.get("diagnose") or {}
    gradients = diagnose.get("gradients") or {}
    missing = sum(1 for ok in gradients.values() if not ok)
    verification = document.get("verification") or {}
    after = verification.get("after") or {}
    items = [f"<li><b>{len(gradients) - missing}</b> of {len(gradients)} variables get a gradient</li>" if gradients else "",
             f'<li class="bad"><b>{missing}</b> do not</li>' if missing else "",
             _count_item(document)]
    if after:
        fixed = sum(1 for ok in after.values() if ok)
        items.append(f'<li class="{"good" if fixed == len(after) else "bad"}">after the fixes: '
                     f"<b>{fixed}</b> of {len(after)}</li>")
    status = diagnose.get("status", "")
    if status and status != "ok":
        items.append(f'<li class="bad">run status: {escaped(status)}</li>')
    return f'<ul class="summary">{"".join(items)}</ul>'


CSS = """
:root { --green:#166534; --green-bg:#dcfce7; --red:#991b1b; --red-bg:#fee2e2; --amber:#92400e; --amber-bg:#fef3c7;
        --ink:#111827; --muted:#4b5563; --line:#e5e7eb; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.92em; background: #f3f4f6; border-radius: 3px; padding: 0 3px; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; background: #f9fafb; }
header { background: #111827; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; color: #d1d5db; }
main { padding: 20px 32px 48px; max-width: 1400px; }
.summary { display: flex; gap: 12px; list-style: none; padding: 0; margin: 0 0 20px; flex-wrap: wrap; }
.summary li { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; }
.summary li.bad { border-color: var(--red); color: var(--red); } .summary li.good { border-color: var(--green); color: var(--green); }
.panel { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin-bottom: 22px; }
.picture { overflow-x: auto; } .picture-hint { display: none; font-size: 13px; color: var(--muted); margin: 0 0 4px; }
svg.model { display: block; max-width: none; }  /* never scaled down: a narrow window scrolls it, its labels stay readable */
.panel h2 { margin: 0 0 8px; font-size: 18px; }
.legend span { display: inline-block; margin-right: 18px; font-size: 13px; color: var(--muted); }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 6px; }
svg.model text { font-family: system-ui, sans-serif; text-anchor: middle; }
svg.model .caption { text-anchor: start; fill: var(--muted); font-size: 12px; }
svg.model .name { font-size: 13px; font-weight: 600; } svg.model .cls { font-size: 11px; fill: #374151; }
.layer rect { stroke-width: 2; }
.layer.connected rect { fill: var(--green-bg); stroke: var(--green); }
.layer.disconnected rect { fill: var(--red-bg); stroke: var(--red); stroke-dasharray: 7 4; }
.layer.partial rect { fill: var(--amber-bg); stroke: var(--amber); stroke-dasharray: 2 3; }
svg.model .state { font-size: 11px; font-weight: 700; }
.layer.connected .state { fill: var(--green); } .layer.disconnected .state { fill: var(--red); } .layer.partial .state { fill: var(--amber); }
.flow { stroke: #4b5563; stroke-width: 2; }
.tensor { fill: var(--green-bg); stroke: var(--green); stroke-width: 2; }
.loss { fill: #e0e7ff; stroke: #4338ca; stroke-width: 2; }
.cut { stroke: var(--red); stroke-width: 3; stroke-dasharray: 8 6; }
.break circle { fill: var(--red); } .break .x { fill: white; font-size: 15px; font-weight: 700; }
.break .site { fill: var(--red); font-size: 12px; font-weight: 600; } .break .code { fill: #374151; font-size: 11px; font-family: ui-monospace, monospace; }
.finding { background: white; border: 1px solid var(--line); border-left: 5px solid var(--red); border-radius: 10px; padding: 14px 20px; margin-bottom: 22px; }
.finding h2 { font-size: 17px; margin: 0 0 6px; } .code-id { background: var(--ink); color: white; border-radius: 4px; padding: 1px 7px; font-size: 14px; }
.where { color: var(--muted); font-weight: 400; font-family: ui-monospace, monospace; font-size: 14px; margin-left: 8px; }
.message { margin: 4px 0; font-weight: 600; } .detail, .explanation { color: #374151; margin: 4px 0 8px; }
.reason, .doc, .vars { color: var(--muted); font-size: 13px; margin: 6px 0; }
details.vars summary { cursor: pointer; }
.fixline { display: flex; gap: 8px; align-items: center; margin: 10px 0; flex-wrap: wrap; }
.badge { border-radius: 999px; padding: 2px 10px; font-size: 12px; font-weight: 600; border: 1px solid; }
.badge.safe, .badge.verified { color: var(--green); background: var(--green-bg); }
.badge.unsafe { color: var(--amber); background: var(--amber-bg); }
.badge.display, .badge.unverified, .badge.none { color: var(--muted); background: #f3f4f6; }
.badge.failed { color: var(--red); background: var(--red-bg); }
.desc { font-weight: 600; }
table.diff { border-collapse: collapse; width: 100%; font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
table.diff col.num { width: 42px; } table.diff col.code { width: 50%; } table.diff thead th { text-align: left; font: 600 12px system-ui, sans-serif; color: var(--muted); padding: 4px 8px; }
.diff-scroll { overflow-x: auto; }
/* code wraps only at spaces; a word longer than its column widens the column, and the diff's box scrolls */
table.diff td { padding: 0 8px; vertical-align: top; white-space: pre-wrap; overflow-wrap: normal; word-break: normal; }
table.diff span.w { white-space: nowrap; }
table.diff del { background: #fca5a5; text-decoration: none; border-radius: 2px; }
table.diff ins { background: #86efac; text-decoration: none; border-radius: 2px; }
table.diff td.num { color: var(--muted); text-align: right; user-select: none; border-right: 1px solid var(--line); }
table.diff td.del { background: var(--red-bg); } table.diff td.add { background: var(--green-bg); }
table.diff td.empty { background: #f3f4f6; }
table.diff tr.hunk td { color: #3730a3; background: #eef2ff; padding: 2px 8px; }
table.diff tr.file th { text-align: left; font: 600 13px ui-monospace, monospace; padding: 6px 8px; border-bottom: 1px solid var(--line); }
.empty { color: var(--muted); font-style: italic; }
.rules details.rule { border-top: 1px solid var(--line); padding: 8px 0; }
.rules summary { cursor: pointer; font-weight: 600; }
.rules h3 { font-size: 15px; margin: 14px 0 4px; }
.rules pre { background: #f3f4f6; border-radius: 6px; padding: 8px 10px; overflow-x: auto; font-size: 12.5px; }
.rules pre code { background: none; padding: 0; }
a.code-id { text-decoration: none; } a.code-id:hover, a.code-id:focus { text-decoration: underline; }
/* a narrow window: one column of code, each old line above the new one (a unified diff), lines unwrapped and
   scrolled sideways in the diff's own box */
@media (max-width: 760px) {
  header { padding: 14px 14px; } main { padding: 16px 10px 40px; }
  .panel, .finding { padding: 12px 12px; }
  table.diff, table.diff tbody { display: block; }
  table.diff { width: max-content; min-width: 100%; }
  table.diff colgroup, table.diff thead { display: none; }
  table.diff tr { display: grid; grid-template-columns: 36px 36px 1fr; }
  table.diff td { white-space: pre; }
  table.diff tr td.num { padding: 0 4px; }
  table.diff tr > :nth-child(1) { grid-area: 1 / 1; } table.diff tr > :nth-child(2) { grid-area: 1 / 3; }
  table.diff tr > :nth-child(3) { grid-area: 2 / 2; } table.diff tr > :nth-child(4) { grid-area: 2 / 3; }
  table.diff tr.same > :nth-child(3) { grid-row: 1; } table.diff tr.same > :nth-child(4) { display: none; }
  table.diff tr.file > *, table.diff tr.hunk > * { grid-area: 1 / 1 / 2 / -1; }
  table.diff td.empty { display: none; }
  table.diff td.code::before { content: "  "; } table.diff td.del::before { content: "- "; }
  table.diff td.add::before { content: "+ "; }
}
"""


def _picture_hint_rule(document: dict) -> str:
    """Shows the hint above the wide model picture in a window too narrow for it: the picture never shrinks, so
    what lies past the window's edge is hidden until scrolled to. Narrower still, below the width that the break
    row alone needs, the narrow picture takes its place (NARROW_PICTURE_RULE)."""
    width = picture_width(document) if document.get("diagnose") else None
    if width is None:
        return ""
    return f"@media (max-width: {width + PAGE_MARGINS}px) {{ .picture-hint {{ display: block; }} }}"


# main's and the panel's padding, the panel's borders and a scroll bar: the window that shows the picture whole
PAGE_MARGINS = 2 * 32 + 2 * 20 + 2 + 20
# the narrowest any wide picture is: its break row, the last connected tensor, the cut and the loss
WIDE_PICTURE_MIN = 2 * BOX_WIDTH + BREAK_LENGTH + 2 * GAP
# One of the two pictures is shown, the other is not displayed at all (so that a screen reader meets one picture):
# the wide one in any window that fits its break row, and there, with the hint, in a box that scrolls if its rows
# are wider still; the narrow one, which fits a phone, in a window narrower than that.
NARROW_PICTURE_RULE = (f".narrow-picture {{ display: none; }} @media (max-width: {WIDE_PICTURE_MIN + PAGE_MARGINS}px) "
                       "{ .wide-picture { display: none; } .narrow-picture { display: block; } }")


def render(document: dict) -> str:
    diagnose = document.get("diagnose") or {}
    title = f"gradfix review: {diagnose.get('target') or document['command']}"
    findings = _findings(document)
    picture = ""
    if diagnose:
        picture = ('<section class="panel" id="model"><h2>The model as the run saw it</h2>'
                   '<p class="legend"><span><i style="background:#dcfce7;border:2px solid #166534"></i>✓ gets gradients</span>'
                   '<span><i style="background:#fee2e2;border:2px dashed #991b1b"></i>✕ gets no gradient</span>'
                   '<span><i style="background:#fef3c7;border:2px dotted #92400e"></i>◐ some of its variables do</span>'
                   '<span>✕ on a dashed line: where the path to the loss breaks</span></p>'
                   '<div class="wide-picture"><p class="picture-hint">The picture is wider than the window: scroll it '
                   f'sideways to see all of it.</p>{model_picture(document)}</div>'
                   f'<div class="narrow-picture">{narrow_model_picture(document)}</div></section>')
    tool = document["tool"]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escaped(title)}</title><style>{CSS}{_picture_hint_rule(document)}{NARROW_PICTURE_RULE}</style></head><body>"
        f"<header><h1>{escaped(title)}</h1><p>{escaped(tool['name'])} {escaped(tool['version'])} · "
        f"report schema {document['schema_version']}</p></header><main>"
        f"{_summary(document)}{picture}{findings}{rules_section(document)}"
        "</main></body></html>\n"
    )
