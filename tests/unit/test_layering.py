"""Imports go one way (docs/architecture.md):

    coverage ← kube, simulator ← clusters ← collect ← grid ← wall, history ← pipeline/wiring

The coverage engine is pure domain code, the kube layer is the only one that talks to the
Kubernetes client and knows no Django, and the collectors render nothing: they are handed
their payload builder and publisher (dashboard/pipeline.py).

Two checks: what importing a package really loads (a fresh interpreter, so transitive
imports count), and every import statement of every module, read from the source (so a
function-local import cannot hide an edge; `if TYPE_CHECKING:` blocks are types only and
do not count).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import dashboard
import dashboard.cli
import dashboard.coverage
import dashboard.kube

ROOT = Path(dashboard.__file__).parent

# Package → what its modules may import of the project (beyond themselves).
ALLOWED = {
    "coverage": set(),
    "kube": {"coverage"},
    "simulator": {"coverage"},
    "clusters": {"coverage", "kube", "models"},
    "collect": {"coverage", "kube", "simulator", "clusters", "models"},
    "grid": {"coverage", "kube", "clusters", "collect", "models", "access"},
    "wall": {"coverage", "kube", "clusters", "collect", "grid", "models", "access"},
    "history": {"coverage", "kube", "clusters", "collect", "models"},
    # The installable CLI (`pip install daemonviz`, no [server] extra): engine and kube only.
    "cli": {"coverage", "kube"},
    "auth": {"access"},
}
# Package → third-party top-level packages (or dotted prefixes) it must not import.
FORBIDDEN_LIBS = {
    "coverage": {"django", "channels", "kubernetes"},
    "kube": {"django", "channels"},
    "simulator": {"django", "channels", "kubernetes"},
    "collect": {"django.template", "django.shortcuts"},
    "cli": {"django", "channels"},
}


def _top_level_modules_after_importing(package) -> set[str]:
    names = [package.__name__] + [
        m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    ]
    code = "\n".join(
        [
            "import importlib, sys",
            f"for name in {names!r}: importlib.import_module(name)",
            "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (dashboard.coverage, {"django", "channels", "kubernetes"}),
        (dashboard.kube, {"django", "channels"}),
        (dashboard.cli, {"django", "channels", "daphne", "redis", "prometheus_client"}),
    ],
)
def test_layer_imports_nothing_it_must_not(package, forbidden):
    loaded = _top_level_modules_after_importing(package)
    assert "msgspec" in loaded or package is dashboard.kube  # the walk really imported code
    assert not loaded & forbidden, f"{package.__name__} pulled in {loaded & forbidden}"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a module, outside TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        module = module.rsplit(".", 1)[0]
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from dashboard import grid` names a package too.
            out.extend((node.lineno, f"{name}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    forbidden_libs = FORBIDDEN_LIBS.get(package, set())
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in _imports(path, package):
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            parts = name.split(".")
            if parts[0] == "dashboard" and len(parts) > 1:
                target = parts[1]
                is_module = (ROOT / target).is_dir() or (ROOT / f"{target}.py").exists()
                if is_module and target not in allowed:
                    problems.append(f"{where} imports {name}")
            elif any(name == lib or name.startswith(lib + ".") for lib in forbidden_libs):
                problems.append(f"{where} imports {name}")
    return problems


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    assert (ROOT / package).is_dir()
    assert not _violations(package)


def test_the_import_reader_sees_function_local_and_relative_imports(tmp_path, monkeypatch):
    """The rule check must fail on a hidden edge: a local import of the grid in collect."""
    fake_root = tmp_path / "dashboard"
    (fake_root / "collect").mkdir(parents=True)
    (fake_root / "grid").mkdir()
    (fake_root / "collect" / "__init__.py").write_text("")
    (fake_root / "collect" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from dashboard.grid import model\n"
        "def f():\n    from dashboard.grid import frames\n"
        "from ..grid import fragments\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = _violations("collect")
    assert found == [
        "dashboard/collect/bad.py:5 imports dashboard.grid",
        "dashboard/collect/bad.py:5 imports dashboard.grid.frames",
        "dashboard/collect/bad.py:6 imports dashboard.grid",
        "dashboard/collect/bad.py:6 imports dashboard.grid.fragments",
    ]
