"""The probe worker: a child process that imports Keras, builds the model and trains probes.

Run as ``python -m stabcheck.worker``; it speaks the JSON-lines protocol drawn and typed
in ``stabcheck.protocol.messages``. Its stdout file descriptor is reserved for that protocol:
anything else printed (by TensorFlow, the user's model code, ...) is sent to stderr,
which the parent keeps in a file and quotes when the worker dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from stabcheck.errors import StabcheckError
from stabcheck.protocol.messages import FromWorker, ToWorker
from stabcheck.results import json_value
from stabcheck.system.oom import is_oom_exception
from stabcheck.system.procfs import peak_private_rss

# The exit status of a worker whose parent died before it (nobody reads it but the shell).
EXIT_ORPHANED = 70


class _Channel:
    """Writes protocol messages as JSON lines on a private copy of stdout."""

    def __init__(self) -> None:
        fd = os.dup(1)
        os.dup2(2, 1)  # stray prints go to stderr, never into the protocol
        sys.stdout = sys.stderr
        self._out: TextIO = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(json_value(message), allow_nan=False) + "\n")
        self._out.flush()


class _ProbeEmitter:
    """Tags a probe's messages with its id and remembers the last step sent."""

    def __init__(self, channel: _Channel, probe_id: str) -> None:
        self._channel = channel
        self._id = probe_id
        self.last_step = 0

    def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == FromWorker.STEP:
            self.last_step = message["step"]
        self._channel.send({**message, "id": self._id})


def _asker(emit: _ProbeEmitter) -> Any:
    """The probe's question to the parent after a held-out evaluation: ``evaluated`` (the
    step and the evaluation) goes out, one line comes back on stdin, ``{"type": "extend",
    "to": N}`` (train on to step N) or ``{"type": "finish"}``."""

    def ask(step: int, holdout: dict[str, Any]) -> int | None:
        emit({"type": FromWorker.EVALUATED.value, "step": step, "holdout": holdout})
        line = sys.stdin.readline()
        reply = json.loads(line) if line.strip() else {"type": ToWorker.FINISH.value}
        return int(reply["to"]) if reply.get("type") == ToWorker.EXTEND else None

    return ask


