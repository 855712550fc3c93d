"""What a researcher does first after `pip install volta-*.whl`, run from an installed wheel.

Run by scripts/python-tests.sh in a fresh virtual environment that has no Rust
toolchain on its PATH and no access to the source tree's package: it proves the
wheel carries everything (the native extension, the Python layer, the stubs, the
schema) and that the installed package plans and forecasts.
Usage: python smoke.py <repository root>
"""

import pathlib
import sys

import numpy as np

import volta

root = pathlib.Path(sys.argv[1])
installed = pathlib.Path(volta.__file__).resolve()
assert "site-packages" in installed.parts, f"volta imported from {installed}, not from the installed wheel"
assert (installed.parent / "py.typed").exists() or (installed.parent / "_native.pyi").exists(), "the wheel lacks its type stubs"

plan = volta.schedule(root / "datasets/cases/campus.toml")
assert plan.status == "optimal", plan.status
assert abs(plan.cost - 20628.57) < 0.01 * 20628.57, plan.cost
assert plan.timezone == "Australia/Melbourne"

schema = volta.schema()
assert "assets" in schema["properties"], sorted(schema)

case = volta.Case.from_file(root / "datasets/cases/campus.toml")
try:
    volta.Case.from_dict({**case.to_dict(), "assets": [{"id": "b", "type": "storage", "capacty_kwh": 1}]})
except volta.CaseError as e:
    assert e.problems, "a case error without problems"
else:
    raise AssertionError("an unknown field was accepted")

print(f"wheel ok: {installed.parent}, campus cost {plan.cost:.2f}, numpy {np.__version__}")
