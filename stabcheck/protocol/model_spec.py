"""Where a model comes from: parsed by the parent (``inputs.models``), built by the worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUILTIN_TEMPLATES = ("mlp", "cnn")


@dataclass(frozen=True)
class ModelSpec:
    """Where a model comes from, and what the worker imports before it loads it."""

    kind: str  # "keras", "h5", "file_factory", "module_factory" or "builtin"
    text: str  # the spec as the user gave it
    path: str | None = None  # file path (keras, h5, file_factory)
    target: str | None = None  # module (module_factory), function, or template name
    # Modules (``mypkg.layers``) and absolute ``.py`` paths to import first, in order.
    custom_objects: tuple[str, ...] = ()
    # Folders put ahead of ``sys.path`` in the worker: a file factory's own folder, the
    # config file's folder, the current folder.
    sys_path: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "path": self.path, "target": self.target,
                "custom_objects": list(self.custom_objects), "sys_path": list(self.sys_path)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(data["kind"], data["text"], data.get("path"), data.get("target"),
                   tuple(data.get("custom_objects") or ()), tuple(data.get("sys_path") or ()))
