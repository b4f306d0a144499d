"""The probe grid on a Ray cluster: each parallel worker is a Ray actor.

An actor (``_ProbeHost``) is placed by Ray with the resources a worker needs (``num_cpus``,
``num_gpus=1`` when the cluster has GPUs, ``memory=`` the ``--memory-budget``), and runs
the *local* runner on its node: every probe still trains in a child process of its own,
under the budget (a cgroup or the watchdog), so a probe's death is evidence the actor
reports, never the actor's own death. The actor keeps its child across the probes of one
batch size, as locally.

What Ray itself ends is evidence too, never retried (``max_restarts=0``,
``max_task_retries=0``): an actor killed by Ray's memory monitor or its node's OOM killer
(``ray.exceptions.OutOfMemoryError``) is ``oom_host`` with Ray's message, the node and its
memory at the kill; an actor that died, or whose node was lost, is ``crashed`` naming the
node; a probe that outlives ``--timeout`` (plus a worker's start-up) has its actor killed
and is ``timeout``. The next probe of that runner gets a fresh actor.

Only JSON-safe records cross to the actor and back (the worker's init, probes, ``ProbeRun``
dataclasses); the prepared data set travels once through Ray's object store and is written
to a temporary folder on each actor's node.
"""
