"""Interrupted and resumed runs, from the outside: real ``stabcheck`` processes, real signals.

Ctrl-C (SIGINT) or SIGTERM (a CI runner cancelling the job) during a grid must end every
worker, print and write the report of the probes done so far and exit 130; ``--resume
JOURNAL`` must finish such a run without re-running what the journal holds, and give the
same result as a run that was never interrupted. The test process never imports
TensorFlow: stabcheck runs as a child process, and its workers are its children.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from jsonschema import Draft202012Validator

from stabcheck.report.json import load_schema
from tests.conftest import FIXTURES

pytestmark = pytest.mark.e2e  # every test here starts processes

STABCHECK = [sys.executable, "-m", "stabcheck"]
WORKER_MODULE = "stabcheck.worker"

# 8 probes of 400 steps on the built-in CNN: long enough to be interrupted mid-grid.
LONG_GRID = ["probe", "--model", "builtin:cnn", "--data", "builtin:digits",
             "--class-weight", "none,balanced", "--lr", "0.001,0.002,0.003,0.004",
             "--steps", "400", "--timeout", "120"]
# 4 quick probes (a stable pair, an overcorrected and a NaN one): resume equivalence.
# (x1000 at lr 1.0 spikes to 1e15 and settles, overcorrected: since the trend rule that is no
# longer "diverged"; x100 at lr 1.0 turns NaN at step 8.)
SMALL_GRID = ["probe", "--model", "builtin:mlp", "--data", "builtin:breast_cancer",
              "--optimizer", "sgd", "--class-weight", "none,x100", "--lr", "0.01,1.0",
              "--steps", "20", "--timeout", "120", "--seeds", "1"]  # no re-probes
SMALL_IDS = ["cw=none,lr=0.01,clip=none,bs=32", "cw=none,lr=1,clip=none,bs=32",
             "cw=x100,lr=0.01,clip=none,bs=32", "cw=x100,lr=1,clip=none,bs=32"]
# Per-run measurements: they differ between two runs of the same probe.
VOLATILE = {"duration_s", "peak_host_bytes", "peak_gpu_bytes", "peak_bytes", "peak_private_bytes",
            "evaluation_extra_bytes", "evaluation_resident_bytes", "seconds"}


# ------------------------------------------------------------------ helpers
def _signals_as_a_shell_leaves_them() -> None:
    """In the child, before exec: SIGINT and SIGTERM at their defaults and unblocked, as an
    interactive shell starts a command. An earlier test in this pytest process may have
    left either ignored or blocked, which a child inherits: it would then not see the
    signal these tests send (the slow tier saw runs end normally after their SIGINT)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


class Run:
    """A ``stabcheck`` process started in its own session, its output going to files
    (a pipe nobody reads would block it once full)."""

    def __init__(self, args: list[str], cwd: Path, name: str = "run",
                 env: dict[str, str] | None = None) -> None:
        self.stdout_path = cwd / f"{name}.stdout"
        self.stderr_path = cwd / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*STABCHECK, *args], cwd=cwd, stdout=out, stderr=err,
                start_new_session=True, env={**os.environ, **(env or {})},
                preexec_fn=_signals_as_a_shell_leaves_them,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise

    def kill_all(self) -> None:
        """Clean-up after a failed test: SIGKILL this process and its descendants."""
        try:
            procs = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            procs = []
        for proc in procs:
            try:
                proc.kill()
            except psutil.Error:
                pass
        self.proc.wait(timeout=30)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with ``flag``'s value replaced by ``value``."""
    out = list(args)
    out[out.index(flag) + 1] = value
    return out


