"""The package's layers hold: private names stay private, imports flow down, modules stay small."""

import ast
import pathlib

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "keras_resnet_cifar"
MODULES = sorted(PACKAGE.rglob("*.py"))
# Imports may point only at the same or a lower layer.
LAYERS = {"files": 0, "models": 1, "data": 1, "training": 2, "serving": 2, "study": 3, "cli": 4}


def _layer(path):
    part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    return LAYERS.get(part)


def _imports(tree):
    """``(module, name)`` for every ``from keras_resnet_cifar... import name`` and plain import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("keras_resnet_cifar"):
            for alias in node.names:
                yield node.module, alias.name, alias.asname or alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("keras_resnet_cifar"):
                    yield alias.name, None, alias.asname or alias.name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_uses_another_modules_private_names(path):
    tree = ast.parse(path.read_text())
    imported = {local for module, name, local in _imports(tree)}
    for module, name, _ in _imports(tree):
        assert not (name or "").startswith("_"), f"{path.name} imports {module}.{name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
            assert not node.attr.startswith("_") or node.attr.startswith("__"), (
                f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"
            )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_flow_down_the_layers(path):
    own = _layer(path)
    if own is None:  # __init__.py: the public API may name anything
        return
    for module, name, _ in _imports(ast.parse(path.read_text())):
        parts = module.split(".")
        target = parts[1] if len(parts) > 1 else name
        level = LAYERS.get(target)
        assert level is None or level <= own, f"{path.relative_to(PACKAGE)} imports {module} from a higher layer"


def test_no_file_is_over_400_lines():
    too_long = {
        str(p.relative_to(REPO)): n
        for p in MODULES + sorted(pathlib.Path(REPO, "tools").glob("*.py"))
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not too_long
