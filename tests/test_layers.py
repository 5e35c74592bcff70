"""The package's structure as tests: the import-linter contracts, and decoding without torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    found = Path(sys.executable).with_name("lint-imports")
    if found.is_file():
        return str(found)
    on_path = shutil.which("lint-imports")
    if on_path is None:
        pytest.fail("lint-imports is missing: pip install -e '.[dev]' installs import-linter")
    return on_path


def test_import_contracts_hold() -> None:
    """Every import points down the layers of pyproject.toml, and formats needs no torch."""
    done = subprocess.run(
        [_lint_imports(), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout or "broken" not in done.stdout.split("Contracts:")[-1]


@pytest.mark.parametrize("classes", [None, "imagenet-1k"])
def test_decoding_a_sqz_imports_neither_torch_nor_the_models(
    tmp_path: Path, classes: str | None
) -> None:
    """A .sqz decodes to numpy arrays in a fresh interpreter that never imports torch, also when
    its header names the ImageNet class list instead of storing it."""
    import numpy as np

    from squeezenet.formats.model import CompressedLayer, CompressedModel
    from squeezenet.formats.spec import standard_class_names
    from squeezenet.formats.sqz import encode_sqz

    layer = CompressedLayer(
        name="features.0",
        shape=(2, 1, 3, 3),
        bits=2,
        codebook=np.array([-0.5, 0.25, 1.0], dtype=np.float32),
        positions=np.array([0, 4, 9, 17], dtype=np.int64),
        codes=np.array([0, 1, 2, 1], dtype=np.uint16),
        bias=np.array([0.1, -0.2], dtype=np.float32),
    )
    names = standard_class_names(classes) if classes else None
    cm = CompressedModel("squeezenet1_0", {}, None, names, [layer])
    path = tmp_path / "tiny.sqz"
    path.write_bytes(encode_sqz(cm))
    script = textwrap.dedent(
        f"""
        import sys
        from squeezenet.formats.sqz import read_sqz
        cm = read_sqz({str(path)!r})
        weight = cm.layers[0].dense_weight()
        assert weight.shape == (2, 1, 3, 3), weight.shape
        assert float(weight.reshape(-1)[17]) == 0.25
        assert (cm.class_names or ["tench"])[0] == "tench", cm.class_names[:2]
        assert cm.class_names is None or len(cm.class_names) == 1000
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
        models = sorted(m for m in sys.modules if m.startswith("squeezenet.models"))
        print(len(heavy), len(models))
        assert not heavy, heavy[:5]
        assert not models, models
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["0", "0"]


TORCH_LAYERS = (
    "models",
    "data",
    "io",
    "train",
    "compress",
    "deploy",
    "workflows",
    "experiments",
    "cli",
)


def test_the_torch_free_layers_load_no_torch_layer() -> None:
    """In a fresh process the format, the model description (with the registry, presets and
    layer lists) and the browser demo's server import without torch, torchvision or any layer
    above the torch line."""
    script = textwrap.dedent(
        f"""
        import sys
        import squeezenet.formats, squeezenet.arch, squeezenet.arch.layers, squeezenet.demo
        from squeezenet import SqueezeNetConfig, list_models
        from squeezenet.arch import get_spec, PRESETS
        assert "squeezenet1_0" in list_models() and get_spec("squeezenet1_0").facts
        loaded = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("torch", "torchvision")
            or m.split(".")[:2][-1] in {TORCH_LAYERS!r} and m.startswith("squeezenet.")
        )
        print(loaded)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_no_lazy_package_faces() -> None:
    """Every package presents its API with explicit imports and __all__; only the top-level
    package keeps one module-level __getattr__, for the torch names it re-exports."""
    src = ROOT / "src" / "squeezenet"
    assert not (src / "_lazy.py").exists()
    lazy = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if "def __getattr__(" in path.read_text() or "lazy_exports" in path.read_text()
    )
    assert lazy == ["__init__.py"], lazy
    faces = sorted(path.parent.name for path in src.rglob("__init__.py"))
    missing = [
        str(path.relative_to(src))
        for path in src.rglob("__init__.py")
        if "__all__" not in path.read_text()
    ]
    assert faces and not missing, missing


def test_the_readme_map_names_every_module() -> None:
    """A newcomer finds every module of src/ in the README's map (its path, relative to the
    package, as a table cell or part of one)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Map of the modules")
    end = readme.find("\n## ", start + 1)
    table = readme[start : end if end != -1 else len(readme)]
    src = ROOT / "src" / "squeezenet"
    modules = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )
    rows = table.split("\n")

    def named(module: str) -> bool:
        folder, _, name = module.rpartition("/")
        in_folder_row = any(f"`{folder}/`" in row and f"`{name}`" in row for row in rows)
        return f"{module}`" in table or (bool(folder) and in_folder_row)

    missing = [m for m in modules if not named(m)]
    assert not missing, f"README map lacks {missing}"


MAX_FUNCTION_LINES = 60  # from the def line to the last line, signature and docstring included


def test_no_function_in_src_is_over_60_lines() -> None:
    import ast

    long = []
    for path in sorted((ROOT / "src" / "squeezenet").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert not long, long


MAX_MODULE_LINES = 400  # a module past this is asking to be split (STYLE.md, habit 1)


def test_no_module_in_src_is_over_400_lines() -> None:
    long = []
    for path in sorted((ROOT / "src" / "squeezenet").rglob("*.py")):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)} ({lines})")
    assert not long, long
