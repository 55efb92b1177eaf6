"""Every ```python block in docs/*.md and README.md runs, page by page, in order."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(path):
    return BLOCK.findall(path.read_text())


def test_docs_have_code():
    assert sum(len(blocks(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.name)
def test_page_runs(page):
    namespace = {"__name__": f"docs_{page.stem}"}
    for i, code in enumerate(blocks(page)):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, code block {i} failed: {e!r}\n---\n{code}") from e


def test_a_broken_block_would_fail(tmp_path):
    page = tmp_path / "broken.md"
    page.write_text("text\n\n```python\nimport pdedsl as pd\npd.Interval(pd.Symbol('t'), 1, 0)\n```\n")
    with pytest.raises(AssertionError, match="block 0 failed"):
        test_page_runs(page)


def test_api_page_lists_every_public_name():
    import inspect

    import pdedsl as pd

    text = (ROOT / "docs" / "api.md").read_text()
    public = [n for n in dir(pd) if not n.startswith("_") and not inspect.ismodule(getattr(pd, n))]
    missing = [n for n in public if f"`pd.{n}`" not in text]
    assert not missing, f"docs/api.md does not list {missing}"
