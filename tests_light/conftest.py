"""The light suite: what the torch-free install (the wheel without extras) must do, checked
against golden logits of the torch path committed beside it (golden/make_golden.py).

CI runs it in a second virtual environment made from the built wheel, where torch is absent,
so an accidental torch import fails there; the default suite runs it too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def golden() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
