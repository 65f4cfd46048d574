"""Imports go one way (DESIGN.md): the coverage engine is pure domain code and the kube
layer is the only one that talks to the Kubernetes client, without Django."""

import pkgutil
import subprocess
import sys

import pytest

import dashboard.coverage
import dashboard.kube


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
    ],
)
def test_layer_imports_nothing_it_must_not(package, forbidden):
    loaded = _top_level_modules_after_importing(package)
    assert "msgspec" in loaded or package is dashboard.kube  # the walk really imported code
    assert not loaded & forbidden, f"{package.__name__} pulled in {loaded & forbidden}"
