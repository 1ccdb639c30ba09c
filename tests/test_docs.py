# SPDX-License-Identifier: AGPL-3.0-or-later
"""Every ```python example in README.md and docs/*.md runs and its asserts hold."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _examples():
    for doc in DOCS:
        for i, m in enumerate(BLOCK.finditer(doc.read_text())):
            yield pytest.param(m.group(1), id=f"{doc.name}-{i}")


@pytest.mark.parametrize("code", list(_examples()))
def test_doc_example_runs(code, capsys):
    exec(compile(code, "<doc example>", "exec"), {"__name__": "__doc_example__"})
