"""axe-core in Chromium: the WCAG 2.0/2.1 A and AA violations on a page, said so a failure names what to fix
(a helper of the browser tests, not a test).

axe-core is the copy bundled by the `axe-playwright-python` package (requirements-dev.txt): nothing is downloaded.
"""

from __future__ import annotations

from testkit.browser import settled

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on `page` as it is now.

    axe-core is put into the document once: Streamlit changes pages without loading a new one, so it stays.
    """
    from axe_playwright_python.sync_playwright import Axe

    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(Axe().axe_script)
    options = {"runOnly": {"type": "tag", "values": WCAG_A_AA}, "resultTypes": ["violations"]}
    return page.evaluate("options => window.axe.run(document, options).then(r => r.violations)", options)


def described(violations: list[dict]) -> str:
    """Each violation as `rule (impact): what it asks`, then each element it found: its selector and what is wrong."""
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:8]:
            # "Fix any of the following:" and the checks that failed, one a line: the checks, joined.
            why = [line.strip() for line in node.get("failureSummary", "").splitlines()[1:] if line.strip()]
            lines.append(f"    {' > '.join(map(str, node['target']))}: {'; '.join(why)[:300]}")
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


# A violation seen once may be a frame in passing on a busy machine (an element mid-transition, half faded in); one
# that is there again after the page settled once more and its transitions (Streamlit's: 200-300 ms) ran is real.
TRANSITION_MS = 500


def assert_no_violation(page, where: str) -> None:
    """Fail naming every WCAG A/AA violation axe-core finds on `page` at rest (seen twice, a transition apart)."""
    settled(page)
    found = axe_violations(page)
    if found:
        page.wait_for_timeout(TRANSITION_MS)
        settled(page)
        found = axe_violations(page)
    assert not found, f"{where}: axe-core found {len(found)} WCAG A/AA violation(s):\n{described(found)}"
