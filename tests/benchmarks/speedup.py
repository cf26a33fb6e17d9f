"""The speed-up report shared by the reference-vs-fast benchmarks (nothing here asserts on time)."""

from __future__ import annotations

import pytest

from sizes import MODE, label


def report_speedup(means: dict[str, float], mins: dict[str, float], fast_benchmark: dict, text: str,
                   capsys) -> float:
    """Store ``reference / fast`` (means and minima) in the fast benchmark's ``extra_info`` and print it;
    skips when the two timed benchmarks have not run (e.g. ``--benchmark-disable``). Outside ``make bench`` the
    sizes are smoke sizes: the line printed says so and ``extra_info["bench_size"]`` is ``"smoke"``."""
    if "reference" not in means or "fast" not in means:
        pytest.skip("needs the reference and fast benchmarks to have run (with timing enabled)")
    ratio = means["reference"] / means["fast"]
    ratio_min = mins["reference"] / mins["fast"]
    benchmark = fast_benchmark["fixture"]
    benchmark.extra_info.update({"speedup_vs_reference": ratio, "speedup_vs_reference_min": ratio_min,
                                 "reference_mean_s": means["reference"], "fast_mean_s": means["fast"],
                                 "bench_size": MODE})
    with capsys.disabled():
        print(f"\n{label(text)}: reference {means['reference'] * 1e3:.1f} ms, fast {means['fast'] * 1e3:.2f} ms, "
              f"speedup x{ratio:.1f} (ratio of minima x{ratio_min:.1f})")
    return ratio
