"""The html report in a real browser (headless Chromium, no network): a self-contained page with
the verdicts, the causal graph as inline SVG, the timeline and every step's content, findings
highlighted, printable. Screenshots and a PDF print are kept in var/test-artefacts/."""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provtrace.cli.main import main as cli
from tests.example_agent import ExampleRun
from tests.tamper import Archive, change_attribute

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "var" / "test-artefacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


@pytest.fixture(scope="module")
def browser() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: make system-packages installs it")
        pytest.skip("chromium is not installed (make system-packages installs it)")
    return CHROMIUM


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class _Dom(html.parser.HTMLParser):
    """The elements of the page Chromium rendered, with their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[int, str] = {}
        self._open: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in ("meta", "br", "rect", "path", "link", "input", "img"):
            self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            index = self._open.pop()
            if self.elements[index][0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for index in self._open:
            self.texts[index] = self.texts.get(index, "") + data

    def find(self, tag: str, **attrs: str) -> list[str]:
        """Texts of the elements with this tag whose attributes contain these words."""
        found = []
        for index, (name, have) in enumerate(self.elements):
            if name == tag and all(v in have.get(k.rstrip("_"), "").split() for k, v in attrs.items()):
                found.append(self.texts.get(index, ""))
        return found


def render(run: ExampleRun, archive: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli(
        [
            "reconstruct",
            run.complete,
            "--archive",
            str(archive),
            "--public-key",
            str(run.public_key),
            "--format",
            "html",
        ]
    ) in (0, 1)
    page = capsys.readouterr().out
    path.write_text(page, encoding="utf-8")
    return page


def assert_self_contained(page: str) -> None:
    """Nothing a browser would fetch: no script, stylesheet link, image, frame, font or import."""
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"\b(src|srcset|xlink:href)\s*=", page, re.I)
    assert not re.search(r"url\((?!#)|@import", page, re.I)  # url(#marker) is in the page itself
    assert all(href.startswith("#") for href in re.findall(r'href=["\']([^"\']*)', page))


def test_the_html_report_renders_the_graph_timeline_and_content(
    browser: str, example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = render(example_run, example_run.archive, tmp_path / "complete.html", capsys)
    assert_self_contained(page)
    dump = chromium(browser, tmp_path / "profile", "--dump-dom", (tmp_path / "complete.html").as_uri())
    dom = _Dom()
    dom.feed(dump.stdout)
    assert dom.find("span", id="verdict-evidence") == ["Evidence COMPLETE"]
    assert dom.find("span", id="verdict-integrity") == ["Integrity VERIFIED"]
    assert len(dom.find("svg", class_="causal-graph")) == 1
    assert len(dom.find("g", class_="node")) == 10  # the decision and nine steps
    labels = dom.find("text", class_="edge-label")
    assert set(labels) == {
        "parent",
        "authorized_by",
        "approved_by",
        "used_secret",
        "triggered_by",
        "verifies",
    }
    assert labels.count("parent") == 9
    assert len(dom.find("article", class_="step")) == 9
    text = " ".join(dom.find("section", id="steps"))
    assert "user: Alert INC-4711: partner integration 10.0.0.0/24 cannot reach the API on 443" in text
    assert "→ proposes tool call call_2 open_rule" in text
    assert '+   "rules": [{"rule": "rule-9", "port": 443, "proto": "tcp", "cidr": "10.0.0.0/24"}]' in text
    assert "server side in firewall-mcp, actor firewall: same digests as the client" in text
    assert len(dom.find("tr")) >= 10  # the timeline: a header and one row per step
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "reconstruct-complete.png"
    chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        (tmp_path / "complete.html").as_uri(),
    )
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    pdf = ARTEFACTS / "reconstruct-complete.pdf"
    chromium(
        browser,
        tmp_path / "profile",
        f"--print-to-pdf={pdf}",
        "--no-pdf-header-footer",
        (tmp_path / "complete.html").as_uri(),
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) >= 2


def test_integrity_findings_are_highlighted_in_the_html_report(
    browser: str, example_run: ExampleRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    altered = Archive(example_run.archive, tmp_path / "altered")
    span_id = change_attribute(altered)
    altered.save()
    page = render(example_run, altered.root, tmp_path / "altered.html", capsys)
    assert_self_contained(page)
    dump = chromium(browser, tmp_path / "profile", "--dump-dom", (tmp_path / "altered.html").as_uri())
    dom = _Dom()
    dom.feed(dump.stdout)
    assert dom.find("span", id="verdict-integrity") == ["Integrity FAILED"]
    assert len(dom.find("section", class_="bad")) == 1
    findings = dom.find("li", class_="finding")
    assert any(f.startswith(f"ERROR altered_span: span {span_id}") for f in findings)
    flagged = dom.find("article", class_="flagged")
    assert len(flagged) == 1 and "✗ ALTERED_SPAN" in flagged[0] and "action" in flagged[0]
    assert len(dom.find("g", class_="flagged")) == 1  # the graph marks the same step
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / "reconstruct-altered.png"
    chromium(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,1400",
        (tmp_path / "altered.html").as_uri(),
    )
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
