"""A run's identity for --resume includes its Keras backend (``engine.run_identity``), and
a journal written before the backend was a setting reads as a TensorFlow run. Pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stabcheck.config.settings import build_settings
from stabcheck.run.journal import read_journal, run_identity


def _journal(path: Path, config: dict) -> Path:
    path.write_text(json.dumps({"type": "run", "config": config, "probes": ["p"]}) + "\n")
    return path


def test_the_backend_is_part_of_a_runs_identity(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr("stabcheck.config.settings._installed", lambda module: True)
    flags = {"model": "builtin:mlp", "data": "builtin:digits"}
    tf = build_settings(None, flags)
    jax = build_settings(None, {**flags, "backend": "jax"})
    assert run_identity(tf)["backend"] == "tensorflow"
    assert run_identity(tf) != run_identity(jax)
    # a journal of this version, and one from before the backend was recorded
    written = tf.to_json()
    assert read_journal(_journal(tmp_path / "new.jsonl", written)).identity == run_identity(tf)
    written.pop("backend")
    assert read_journal(_journal(tmp_path / "old.jsonl", written)).identity == run_identity(tf)
