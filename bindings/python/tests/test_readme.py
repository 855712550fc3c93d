"""The README's Python blocks run as written, and give the numbers they state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## From Python") : text.index("## Over gRPC")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_python_section_runs_and_its_numbers_hold(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    blocks = _blocks()
    assert len(blocks) == 2, "the README's Python section changed shape: update this test"
    # Run where the README runs (paths relative to the repository), writing into a scratch folder.
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    stated = re.search(r'bt\.metrics\["mape"\].*# ([\d.]+), \((\d+), (\d+)\)', blocks[1])
    assert stated, "the README no longer states the backtest's MAPE"
    bt = namespace["bt"]
    assert round(bt.metrics["mape"], 2) == float(stated.group(1))
    assert bt.point.shape == (int(stated.group(2)), int(stated.group(3)))
    assert namespace["bigger"].to_dict() != namespace["case"].to_dict()
    assert list(namespace["forecast"].to_pandas().columns) == ["point", "q0.1", "q0.9"]
