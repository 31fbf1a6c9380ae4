"""Data flows one way (data -> nn -> train -> infer -> serve): a package never imports a higher one.

Imports inside functions count too: a lazy import still ties the lower layer to the higher one. Nothing inside
the package imports the package root (``import pixforge``, ``from pixforge import ...``): the root re-exports
the top layers, so importing it from below would tie every layer to all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pixforge"

# Lower number = lower layer. Equal ranks may not import each other either (they are independent).
LAYERS = {
    "atomic": 0,
    "version": 0,
    "registry": 0,
    "config": 0,
    "data": 1,
    "provenance": 2,
    "nn": 2,
    "runtime": 3,
    "compat": 5,
    "train": 6,  # training and inference are siblings: a server or pipeline loads no training code
    "infer": 6,
    "eval": 7,
    "pipeline": 7,
    "serve": 8,
    "bench": 9,
    "demo": 9,
    "cli": 10,
    "__main__": 11,
}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "pixforge"
                                                                 or node.module.startswith("pixforge.")):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name == "pixforge" or a.name.startswith("pixforge."))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def test_every_package_has_a_layer():
    tops = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops <= set(LAYERS), f"give these a layer in LAYERS: {sorted(tops - set(LAYERS))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_layer(path):
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    for module in _imports(path):
        other = _layer(module)
        if other == own or other == "__init__":  # the root: test_no_module_imports_the_package_root
            continue
        assert LAYERS[other] < LAYERS[own], f"{path.relative_to(SRC)} imports {module}: {own} may not use {other}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_the_package_root(path):
    roots = sorted(m for m in _imports(path) if _layer(m) == "__init__")
    assert not roots, f"{path.relative_to(SRC)} imports the package root ({roots}); import the module that defines it"
