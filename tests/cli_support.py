"""Run the installed ``vsbench`` console script in a subprocess, as a user does.

:func:`vsbench` runs ``vsbench ARGS`` (the script next to this interpreter, i.e. ``.venv/bin/vsbench``) in ``cwd``
and checks its exit code; :func:`shell` runs a bash snippet with that script first on ``PATH``. Both return the
:class:`subprocess.CompletedProcess` (text ``stdout`` and ``stderr``) and, when the exit code is not the one
expected, fail with both streams shown.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
VSBENCH = BIN / "vsbench"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: the venv's bin first on PATH, no $VSBENCH_DB_URL unless given."""
    env = {k: v for k, v in os.environ.items() if k != "VSBENCH_DB_URL"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("COLUMNS", "200")
    env.update(extra or {})
    return env


def _check(proc: subprocess.CompletedProcess, expect: int | None, what: str) -> subprocess.CompletedProcess:
    if expect is not None and proc.returncode != expect:
        raise AssertionError(f"{what}: exit {proc.returncode}, expected {expect}\n--- stdout ---\n"
                             f"{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
    return proc


def vsbench(*args: str | os.PathLike, cwd: Path | str, expect: int | None = 0, env: dict[str, str] | None = None,
            timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess:
    """``vsbench ARGS`` in ``cwd``; asserts the exit code is ``expect`` (None: any)."""
    argv = [str(VSBENCH), *map(str, args)]
    proc = subprocess.run(argv, cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout,
                          input=input)
    return _check(proc, expect, "vsbench " + " ".join(map(str, args)))


def shell(script: str, *, cwd: Path | str, expect: int | None = 0, env: dict[str, str] | None = None,
          timeout: float = 600) -> subprocess.CompletedProcess:
    """A bash snippet (``set -o pipefail``) with the venv's ``vsbench`` on PATH; asserts its exit code."""
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, env=cli_env(env), capture_output=True,
                          text=True, timeout=timeout)
    return _check(proc, expect, f"bash -c {script[:200]!r}")
