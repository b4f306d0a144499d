"""``stabcheck init``, ``env`` and ``report`` from the outside, and the new output options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema

from stabcheck.config.settings import _KNOWN_KEYS, build_settings
from stabcheck.judge.summary import summarize
from stabcheck.report.json import write_json
from tests.conftest import TESTS
from tests.sample_report import make_report

STABCHECK = [sys.executable, "-m", "stabcheck"]
XSD = TESTS / "schemas" / "junit-10.xsd"

# Keys ``stabcheck init`` documents; a key added to the config later goes here when the
# starter file learns it.
STARTER_KEYS = {
    "model", "data", "target", "task", "loss", "optimizer", "lr", "class_weight",
    "custom_class_weight", "effective_beta", "clip", "batch_size", "steps",
    "memory_budget", "gpu_memory_budget", "timeout", "json", "seed", "seeds", "max_samples",
    "holdout", "imbalance", "fail_on", "journal", "junit", "markdown", "html",
    "custom_objects",
}


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120):
    return subprocess.run([*STABCHECK, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("stabcheck: error: ")
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- init


@pytest.mark.e2e
def test_init_writes_a_commented_starter_that_parses(tmp_path: Path):
    done = run_cli("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "stabcheck.toml"
    text = path.read_text()
    settings = build_settings(path, {})
    assert (settings.model, settings.data) == ("builtin:mlp", "builtin:breast_cancer")
    assert settings.steps == 100 and settings.class_weight == ("none", "balanced")
    for key in STARTER_KEYS:
        assert re.search(rf"^(# )?(\[)?{key}\b", text, re.MULTILINE), key
    assert STARTER_KEYS <= _KNOWN_KEYS
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) > 40


@pytest.mark.e2e
def test_init_makes_paths_relative_to_the_config(tmp_path: Path):
    (tmp_path / "models").mkdir()
    done = run_cli("init", "--model", "models/net.keras", "--data", "data.npz",
                   "--output", "configs/ci.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "configs" / "ci.toml"
    assert 'model = "../models/net.keras"' in config.read_text()
    settings = build_settings(config, {})
    assert Path(settings.model).resolve() == (tmp_path / "models" / "net.keras").resolve()
    assert Path(settings.data).resolve() == (tmp_path / "data.npz").resolve()


@pytest.mark.e2e
def test_init_chooses_the_label_column_of_a_table_and_says_which(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"target": [0, 1], "f1": [0.5, 1.5], "f2": [1.0, 2.0]}),
                   tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("f1,f2,price\n1,2,3.5\n")
    for data, column, why in (("d.parquet", "target", "a column named 'target'"),
                              ("d.csv", "price", "the last column")):
        done = run_cli("init", "--data", data, "--output", f"{data}.toml", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"label column: '{column}' ({why})" in done.stdout
        config = tmp_path / f"{data}.toml"
        assert build_settings(config, {}).target == column
    done = run_cli("init", "--data", "later.csv", cwd=tmp_path)  # not there yet: no guess
    assert done.returncode == 0 and "label column" not in done.stdout
    assert build_settings(tmp_path / "stabcheck.toml", {}).target is None


@pytest.mark.e2e
def test_init_refuses_to_overwrite_without_force(tmp_path: Path):
    path = tmp_path / "stabcheck.toml"
    path.write_text("mine = true\n")
    assert_one_line_error(run_cli("init", cwd=tmp_path), "already exists: pass --force")
    assert path.read_text() == "mine = true\n"
    done = run_cli("init", "--force", cwd=tmp_path)
    assert done.returncode == 0 and path.read_text().startswith("# stabcheck configuration")


@pytest.mark.e2e
def test_init_into_a_folder_is_an_error(tmp_path: Path):
    assert_one_line_error(run_cli("init", "--output", str(tmp_path)), "is a folder")


# ------------------------------------------------------------------------------ env


@pytest.mark.e2e
def test_env_json_without_importing_tensorflow():
    code = (
        "import json, sys\n"
        "from stabcheck.system.environment import collect_environment\n"
        "info = collect_environment()\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]\n"
        "print(json.dumps({'info': info, 'bad': bad}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["bad"] == []
    info = out["info"]
    assert info["backend"] == "tensorflow"
    assert info["packages"]["keras"]["version"]
    assert set(info["packages"]) >= {"tensorflow", "jax", "torch"}
    jax = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env, "KERAS_BACKEND": "jax"})
    assert json.loads(jax.stdout)["info"]["backend"] == "jax"
    assert info["host_memory_bytes"] > 0
    assert info["memory_enforcement"] in ("cgroup-v1", "cgroup-v2", "watchdog")
    assert info["gpus"] or info["gpu_note"]


@pytest.mark.e2e
def test_env_command_table_and_json():
    table = run_cli("env")
    assert table.returncode == 0, table.stderr
    for label in ("stabcheck", "backend", "keras", "host memory", "memory budgets", "GPU"):
        assert label in table.stdout
    as_json = run_cli("env", "--json")
    assert as_json.returncode == 0
    info = json.loads(as_json.stdout)
    if not info["gpus"]:
        assert "no NVIDIA GPU" in table.stdout


# --------------------------------------------------------------------------- report


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "result.json"
    write_json(make_report(), summarize(make_report()), path)
    return path


@pytest.mark.e2e
def test_report_writes_the_files_and_exits_by_the_policy(saved: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = run_cli("report", str(saved), "--junit", str(out / "j.xml"),
                   "--markdown", str(out / "s.md"), "--html", str(out / "r.html"))
    assert done.returncode == 1, done.stderr
    xmlschema.XMLSchema(XSD).validate(str(out / "j.xml"))
    assert (out / "s.md").read_text().startswith("## ❌ stabcheck: 9 of 12 probes failed")
    assert (out / "r.html").read_text().startswith("<!doctype html>")
    assert run_cli("report", str(saved), "--fail-on", "none").returncode == 0
    assert run_cli("report", str(saved), "--fail-on", "learning").returncode == 1
    assert run_cli("report", str(saved), "--fail-on", "error").returncode == 0


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p / "nope.json", "result file not found"),
    (lambda p: (p / "x.json").write_text("{") and p / "x.json", "is not a JSON file"),
    (lambda p: (p / "x.json").write_text('{"a": 1}') and p / "x.json",
     "is not a stabcheck result"),
    (lambda p: p, "cannot read result file"),
])
@pytest.mark.e2e
def test_report_bad_input_is_one_line(tmp_path: Path, make, fragment):
    assert_one_line_error(run_cli("report", str(make(tmp_path))), fragment)


@pytest.mark.e2e
def test_report_bad_options_are_one_line(saved: Path, tmp_path: Path):
    assert_one_line_error(run_cli("report", str(saved), "--fail-on", "bogus"),
                          "unknown --fail-on value 'bogus'")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run_cli("report", str(saved), "--html", str(blocker / "r.html")),
                          "cannot write the HTML report")
    assert_one_line_error(run_cli("report"), "Missing argument")


# ------------------------------------------------------------------ probe's outputs


def test_output_paths_in_the_config_are_relative_to_it(tmp_path: Path):
    config = tmp_path / "cfg" / "s.toml"
    config.parent.mkdir()
    config.write_text('model = "builtin:mlp"\ndata = "builtin:digits"\njunit = "o/j.xml"\n'
                      'markdown = "o/s.md"\nhtml = "/abs/r.html"\n')
    settings = build_settings(config, {})
    assert settings.junit == config.parent.resolve() / "o" / "j.xml"
    assert settings.markdown == config.parent.resolve() / "o" / "s.md"
    assert settings.html == Path("/abs/r.html")
    flags = build_settings(config, {"html": "here.html"})
    assert flags.html == Path("here.html")


@pytest.mark.e2e
def test_probe_writes_junit_markdown_and_html(tmp_path: Path):
    done = run_cli("probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
                   "--class-weight", "none", "--lr", "0.01", "--steps", "5", "--seeds", "1",
                   "--journal", str(tmp_path / "j.jsonl"), "--junit", "out/j.xml",
                   "--markdown", "out/s.md", "--html", "out/r.html", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    xmlschema.XMLSchema(XSD).validate(str(out / "j.xml"))
    assert (out / "s.md").read_text().startswith("## ✅ stabcheck: 1 probe passed")
    assert "JUnit XML written to out/j.xml" in done.stdout
    assert "HTML report written to out/r.html" in done.stdout


class _FakeNvml:
    """Just enough of pynvml for ``envinfo.gpu_devices`` (no GPU on the test machines)."""

    class _Memory:
        total = 80 * 1024**3

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.shut = fail, False

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.fail:
            raise RuntimeError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut = True

    def nvmlSystemGetDriverVersion(self) -> bytes:  # noqa: N802
        return b"550.54.15"

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:  # noqa: N802
        return self._Memory()


def test_gpu_devices_reads_nvml_and_says_why_there_is_none(monkeypatch):
    from stabcheck.system import environment as envinfo

    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    devices, note = envinfo.gpu_devices()
    assert note is None and fake.shut
    assert devices == [{"index": 0, "name": "NVIDIA H100 80GB HBM3",
                        "memory_bytes": 80 * 1024**3, "driver": "550.54.15"}]
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(fail=True))
    assert envinfo.gpu_devices() == ([], "NVML could not start: Driver Not Loaded")
