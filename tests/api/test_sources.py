"""``api.sources``: custom objects of a notebook, written as a module the worker imports.

A notebook's cells have no file: its classes are found through their methods' code in
``linecache`` (where ipykernel keeps each cell). The cell here is compiled the same way,
under an ipykernel-like file name, into a module without ``__file__``.
"""

from __future__ import annotations

import linecache
import sys
import types

import pytest

from stabcheck.api.sources import ObjectsModule
from stabcheck.errors import InputError

CELL = '''
import math

FACTOR = 2.5
data = object()  # a notebook global that is no literal

def helper(v):
    return math.sqrt(v) * FACTOR

class Base:
    pass

class Scale(Base):
    """A custom "layer": its method uses a helper, a module and a literal global."""

    def __init__(self, factor=FACTOR, **kwargs):
        self.factor = factor

    def call(self, data):  # an argument named like an unusable global
        return helper(data) * self.factor
'''


@pytest.fixture
def notebook(monkeypatch):
    """The cell run in a module that, like a notebook's ``__main__``, has no file."""
    filename = "/tmp/ipykernel_4242/1234567.py"
    linecache.cache[filename] = (len(CELL), None, CELL.splitlines(True), filename)
    module = types.ModuleType("fake_notebook")
    monkeypatch.setitem(sys.modules, "fake_notebook", module)
    exec(compile(CELL, filename, "exec"), module.__dict__)
    yield module
    linecache.cache.pop(filename, None)


@pytest.fixture
def fake_keras(monkeypatch):
    """What the generated module's registration calls, without Keras."""
    registry: dict = {}
    keras = types.ModuleType("keras")
    keras.saving = types.SimpleNamespace(get_custom_objects=lambda: registry)
    monkeypatch.setitem(sys.modules, "keras", keras)
    return registry


def test_a_notebook_class_is_rebuilt_from_its_cell_with_what_it_uses(notebook, fake_keras):
    module = ObjectsModule()
    module.add(notebook.Scale, "Scale")
    text = module.text()
    assert "import math" in text and "FACTOR = 2.5" in text
    assert text.index("def helper") < text.index("class Scale") > text.index("class Base")
    assert "data =" not in text  # the global named like an argument is not needed
    rebuilt: dict = {}
    exec(compile(text, "stabcheck_user_objects.py", "exec"), rebuilt)
    scale = fake_keras["Scale"](factor=2.0)
    assert scale.call(4.0) == pytest.approx(2.0 * 2.5 * 2.0)
    assert fake_keras["Scale"] is rebuilt["Scale"]


def test_an_importable_class_is_imported_not_copied(fake_keras):
    module = ObjectsModule()
    module.add(InputError, "my>InputError")
    text = module.text()
    assert "from stabcheck.errors import InputError" in text
    exec(compile(text, "stabcheck_user_objects.py", "exec"), {})
    assert fake_keras["my>InputError"] is InputError


def _inner():
    class Local:
        def call(self):
            return 1

    return Local


def test_what_cannot_be_handed_over_is_one_line(notebook):
    square = eval("lambda v: v * v")  # noqa: S307 - a lambda, as a notebook may hold one
    with pytest.raises(InputError, match="a lambda, which cannot be handed"):
        ObjectsModule().add(square, "square")
    with pytest.raises(InputError, match="defined inside a function"):
        ObjectsModule().add(_inner(), "Local")
    cell, name = "def uses():\n    return data\n", "/tmp/ipykernel_4242/2.py"
    linecache.cache[name] = (len(cell), None, [cell], name)
    exec(compile(cell, name, "exec"), notebook.__dict__)
    with pytest.raises(InputError, match="uses the global 'data' .object."):
        ObjectsModule().add(notebook.uses, "uses")
