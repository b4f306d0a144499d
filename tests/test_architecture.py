"""The import rules between the parts (pyproject's import-linter contracts), and the rule
they exist for: the stabcheck process never imports TensorFlow, Keras, JAX or PyTorch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import stabcheck

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold(capsys, monkeypatch):
    """import-linter over pyproject's contracts, as ``make lint`` runs it."""
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # lint_imports puts the folder first
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True,
                          no_logo=True)
    out = capsys.readouterr().out
    assert status == 0, out[-4000:]
    assert "0 broken" in out


@pytest.mark.e2e
def test_every_parent_module_imports_without_a_framework():
    """Every module outside ``stabcheck.worker``, found by walking the package (no list to
    keep up to date), imports in a fresh interpreter without TensorFlow, Keras, JAX or
    PyTorch being loaded."""
    names = sorted(m.name for m in pkgutil.walk_packages(stabcheck.__path__, "stabcheck.")
                   if not m.name.startswith("stabcheck.worker") and m.name != "stabcheck.__main__")
    assert len(names) > 40, names
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
