"""Benchmark files: which submissions run on which splits, scored how, ranked how, under which limits.

A benchmark file is YAML (``vsbench run BENCH.yaml``)::

    name: lmc-demo                     # letters, digits, '.', '_' and '-'
    task: lmc                          # lmc | adipocyte
    workspace: .vsbench                # results.db, predictions/, scores/ (relative to this file; default .vsbench)
    database: null                     # SQLAlchemy URL (e.g. postgresql+psycopg://...); default the workspace's SQLite
                                       # (--database and $VSBENCH_DB_URL take precedence: store.resolve_database)
    splits:
      - {name: test, path: data/lmc/test}
    submissions:                       # each: name, version and exactly one of image / archive / solution;
                                       # (name, version) is unique: model@v1 and model@v2 are two submissions
      - {name: my-model, version: "3", image: my-model:3}                          # tag or sha256 id in the engine
      - {name: team-a, version: "1", archive: uploads/team-a.tar.gz, digest: "sha256:..."}   # docker save archive
      - {name: tiny-unet, version: "1", solution: tiny-unet, train: data/lmc/train}            # in-process solution
      - {name: vqgan, version: "ckpt", solution: vqgan-lmc-tiny, checkpoint: ckpt/vqgan}
    metrics: [MAE, PCC, SSIM, E_dist, C_dist]     # lmc default all five; adipocyte: [pixel_mae, feature_mae, mae]
    cellprofiler: false                # lmc: add CellProfiler nucleus features (then CP_mae etc. may be listed)
    ranking: {policy: mean-rank, metrics: [PCC, SSIM]}   # read by the leaderboard
    limits: {time_s: 1200, memory: 8g, cpus: 2, pids: 256, gpus: 0}
    seed: 0

:func:`load_benchmark` validates it (pydantic) and resolves paths against the file's folder; every problem is one
line naming the field, e.g. ``bench.yaml: submissions[1].version: field required``. :func:`check_benchmark` then
checks what running it needs (``vsbench run`` does, before anything runs or is stored): splits and paths that
exist, solutions that are known, of the benchmark's task, and given ``train:`` or a checkpoint when they learn.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LMC_METRICS = ("MAE", "PCC", "SSIM", "E_dist", "C_dist")  # the organisers' five (vsbench.metrics)
ADIPOCYTE_METRICS = ("pixel_mae", "feature_mae", "mae")  # vsbench.metrics.adipocyte: pixel, CellProfiler, combined
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be used: one line per problem (``problems``), each naming the file and the
    field; the message is those lines."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems) if problems else [message]
        super().__init__("\n".join(self.problems) if problems else message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, '.', '_', '-'; at most 100)")
    return value


class SplitSpec(_Strict):
    """A split of the benchmark; ``hidden`` (default true): its ground truth is the challenge's secret, so a public
    leaderboard site (``vsbench leaderboard publish``, the default mode) shows no ground-truth or difference image
    of it. Set ``hidden: false`` for a split whose ground truth is public (e.g. a validation split)."""

    name: str
    path: Path
    hidden: bool = True

    _name = field_validator("name")(_check_name)


class Submission(_Strict):
    """One submission: a container image (tag or id), a ``docker save`` archive (loaded, digest-checked), or an
    in-process solution (a ``vsbench algorithms`` name, with a checkpoint or a training split)."""

    name: str
    version: str
    image: str | None = None
    archive: Path | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    solution: str | None = None
    checkpoint: Path | None = None
    train: Path | None = None
    contract: Literal["auto", "vsbench", "grand-challenge"] = "auto"

    _name = field_validator("name")(_check_name)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value):
        if isinstance(value, (int, float)):
            return str(value)
        return value

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("image", "archive", "solution") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of image, archive, solution" + (f" (got {', '.join(kinds)})"
                                                                                 if kinds else ""))
        if self.solution is None and (self.checkpoint is not None or self.train is not None):
            raise ValueError("checkpoint and train are for solution submissions")
        if self.archive is None and self.digest is not None and self.image is None:
            raise ValueError("digest is for archive and image submissions")
        if self.solution is not None and self.contract == "grand-challenge":
            raise ValueError("contract grand-challenge is for images")
        return self

    @property
    def kind(self) -> str:
        return "image" if self.image is not None else "archive" if self.archive is not None else "solution"

    @property
    def label(self) -> str:
        """``name@version``: what identifies the submission in a benchmark, its results and its leaderboard."""
        return f"{self.name}@{self.version}"


class RankingSpec(_Strict):
    policy: Literal["mean-rank", "median-rank", "absolute", "lmc", "adipocyte"] = "mean-rank"
    metrics: list[str] = Field(default_factory=list)


class LimitsSpec(_Strict):
    time_s: float = Field(default=1200.0, gt=0)
    memory: str = "8g"
    cpus: float = Field(default=2.0, gt=0)
    pids: int = Field(default=256, gt=0)
    gpus: int = Field(default=0, ge=-1)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value):
        from vsbench.harness.docker_runtime import parse_bytes

        parse_bytes(str(value))
        return str(value)


class Benchmark(_Strict):
    name: str
    task: Literal["lmc", "adipocyte"]
    splits: list[SplitSpec] = Field(min_length=1)
    submissions: list[Submission] = Field(min_length=1)
    workspace: Path = Path(".vsbench")
    database: str | None = None
    metrics: list[str] | None = None
    cellprofiler: bool = False
    ranking: RankingSpec = RankingSpec()
    limits: LimitsSpec = LimitsSpec()
    seed: int = 0
    source: Path | None = Field(default=None, exclude=True)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _consistent(self):
        from vsbench.metrics.cp_nuclei import CP_METRICS

        known = LMC_METRICS if self.task == "lmc" else ADIPOCYTE_METRICS
        if self.cellprofiler and self.task == "lmc":  # the CP_* nucleus errors can be stored and ranked too
            known = (*known, *CP_METRICS)
        for where, metrics in (("metrics", self.metrics or ()), ("ranking.metrics", self.ranking.metrics)):
            for metric in metrics:
                if metric not in known:
                    hint = " (CP_* metrics need cellprofiler: true)" if metric in CP_METRICS else ""
                    raise ValueError(f"{where}: {metric!r} is not a {self.task} metric ({', '.join(known)}){hint}")
        names = [s.name for s in self.splits]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"splits: duplicate name {dup[0]!r}")
        ids = [(s.name, s.version) for s in self.submissions]  # a submission is (name, version)
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"submissions: duplicate name {dup[0][0]!r} at version {dup[0][1]!r} (a name may repeat "
                             "with another version)")
        if self.cellprofiler and self.task != "lmc":
            raise ValueError("cellprofiler: the adipocyte score always includes CellProfiler features")
        return self

    @property
    def metric_set(self) -> list[str]:
        """The metrics stored and ranked (default: all of the task's)."""
        return list(self.metrics or (LMC_METRICS if self.task == "lmc" else ADIPOCYTE_METRICS))


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _resolve(base: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base / path)


def parse_benchmark(data: object, source: Path | str = "benchmark") -> Benchmark:
    """Validate a parsed benchmark document; paths are resolved against ``source``'s folder."""
    source = Path(source)
    if not isinstance(data, dict):
        raise BenchmarkError(f"{source}: a benchmark file is a mapping (name, task, splits, submissions, ...)")
    try:
        bench = Benchmark.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():  # every problem, one line each
            where = _where(err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "field required"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append(f"{source}: {where + ': ' if where else ''}{msg}")
        raise BenchmarkError(problems[0], problems) from None
    base = source.parent.resolve()
    return bench.model_copy(update={
        "source": source,
        "workspace": _resolve(base, bench.workspace),
        "splits": [s.model_copy(update={"path": _resolve(base, s.path)}) for s in bench.splits],
        "submissions": [s.model_copy(update={k: _resolve(base, getattr(s, k)) for k in ("archive", "checkpoint",
                                                                                          "train")})
                        for s in bench.submissions],
    })


def load_benchmark(path: Path | str) -> Benchmark:
    """Read and validate the YAML benchmark file ``path`` (:class:`BenchmarkError`, one line, on any problem)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BenchmarkError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise BenchmarkError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return parse_benchmark(data, path)


def _split_problem(path: Path, task: str | None, what: str) -> str | None:
    """Why ``path`` cannot serve as a split of ``task`` (``what`` says who needs it, e.g. "the benchmark is lmc"),
    or None."""
    from vsbench.harness.split import Split, SplitError

    try:
        split = Split(path)
    except (SplitError, OSError, ValueError) as exc:
        return str(exc).splitlines()[0]
    if task is not None and split.task != task:
        return f"{path} is an {split.task} split; {what}"
    return None


def benchmark_problems(bench: Benchmark) -> list[str]:
    """What stops ``bench`` from running, one line per problem naming the file and the field: a split path that
    is not a split of the benchmark's task; an unknown solution, or one of another task; a solution that learns
    with neither ``train:`` nor ``checkpoint:``; a ``checkpoint``, ``train`` or ``archive`` path that does not
    exist (or a training split of another task, a checkpoint for a solution that loads none). Images are checked
    when the run resolves them (that needs the Docker engine)."""
    from vsbench.algorithms.registry import algorithm_task, learns, loads_checkpoints

    source = bench.source or Path("benchmark")
    problems: list[str] = []

    def problem(where: str, msg: str) -> None:
        problems.append(f"{source}: {where}: {msg}")

    for i, spec in enumerate(bench.splits):
        why = _split_problem(spec.path, bench.task, f"the benchmark is {bench.task}")
        if why:
            problem(f"splits[{i}].path", why)
    for i, sub in enumerate(bench.submissions):
        at = f"submissions[{i}]"
        if sub.archive is not None and not sub.archive.is_file():
            problem(f"{at}.archive", f"{sub.archive} not found")
        if sub.solution is None:
            continue
        try:
            task = algorithm_task(sub.solution)
        except ValueError as exc:
            problem(f"{at}.solution", str(exc))
            continue
        if task != bench.task:
            problem(f"{at}.solution", f"{sub.solution} is an {task} solution; the benchmark is {bench.task}")
            continue
        if sub.checkpoint is not None:
            if not sub.checkpoint.exists():
                problem(f"{at}.checkpoint", f"{sub.checkpoint} not found")
            elif not loads_checkpoints(sub.solution):
                problem(f"{at}.checkpoint", f"{sub.solution} does not load checkpoints")
        if sub.train is not None:
            why = _split_problem(sub.train, task, f"{sub.solution} learns from {task} splits")
            if why:
                problem(f"{at}.train", why)
        elif sub.checkpoint is None and learns(sub.solution):
            problem(f"{at}.train", f"{sub.solution} learns from data: give a training split (train: PATH) or a "
                    "trained checkpoint (checkpoint: PATH)")
    return problems


def check_benchmark(bench: Benchmark) -> Benchmark:
    """``bench`` when it can run (:func:`benchmark_problems` finds nothing), else :class:`BenchmarkError` listing
    every problem. ``vsbench run`` checks the whole file before anything runs or is stored."""
    problems = benchmark_problems(bench)
    if problems:
        raise BenchmarkError(problems[0], problems)
    return bench
