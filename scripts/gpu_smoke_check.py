"""Checks one result of scripts/gpu-smoke.sh: prints what each probe ended as and exits 1
when an expectation fails. Standard library only (runs beside stabcheck, not in it).

    python3 scripts/gpu_smoke_check.py nan|oom RESULT.json BACKEND [--gpu]
"""

from __future__ import annotations

import json
import sys

NAN_FAILING = "cw=x1000,lr=100,clip=none,bs=32"
NAN_STABLE = "cw=balanced,lr=0.05,clip=none,bs=32"
OOM_SMALL = "cw=none,lr=0.01,clip=none,bs=32"
OOM_HUGE = "cw=none,lr=0.01,clip=none,bs=16384"


def main(kind: str, path: str, backend: str, gpu: bool) -> int:
    data = json.load(open(path, encoding="utf-8"))
    env = data["environment"]
    probes = {p["id"]: p for p in data["probes"]}
    print(f"  backend {env.get('backend')} {env.get('framework_version')}, keras "
          f"{env.get('keras_version')}, devices {env.get('devices')}")
    for pid, p in probes.items():
        peak = p.get("peak_gpu_bytes")
        print(f"  {pid}: {p['outcome']} ({p['category']}), {p['steps_completed']} steps, "
              f"peak GPU {'-' if peak is None else f'{peak / 2**20:.1f} MiB'}")
    failures = []

    def expect(ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    expect(env.get("backend") == backend, f"environment.backend is {backend!r}")
    on_gpu = any(d.get("type") == "GPU" for d in env.get("devices", []))
    if gpu:
        expect(on_gpu, "the worker saw a GPU")
    if kind == "nan":
        failing, stable = probes.get(NAN_FAILING), probes.get(NAN_STABLE)
        expect(failing is not None and failing["outcome"] in ("non_finite", "diverged"),
               f"{NAN_FAILING} fails numerically (non_finite or diverged)")
        expect(stable is not None and stable["outcome"] == "stable", f"{NAN_STABLE} is stable")
        if gpu and stable is not None:
            expect(stable.get("peak_gpu_bytes") is not None, "the GPU peak was measured")
    else:
        small, huge = probes.get(OOM_SMALL), probes.get(OOM_HUGE)
        expect(small is not None and small["category"] != "memory"
               and small["steps_completed"] == 3, f"{OOM_SMALL} fits and trains 3 steps")
        expect(huge is not None and huge["outcome"] == "oom_gpu",
               f"{OOM_HUGE} is oom_gpu (the allocator ran out under the budget)")
        if huge is not None:
            print(f"  evidence: {json.dumps(huge.get('evidence'))[:600]}")
    return 1 if failures else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--gpu"]
    sys.exit(main(args[0], args[1], args[2], "--gpu" in sys.argv[1:]))