def run_cli(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*STABCHECK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def journal_records(path: Path) -> list[dict]:
    """The journal's complete records; a line still being written is left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def job_key(record: dict) -> tuple[str, str, int | None]:
    """A journal line's job: its probe, its stage and its seed."""
    job = record.get("job") or {}
    return (record["id"], job.get("stage", ""), job.get("seed"))


def probe_records(path: Path) -> list[dict]:
    return [r for r in journal_records(path) if r.get("type") == "probe"]


def wait_for_probes(run: Run, journal: Path, count: int, timeout: float = 180,
                    poll: float = 0.05) -> None:
    """Wait until the journal holds ``count`` probe records (the run must still be going)."""
    deadline = time.monotonic() + timeout
    while len(probe_records(journal)) < count:
        if run.proc.poll() is not None:
            pytest.fail(f"stabcheck ended (exit {run.proc.returncode}) before {count} probes "
                        f"were journaled:\n{run.stderr[-2000:]}")
        if time.monotonic() > deadline:
            run.kill_all()
            pytest.fail(f"no {count} probes journaled within {timeout} s")
        time.sleep(poll)


def signal_when(run: Run, ready: Callable[[], None],
                signum: int) -> tuple[int, list[psutil.Process]]:
    """Wait for ``ready``, note stabcheck's descendants, signal stabcheck itself (not its
    workers) and wait for it to end; returns its exit code and those descendants."""
    try:
        ready()
        before = descendants(run.pid)
        os.kill(run.pid, signum)
        code = run.wait(timeout=60)
    finally:
        if run.proc.poll() is None:
            run.kill_all()
    return code, before


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def is_worker(proc: psutil.Process) -> bool:
    try:
        return any(WORKER_MODULE in part for part in proc.cmdline())
    except psutil.Error:
        return False


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def leads_to_us(proc: psutil.Process) -> bool:
    """Whether ``proc``'s parent chain leads to this test process."""
    try:
        return any(parent.pid == os.getpid() for parent in proc.parents())
    except psutil.Error:
        return False


def stray_workers(cwd: Path) -> list[psutil.Process]:
    """Live worker processes started by a stabcheck of this test: below this process, or
    (orphans re-parented to init keep their working folder) running in ``cwd``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid() or not is_worker(proc) or not alive(proc):
            continue
        try:
            in_cwd = Path(proc.cwd()) == cwd
        except psutil.Error:
            in_cwd = False
        if in_cwd or leads_to_us(proc):
            found.append(proc)
    return found


def assert_nothing_left(before: list[psutil.Process], cwd: Path, grace: float = 5.0) -> None:
    """None of the processes seen before the signal, and no worker of ours, is alive."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(alive(p) for p in before) and not stray_workers(cwd):
            break
        time.sleep(0.1)
    left = [p for p in before if alive(p)] + stray_workers(cwd)
    details = []
    for proc in left:
        try:
            details.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.Error:
            details.append(str(proc.pid))
    for proc in left:  # do not leave them to the next test
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not left, f"processes left behind: {details}"


def load_strict_json(path: Path) -> dict:
    """Parse the result strictly (no NaN/Infinity tokens) and validate it against the schema."""

    def reject(token: str) -> None:
        raise ValueError(f"non-strict JSON token {token}")

    data = json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)
    Draft202012Validator(load_schema()).validate(data)
    return data


def without_volatile(value):
    """``value`` with per-run measurements (durations, peaks) removed, recursively."""
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def comparable(probe: dict) -> dict:
    return without_volatile(probe)


def without_sizes(text: str) -> str:
    """A terminal report with measured byte sizes and the run's duration blanked out."""
    text = re.sub(r"\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)\b", "<size>", text)
    return re.sub(r"\bin \d+(\.\d+)? s\b", "in <time>", text)


