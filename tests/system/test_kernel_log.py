"""The kernel's record of OOM kills: the pids its log names, as the kernel writes them."""

from __future__ import annotations

import pytest

from stabcheck.system.kernel_log import oom_victims, read_kernel_log

# Records as /dev/kmsg gives them (the prefix stripped), from a real cgroup OOM kill here.
CGROUP_KILL = (
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
    "oom_memcg=/stabcheck-21261-0,task_memcg=/stabcheck-21261-0,task=python,pid=26940,uid=0\n"
    "Memory cgroup out of memory: Killed process 26940 (python) total-vm:3560928kB, "
    "anon-rss:781904kB, file-rss:608316kB, shmem-rss:0kB, UID:0 pgtables:3560kB "
    "oom_score_adj:0"
)
GLOBAL_KILL = ("Out of memory: Killed process 4711 (python3) total-vm:9000000kB, "
               "anon-rss:8000000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:20000kB "
               "oom_score_adj:1000")
NOT_A_KILL = ("[  26940]     0 26940   890232   347555   195476   152079         0  "
              "3645440        0             0 python\n"
              "python invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, "
              "oom_score_adj=0")


@pytest.mark.parametrize(("text", "pids"), [
    (CGROUP_KILL, {26940}),
    (GLOBAL_KILL, {4711}),
    (NOT_A_KILL, set()),  # the task table and the invocation name no victim
    (f"{NOT_A_KILL}\n{CGROUP_KILL}\n{GLOBAL_KILL}", {26940, 4711}),
    ("", set()),
])
def test_the_pids_the_oom_killer_ended(text, pids):
    assert oom_victims(text) == pids


def test_an_unreadable_log_is_none_not_an_error(tmp_path):
    assert read_kernel_log(str(tmp_path / "no-such-device")) is None
