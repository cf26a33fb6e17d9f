"""The benchmarks run at smoke sizes unless ``VSBENCH_BENCH=full`` (``make bench``): see ``sizes.py``."""

from __future__ import annotations

import sizes


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One line saying which sizes the benchmarks ran at, when any of them ran."""
    ran = any("benchmarks/test_bench_" in report.nodeid
              for key in ("passed", "failed", "error") for report in terminalreporter.stats.get(key, []))
    if not ran:
        return
    if sizes.FULL:
        terminalreporter.write_line(f"tests/benchmarks ran at the full sizes ({sizes.ENV}=full)")
    else:
        terminalreporter.write_line(f"tests/benchmarks ran at smoke sizes (their timings are not measurements); "
                                    f"make bench ({sizes.ENV}=full) runs the full sizes")