# ------------------------------------------------------------ SIGINT / SIGTERM
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
    ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_grid_ends_every_worker_and_writes_the_partial_report(tmp_path, signum):
    journal = tmp_path / "journal.jsonl"
    out = tmp_path / "result.json"
    # wide enough that rich does not fold pytest's long temporary path
    run = Run([*LONG_GRID, "--json", str(out), "--journal", str(journal)], tmp_path,
              env={"COLUMNS": "400"})

    def mid_grid() -> None:
        wait_for_probes(run, journal, 1)
        assert any(is_worker(p) for p in descendants(run.pid)), "no worker was running"

    code, before = signal_when(run, mid_grid, signum)

    assert code == 130, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert_nothing_left(before, tmp_path)

    records = journal_records(journal)
    probes = [r for r in records if r["type"] == "probe"]
    assert 1 <= len(probes) < 8
    assert records[-1] == {"type": "interrupted", "done": len(probes)}

    # The report of the probes done so far, marked interrupted.
    stdout = " ".join(run.stdout.split())  # rich wraps long lines at the terminal width
    assert "Verdicts" in stdout and "Recommended configuration" in stdout
    assert f"interrupted: {len(probes)} of 8 probes ran" in stdout
    assert f"{len(probes)} probe{'s' if len(probes) > 1 else ''}: " in stdout
    assert f"JSON result written to {out}" in stdout

    # The JSON holds exactly the journaled probes (in plan order; the journal has them in
    # the order they finished, which differs when several workers run at once).
    data = load_strict_json(out)
    assert data["interrupted"] is True
    assert data["probes_planned"] == 8
    assert len(data["probes"]) == len(probes)
    journaled = {p["id"]: comparable({k: v for k, v in p.items() if k not in ("type", "job")})
                 for p in probes}
    assert {p["id"]: comparable(p) for p in data["probes"]} == journaled


def test_a_signal_while_the_first_worker_starts_leaves_no_worker(tmp_path):
    """Interrupted before any probe ran (the worker is still importing TensorFlow)."""
    journal = tmp_path / "journal.jsonl"
    run = Run([*LONG_GRID, "--json", str(tmp_path / "result.json"), "--journal", str(journal)],
              tmp_path)

    def worker_started() -> None:
        deadline = time.monotonic() + 60
        while not any(is_worker(p) for p in descendants(run.pid)):
            assert run.proc.poll() is None, run.stderr[-2000:]
            assert time.monotonic() < deadline, "no worker started within 60 s"
            time.sleep(0.05)

    code, before = signal_when(run, worker_started, signal.SIGTERM)
    assert code == 130, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert_nothing_left(before, tmp_path)
    assert probe_records(journal) == []


