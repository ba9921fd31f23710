"""The documentation (issue 27, item 2): ``bash scripts/docs.sh`` builds the MkDocs site strictly, with an API
reference generated from the docstrings; the README stays a short overview that points at the pages; the
pages state what the code does (the server's no-token rule) and dated remarks live in the changelog."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cifar_edge.camera_demo.web.settings import LOCAL_NAMES, ServeSettings, is_loopback

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(["bash", "scripts/docs.sh", "--site-dir", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr  # --strict: any warning fails the build
    assert "WARNING" not in done.stderr, done.stderr
    return out


def text_of(html: Path) -> str:
    return re.sub(r"<[^>]+>", " ", html.read_text())


def test_the_strict_build_has_an_api_reference_naming_classifier(site):
    api = text_of(site / "api" / "index.html")
    for name in ("Classifier", "classify_batch", "ClassificationResult", "Timing", "LiveClassifier",
                 "PreprocessSpec", "InvalidImageError", "bundled_file"):
        assert name in api, name
    assert "errors=" in api  # signatures come from the code as it is


def test_every_page_is_built_and_the_included_files_are_in_them(site):
    pages = [p.relative_to(DOCS).with_suffix("") for p in DOCS.rglob("*.md")]
    assert {"install", "quickstart", "sdk", "api", "camera", "serve", "training", "conversion", "parity",
            "benchmarks", "security", "changelog", "models/default", "models/edge"} <= {p.as_posix() for p in pages}
    for page in pages:
        built = site / ("index.html" if page.as_posix() == "index" else page / "index.html")
        if page.name == "index" and page.parent != Path("."):
            built = site / page.parent / "index.html"
        assert built.is_file(), page
    security = text_of(site / "security" / "index.html")
    assert "Trusted and untrusted inputs" in security  # SECURITY.md, included as it is
    assert "Benchmark results" in text_of(site / "results" / "index.html")  # benchmarks/RESULTS.md


def test_each_model_card_has_commands_figures_and_a_marked_place_for_new_figures():
    for name in ("default", "edge"):
        card = (DOCS / "models" / f"{name}.md").read_text()
        assert f"Classifier(\"{name}\")" in card and "cifar-edge convert" in card and "cifar-edge train" in card
        assert "When new models are shipped," in card and "replace the figures below" in card  # the marked place
        assert "## Figures" in card and "## Real photos" in card
        assert re.search(r"\| AMD EPYC with AVX-512 VNNI", card)  # every latency names its CPU
        assert re.search(r"\d+\.\d+%", card) and "KiB" in card


def test_the_readme_is_an_overview_that_points_at_the_pages():
    assert len(README.splitlines()) <= 300
    assert "bash scripts/main.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/wheel.sh" in README and "bash scripts/docs.sh" in README
    for page in re.findall(r"`((?:models/)?[\w-]+\.md)`", README):
        assert any(path.is_file() for path in (DOCS / page, ROOT / page, ROOT / "benchmarks" / page)), page
    example = README.split("## The SDK in ten lines")[1].split("```python")[1].split("```")[0]
    assert len(example.strip().splitlines()) <= 11  # the import and ten lines


def test_the_docs_state_the_servers_no_token_rule():
    auth = (DOCS / "serve.md").read_text().split("**Auth.**")[1].split("\n\n")[0]
    tokenless = re.findall(r"`([^`]+)`", auth.split("Binding any other address")[0])
    named_hosts = [h for h in tokenless if not h.startswith("-")]
    assert {"127.0.0.1", "::1", *LOCAL_NAMES} <= set(named_hosts)
    for host in named_hosts:
        assert is_loopback(host.replace("127.x.x.x", "127.1.2.3")), host
        ServeSettings(host=host.replace("127.x.x.x", "127.1.2.3")).validate()  # no token needed
    for host in re.findall(r"`([^`]+)`", auth.split("Binding any other address")[1].split(")")[0]):
        assert not is_loopback(host), host
        with pytest.raises(ValueError):
            ServeSettings(host=host).validate()
    readme_rule = README.split("runs without a token only on a loopback host")[1].split(";")[0]
    assert all(h in readme_rule for h in ("127.0.0.1", "::1", "localhost"))


def test_dated_remarks_live_in_the_changelog_not_in_the_code():
    dated = re.compile(r"\b(until|since|before|after) (19|20)\d\d\b", re.IGNORECASE)
    found = []
    for folder in ("edge_sdk", "cli", "train", "convert", "camera_demo", "benchmarks", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            found += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                      if dated.search(line)]
    assert found == []
    assert "Until 2026-12" in (DOCS / "changelog.md").read_text()
