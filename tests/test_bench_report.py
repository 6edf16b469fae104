"""The benchmark report: its reading of the machine (the share of CPU time other guests took, steal) and how many
times it runs a workload."""

from pathlib import Path

import pytest

from benchmarks.__main__ import Measured, Repeats, cpu_ticks, steal_share, wants_another_run


def test_steal_is_the_share_of_wanted_cpu_time_given_to_other_guests():
    before = [100, 0, 50, 1000, 10, 0, 5, 20]
    # wanted: user 60 + nice 0 + system 20 + irq 0 + softirq 0 + steal 20 = 100; idle and iowait are not wanted time
    after = [160, 0, 70, 5000, 90, 0, 5, 40]
    assert steal_share(before, after) == "20%"


def test_no_cpu_time_wanted_is_no_steal():
    ticks = [1, 2, 3, 4, 5, 6, 7, 8]
    assert steal_share(ticks, ticks) == "0%"


def test_without_proc_stat_the_share_is_said_to_be_unknown():
    assert steal_share(None, [1] * 8) == "not known (no steal time in /proc/stat)"
    assert steal_share([1] * 7, [1] * 8) == "not known (no steal time in /proc/stat)"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="a machine without /proc/stat (not Linux)")
def test_the_machine_counts_eight_kinds_of_cpu_time():
    ticks = cpu_ticks()
    assert ticks is not None and len(ticks) == 8 and all(t >= 0 for t in ticks)


def test_a_short_workload_runs_until_it_has_its_short_count_of_runs():
    def measured(*seconds: float) -> Measured:
        return Measured("w", runs=[{"seconds": s, "events": 1} for s in seconds])

    full = Repeats(3, 9)
    assert wants_another_run(measured(), full)
    assert wants_another_run(measured(0.5, 0.5), full)
    assert not wants_another_run(measured(0.5, 0.5, 0.5), full)
    assert wants_another_run(measured(0.02, 0.02, 0.02), full)
    assert wants_another_run(measured(*[0.02] * 8), full)
    assert not wants_another_run(measured(*[0.02] * 9), full)
    assert not wants_another_run(measured(0.02, 0.5, 0.5), full)  # the median decides, not one quick run
    assert not wants_another_run(measured(0.02, 0.02), Repeats(2, 2))
