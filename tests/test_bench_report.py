"""The benchmark report's reading of the machine: the share of CPU time other guests took (steal)."""

from pathlib import Path

import pytest

from benchmarks.__main__ import cpu_ticks, steal_share


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