# ------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict, str, Path]:
    """The small grid run once without interruption: (folder, its JSON, stdout, journal)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    done = run_cli([*SMALL_GRID, "--json", "result.json", "--journal", "a.jsonl"], folder)
    assert done.returncode == 1, done.stderr  # the NaN probe fails the default gate
    data = load_strict_json(folder / "result.json")
    assert [p["id"] for p in data["probes"]] == SMALL_IDS
    return folder, data, done.stdout, folder / "a.jsonl"


def interrupt_after(args: list[str], cwd: Path, journal: Path, count: int,
                    attempts: int = 3, ready: Callable[[], bool] | None = None,
                    accept: Callable[[], bool] | None = None) -> tuple[Run, int]:
    """Run ``args`` and SIGINT it once ``count`` probes are journaled (or once ``ready``)
    and before it finished (and ``accept`` holds of what it left).

    The small grid's probes take a few tens of milliseconds, so the parent is frozen with
    SIGSTOP the moment the journal holds ``count`` probes, given SIGINT, and let go: the
    interrupt lands before it can start many more. Retried should the grid finish first.
    """
    for attempt in range(attempts):
        journal.unlink(missing_ok=True)
        run = Run(args, cwd, name=f"interrupted-{attempt}")
        try:
            if ready is None:
                wait_for_probes(run, journal, count, poll=0.002)
            else:
                deadline = time.monotonic() + 120
                while not ready() and run.proc.poll() is None:
                    assert time.monotonic() < deadline, "never ready to be interrupted"
                    time.sleep(0.002)
            os.kill(run.pid, signal.SIGSTOP)
            os.kill(run.pid, signal.SIGINT)
            os.kill(run.pid, signal.SIGCONT)
            code = run.wait(timeout=60)
        finally:
            if run.proc.poll() is None:
                run.kill_all()
        # interrupted before it finished (in any stage: a job is missing)
        if code == 130 and (accept is None or accept()):
            return run, code
    pytest.fail(f"could not interrupt the grid mid-way in {attempts} attempts")


def test_resume_finishes_an_interrupted_run_like_an_uninterrupted_one(tmp_path, uninterrupted):
    _, full, full_stdout, _ = uninterrupted
    journal = tmp_path / "j.jsonl"
    run, _ = interrupt_after([*SMALL_GRID, "--journal", str(journal)], tmp_path, journal, 2)
    assert "interrupted:" in run.stdout
    journaled = {r["id"]: r for r in probe_records(journal)}
    assert 2 <= len(journaled) <= len(SMALL_IDS)
    assert set(journaled) <= set(SMALL_IDS)
    missing = [i for i in SMALL_IDS if i not in journaled]
    lines_before = len(journal.read_text().splitlines())

    done = run_cli([*SMALL_GRID, "--resume", str(journal), "--json", "result.json"], tmp_path)
    assert done.returncode == 1, done.stderr  # the same verdicts, the same gate
    resumed = load_strict_json(tmp_path / "result.json")

    # The same result as the uninterrupted run, probe for probe.
    assert resumed["interrupted"] is False
    assert resumed["probes_planned"] == full["probes_planned"] == len(SMALL_IDS)
    assert [p["id"] for p in resumed["probes"]] == SMALL_IDS
    for mine, theirs in zip(resumed["probes"], full["probes"], strict=True):
        assert comparable(mine) == comparable(theirs), mine["id"]
    # ... and the same terminal report (both runs wrote their JSON to "result.json").
    assert "interrupted:" not in done.stdout
    assert without_sizes(done.stdout) == without_sizes(full_stdout)

    # The journaled jobs (a probe at a stage, under a seed) were taken as they were, not
    # run again ...
    before = {job_key(r): r for r in journal_records(journal)[:lines_before]
              if r["type"] in ("probe", "seed_probe")}
    by_id = {p["id"]: p for p in resumed["probes"]}
    final_stage = {p["id"]: p["evidence"]["schedule"]["stage"] for p in resumed["probes"]}
    for (probe_id, stage, seed), record in before.items():
        if seed is None and stage == final_stage[probe_id]:
            assert by_id[probe_id]["duration_s"] == record["duration_s"], probe_id
            assert by_id[probe_id]["peak_host_bytes"] == record["peak_host_bytes"], probe_id
    # ... and the journal was continued: a 'resumed' record, then only the missing jobs,
    # among them the first rung of every probe the interrupted run had not reached.
    records = journal_records(journal)
    appended = records[lines_before:]
    assert appended[0]["type"] == "resumed"
    assert appended[0]["probes"] == SMALL_IDS
    new = [job_key(r) for r in appended[1:] if r["type"] in ("probe", "seed_probe")]
    assert not set(new) & set(before)
    assert {pid for pid, stage, _ in new if stage == "first_rung"} == set(missing)
    keys = [job_key(r) for r in records if r["type"] in ("probe", "seed_probe")]
    assert len(keys) == len(set(keys))


def test_resume_with_the_journal_of_another_grid_is_refused(tmp_path, uninterrupted):
    _, _, _, journal = uninterrupted
    copy = tmp_path / "other.jsonl"
    copy.write_bytes(journal.read_bytes())
    other = with_flag(SMALL_GRID, "--lr", "0.01,0.1")  # other learning rates: other ids
    done = run_cli([*other, "--resume", str(copy)], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("stabcheck: error: "), done.stderr
    assert "another grid" in lines[0] and str(copy) in lines[0]
    assert "Traceback" not in done.stderr
    assert copy.read_bytes() == journal.read_bytes()  # the journal is left as it was


def test_resume_with_a_file_that_is_not_a_journal_is_refused(tmp_path):
    bogus = tmp_path / "notes.jsonl"
    bogus.write_text('{"hello": "world"}\n')
    done = run_cli([*SMALL_GRID, "--resume", str(bogus)], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "not a stabcheck journal" in lines[0], done.stderr
    missing = run_cli([*SMALL_GRID, "--resume", str(tmp_path / "missing.jsonl")], tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "cannot read journal" in missing.stderr


def test_resume_with_other_settings_but_the_same_probe_ids_is_refused(tmp_path, uninterrupted):
    _, _, _, journal = uninterrupted
    copy = tmp_path / "other.jsonl"
    copy.write_bytes(journal.read_bytes())
    args = with_flag(with_flag(SMALL_GRID, "--optimizer", "adam"), "--steps", "5")
    done = run_cli([*args, "--resume", str(copy), "--json", "b.json"], tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "another grid" in done.stderr


@pytest.mark.slow  # the memory ladder
def test_stabcheck_memory_interrupted_keeps_what_it_measured(tmp_path):
    journal = tmp_path / "journal.jsonl"
    out = tmp_path / "result.json"
    run = Run(["memory", "--model", f"{FIXTURES / 'memory_models.py'}:hungry", "--data",
               "builtin:digits-large", "--batch-size", "32,16384", "--memory-budget", "640MiB",
               "--timeout", "120",
               "--json", str(out), "--journal", str(journal)], tmp_path)
    try:
        deadline = time.monotonic() + 180
        # the first measurement: the ladder's later rungs are still to run (after the
        # second, a loaded machine sometimes saw the ladder end before the signal)
        while sum(r.get("type") == "memory_probe" for r in journal_records(journal)) < 1:
            assert run.proc.poll() is None, run.stderr[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = descendants(run.pid)
        os.kill(run.pid, signal.SIGINT)
        code = run.wait(timeout=60)
    finally:
        if run.proc.poll() is None:
            run.kill_all()
    assert code == 130
    assert_nothing_left(before, tmp_path)
    measured = [r["id"] for r in journal_records(journal) if r.get("type") == "memory_probe"]
    data = load_strict_json(out)
    assert data["interrupted"] is True
    assert [p["id"] for p in data["probes"]] == measured


# ------------------------------------------------------------ a signal inside a window
SLOW = FIXTURES / "slow_models.py"
# Each holds a worker inside a window on its 2nd call (tests/fixtures/slow_models.py):
# - seed_build: the worker builds the model again under seed 1 (a finalist's re-probe);
# - optimizer: the worker of the second batch size allocates its optimizer's state.
WINDOWS = {
    "seed_build": ["probe", "--model", f"{SLOW}:slow_build", "--data", "builtin:breast_cancer",
                   "--class-weight", "none", "--lr", "0.01", "--steps", "20", "--seeds", "2",
                   "--workers", "1", "--timeout", "120", "--fail-on", "none"],
    "optimizer": ["probe", "--model", f"{SLOW}:slow_optimizer",
                  "--data", "builtin:breast_cancer", "--class-weight", "none", "--lr", "0.01",
                  "--batch-size", "32,64", "--steps", "20", "--seeds", "1", "--workers", "1",
                  "--timeout", "120", "--fail-on", "none"],
}


@pytest.mark.parametrize("window", ["seed_build", pytest.param("optimizer",
                                                              marks=pytest.mark.slow)])
def test_a_signal_inside_a_workers_window_invents_no_result(tmp_path, window):
    """SIGTERM while a worker is inside its model build (a seed's re-probe) or its
    optimizer's allocation: the run stops within seconds with exit 130; the job in
    flight is no result (not crashed, not out of memory: stabcheck ended it) and is not
    journaled; and the resumed run equals one that was never interrupted."""
    args = WINDOWS[window]
    full = run_cli([*args, "--json", "full.json", "--journal", "full.jsonl"], tmp_path)
    assert full.returncode == 0, full.stderr
    expected = load_strict_json(tmp_path / "full.json")

    journal, marker = tmp_path / "j.jsonl", tmp_path / "inside"
    run = Run([*args, "--json", "part.json", "--journal", str(journal)], tmp_path,
              env={"STABCHECK_TEST_SLOW_FILE": str(tmp_path / "calls"),
                   "STABCHECK_TEST_SLOW_AT": "2", "STABCHECK_TEST_SLOW_MARKER": str(marker)})
    try:
        deadline = time.monotonic() + 150
        while not marker.exists():
            assert run.proc.poll() is None, run.stderr[-2000:]
            assert time.monotonic() < deadline, "the window never opened"
            time.sleep(0.05)
        signalled = time.monotonic()
        os.kill(run.pid, signal.SIGTERM)
        code = run.wait(timeout=60)
        stopped_in = time.monotonic() - signalled
    finally:
        if run.proc.poll() is None:
            run.kill_all()
    assert code == 130, run.stderr[-2000:]
    assert stopped_in < 10, f"took {stopped_in:.1f} s to stop"
    records = journal_records(journal)
    assert records[-1]["type"] == "interrupted"
    verdicts = [r for r in records if r["type"] in ("probe", "seed_probe")]
    assert verdicts, "the window opened before any job finished"
    assert not {"crashed", "oom_host", "oom_gpu", "timeout", "error"} & {
        r["outcome"] for r in verdicts}
    assert not any(r["evidence"].get("inferred_from") for r in verdicts)

    done = run_cli([*args, "--resume", str(journal), "--json", "resumed.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    resumed = load_strict_json(tmp_path / "resumed.json")
    for key in ("probes", "seed_probes"):
        assert [comparable(p) for p in resumed[key]] == [comparable(p) for p in expected[key]]


def test_resume_of_a_run_interrupted_between_rungs(tmp_path, uninterrupted):
    """Interrupted once every setting's first rung is journaled, before the contenders'
    runs have all finished: the resumed run decides the same contenders from the same
    first rungs, runs only what is missing and equals the uninterrupted run."""
    _, full, _, full_journal = uninterrupted
    later_jobs = [job_key(r) for r in journal_records(full_journal)
                  if r.get("type") == "probe" and r["job"]["stage"] != "first_rung"]
    assert later_jobs, "the small grid has a contender stage"
    journal = tmp_path / "j.jsonl"

    def first_rungs() -> int:
        return sum(r.get("type") == "probe" and r["job"]["stage"] == "first_rung"
                   for r in journal_records(journal))

    def later_done() -> list[tuple[str, str, int | None]]:
        return [job_key(r) for r in journal_records(journal)
                if r.get("type") == "probe" and r["job"]["stage"] != "first_rung"]

    interrupt_after(SMALL_GRID + ["--journal", str(journal)], tmp_path, journal, 0,
                    attempts=5, ready=lambda: first_rungs() >= len(SMALL_IDS),
                    accept=lambda: len(later_done()) < len(later_jobs))
    done_later = later_done()
    before = len(journal_records(journal))
    done = run_cli([*SMALL_GRID, "--resume", str(journal), "--json", "result.json"], tmp_path)
    assert done.returncode == 1, done.stderr
    resumed = load_strict_json(tmp_path / "result.json")
    assert [comparable(p) for p in resumed["probes"]] == [comparable(p) for p in full["probes"]]
    appended = [job_key(r) for r in journal_records(journal)[before:]
                if r.get("type") == "probe"]
    assert not any(stage == "first_rung" for _, stage, _ in appended)  # none run again
    assert sorted(appended) == sorted(set(later_jobs) - set(done_later))
