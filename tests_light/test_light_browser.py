"""The browser demo served by the installed package (in CI: the wheel in the torch-free venv):
the page decodes the shipped model and classifies the golden images as the runtime does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import CHROMIUM, NO_CHROMIUM, browser_run

from squeezenet.demo.serve import DemoFiles, shipped_model
from squeezenet.formats import read_sqz, tensor_digest
from squeezenet.runtime import load


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_page_from_the_installed_package_classifies_as_the_runtime(golden: Path) -> None:
    images = sorted((golden / "images").rglob("*.png"))
    extra: dict[str, Path | bytes] = {f"/images/{p.parent.name}_{p.name}": p for p in images}
    plan = {"images": [f"images/{p.parent.name}_{p.name}" for p in images]}
    extra["/selftest.json"] = json.dumps(plan).encode()
    result = browser_run(DemoFiles(shipped_model(), extra, sample=None))
    assert result["digest"] == tensor_digest(read_sqz(shipped_model()))
    expected = [p.indices[0] for p in load().predict(images, top=1)]
    assert [row["top1"] for row in result["images"]] == expected