def _clip_text(text: str, head: int = 1000, tail: int = 3000) -> str:
    """A long message's start and end: TensorFlow puts its traceback first and the
    sentence that matters (check-numerics' "Detected ... in op ...") last."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n[... {len(text) - head - tail} characters ...]\n{text[-tail:]}"


def _exception_message(exc: BaseException, phase: str, step: int | None,
                       backend: Any = None) -> dict[str, Any]:
    oom = is_oom_exception(exc)
    return {
        "type": FromWorker.EXCEPTION.value,
        "phase": phase,
        "step": step,
        "etype": type(exc).__name__,
        "message": _clip_text(str(exc)),
        "oom": oom,
        # where the allocation failed, when the type says more than the message
        "oom_device": backend.oom_device(exc) if oom and backend is not None else None,
        "user_input": isinstance(exc, StabcheckError),
        "traceback": traceback.format_exc()[-4000:],
    }


def _raise_oom_score() -> None:
    """Make this worker the kernel's first choice under memory pressure, not stabcheck."""
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def _exit_with_parent(interval_s: float = 0.5) -> None:
    """End this worker when its parent dies: a worker runs in its own session (so that
    Ctrl-C reaches stabcheck first), so nothing else ends it when the process that
    started it is killed (a Ray actor killed by Ray, a node's OOM killer, SIGKILL)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="stabcheck-parent-watch", daemon=True).start()


def main() -> int:
    """Serve probes until told to exit or stdin closes."""
    channel = _Channel()
    _raise_oom_score()
    _exit_with_parent()
    init = json.loads(sys.stdin.readline() or "{}")
    if init.get("type") != ToWorker.INIT:
        return 3
    t0 = time.perf_counter()
    phase = "startup"
    backend = None
    try:
        from stabcheck.worker import backends

        # The parent chose the backend (also in KERAS_BACKEND); set what it reads at its
        # import before Keras imports it.
        backend_name = init.get("backend") or os.environ.get("KERAS_BACKEND", "tensorflow")
        os.environ["KERAS_BACKEND"] = backend_name
        backends.prepare_environment(backend_name, init.get("gpu_memory_budget"))
        import keras

        from stabcheck.protocol import dataset as data
        from stabcheck.protocol.model_spec import ModelSpec
        from stabcheck.worker import model_setup, models, training

        backend = backends.current()
        # parallel workers share the cores; a budget caps the GPU as a smaller card would
        devices = backend.configure(init.get("threads"), init.get("gpu_memory_budget"))
        if init.get("check_numerics"):  # the first op to output Inf/NaN raises, named
            backend.enable_check_numerics()
        import_s = time.perf_counter() - t0
        # From here on, running out of memory is the user's data and model, not the
        # backend's import: the parent tells the two apart by this message.
        channel.send({"type": FromWorker.IMPORTED.value,
                      "peak_private_bytes": peak_private_rss(),
                      "import_s": round(import_s, 3)})
        phase = "build"
        dataset = data.load_prepared(Path(init["dataset"]))
        keras.utils.set_random_seed(int(init["seed"]))
        if init.get("dtype_policy"):
            keras.config.set_dtype_policy(init["dtype_policy"])
        spec = ModelSpec.from_json(init["model"])
        regression = dataset.task == "regression"
        n_outputs = (dataset.target_width if regression
                     else 1 if dataset.label_format == "binary" else dataset.n_classes)
        def build() -> Any:
            return models.build_model(spec, tuple(dataset.x_train.shape[1:]), n_outputs,
                                      regression)

        model = build()
        state_dir = Path(tempfile.mkdtemp(prefix=f"state-{os.getpid()}-",
                                          dir=Path(init["dataset"]).parent))
        setup = model_setup.prepare_model(model, dataset, init.get("loss"),
                                          init.get("optimizer"), state_dir)
        seeds = model_setup.SeedStates(setup, dataset, build, int(init["seed"]))
    except Exception as exc:  # the user's model or data: reported, then the worker ends
        channel.send(_exception_message(exc, phase, None, backend))
        return 0
    channel.send({
        "type": FromWorker.READY.value,
        "pid": os.getpid(),
        "peak_private_bytes": peak_private_rss(),  # import + data + model
        "model": setup.describe,
        "environment": {
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "framework_version": backend.framework_version(),
            "devices": devices,
            "import_s": round(import_s, 3),
        },
    })
    from stabcheck.results import Probe

    for line in sys.stdin:
        request = json.loads(line)
        if request.get("type") == ToWorker.EXIT:
            break
        probe = Probe.from_json(request["probe"])
        channel.send({"type": FromWorker.START.value, "id": probe.id})
        emit = _ProbeEmitter(channel, probe.id)
        seed = int(request.get("seed") if request.get("seed") is not None else init["seed"])
        try:
            initial = seeds.initial(seed)
        except Exception as exc:  # the model does not build under that seed
            channel.send({**_exception_message(exc, "build", None, backend), "id": probe.id})
            continue
        try:
            training.run_probe(setup, dataset, probe, request.get("class_weights"),
                               seed, emit, early_stop=init.get("early_stop"),
                               extend=_asker(emit) if init.get("extend") else None,
                               initial=initial)
        except Exception as exc:
            channel.send({**_exception_message(exc, "train", emit.last_step, backend),
                          "id": probe.id})
    # Everything the parent needs has been sent: skip the framework's teardown (about a
    # second for TensorFlow) by leaving at once.
    shutil.rmtree(state_dir, ignore_errors=True)
    sys.stderr.flush()
    os._exit(0)

