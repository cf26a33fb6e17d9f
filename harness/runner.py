"""``vsbench run BENCH.yaml``: every submission on every split, scored, stored, resumable.

The work is two kinds of job, both keyed by what decides their result, so a rerun (after a crash, a
``SIGKILL``, or on purpose) does only what is missing and never writes a row twice:

- an **inference run**: one submission on one split, through the sandboxed Docker runtime
  (:mod:`vsbench.harness.docker_runtime`; images and ``docker save`` archives) or the local runtime
  (:mod:`vsbench.harness.local_runtime`; in-process solutions, not sandboxed). ``run_key`` = sha256 of the
  benchmark and submission names, what the submission is (image digest, or solution name + checkpoint hash +
  training split hash), the split's manifest hash, the runtime, contract, limits and seed. Its predictions are
  written into ``WORKSPACE/predictions/<run_key>.partial-<uuid>`` and renamed to ``WORKSPACE/predictions/
  <run_key>`` when complete: a folder under the final name is always whole, and is reused. Its logs are kept in
  its ``logs/`` folder, and the paths run.json and the database record point there (never into the partial
  folder). A runtime that raises (a training split it cannot read, a broken checkpoint) makes a run whose every
  case failed with that one-line reason, its traceback in ``logs/runtime.stderr.txt``.
- a **score**: one evaluation of a run's predictions. ``score_key`` = sha256 of the run key, the predictions'
  content hash, the evaluator and its version, the metric set and options. Its ``metrics.json`` is written
  atomically to ``WORKSPACE/scores/<score_key>/``. Changing only the evaluator (version, metric set) makes new
  score keys and re-scores the stored predictions; no container runs again.

Jobs run as Dask tasks (:mod:`vsbench.harness.scale`): a local cluster by default (started only when there is
work), an existing one with ``scheduler``. Only this process writes the results database
(:class:`vsbench.harness.store.ResultStore`), as each job completes. A run's stored status is final when
:func:`run_benchmark` returns (or raises): ``complete`` (some case succeeded; scored) or ``failed`` (none did, or
the job died); :attr:`Outcome.failures` names each run with cases that did not succeed, why, and where its logs
are. ``retry_failed`` re-runs only the failed cases of finished runs and merges them in (their logs beside the
first ones, as ``logs/retry-<id>-<name>``). The benchmark file is checked whole first
(:func:`vsbench.harness.benchmark.check_benchmark`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vsbench.harness import __version__
from vsbench.harness.benchmark import Benchmark, Submission, check_benchmark
from vsbench.harness.predict import RUN_RECORD, _write_json
from vsbench.harness.split import Split

PREDICTIONS, SCORES = "predictions", "scores"


class RunError(RuntimeError):
    """A benchmark that cannot run (one line): a missing engine for image submissions, a bad archive, ..."""


def sha256_json(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def tree_hash(path: Path) -> str:
    """sha256 over the relative names and sha256 of every file under ``path`` (or of the file ``path``)."""
    from vsbench.harness.split import sha256_file

    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{file.relative_to(path).as_posix()}\t{sha256_file(file)}\n".encode())
    return h.hexdigest()


def _gpu_driver() -> bool:
    """Whether this machine may have a GPU torch can use: an NVIDIA or AMD (ROCm) driver, or not Linux (where
    this is not known without asking torch)."""
    if platform.system() != "Linux":
        return True
    return any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd"))


def hardware() -> dict:
    """This machine: CPU model, cores, memory, GPU model (None without one)."""
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    try:
        if "torch" in sys.modules or _gpu_driver():  # importing torch costs seconds: only where a GPU may be
            import torch

            if torch.cuda.is_available():
                gpu = torch.cuda.get_device_name(0)
    except Exception:  # no torch, or a broken CUDA set-up: no GPU recorded
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory, "gpu": gpu, "machine": platform.machine(),
            "node": platform.node()}


# --- submissions -----------------------------------------------------------------------------------------------


@dataclass
class Resolved:
    """A submission made concrete: how it runs and what identifies its result."""

    submission: Submission
    runtime: str  # docker | local
    identity: dict
    image_ref: str | None = None
    image_digest: str | None = None
    checkpoint_hash: str | None = None


def _load_archive(client, sub: Submission) -> tuple[str, str]:
    """Load a ``docker save`` archive (unless the engine already has its declared digest); (image id, ref)."""
    import docker

    if sub.digest is not None:
        try:
            image = client.images.get(sub.digest)
            return image.id, image.tags[0] if image.tags else image.id
        except docker.errors.ImageNotFound:
            pass
    if not sub.archive.is_file():
        raise RunError(f"submission {sub.name}: archive {sub.archive} not found")
    try:
        with open(sub.archive, "rb") as fh:
            images = client.images.load(fh)
    except docker.errors.APIError as exc:
        raise RunError(f"submission {sub.name}: {sub.archive} is not a docker save archive "
                       f"({str(exc).splitlines()[0][:160]})") from None
    if len(images) != 1:
        raise RunError(f"submission {sub.name}: {sub.archive} holds {len(images)} images; one expected")
    image = images[0]
    if sub.digest is not None and image.id != sub.digest:
        raise RunError(f"submission {sub.name}: {sub.archive} holds image {image.id}, not the declared digest "
                       f"{sub.digest}")
    return image.id, image.tags[0] if image.tags else image.id


def resolve_submission(sub: Submission, task: str, runtime: str, client_factory: Callable[[], object]) -> Resolved:
    """How ``sub`` runs (``runtime``: auto, docker, local) and its identity (:class:`RunError` when it cannot)."""
    if sub.kind == "solution":
        from vsbench.algorithms.registry import algorithm_task

        try:
            solution_task = algorithm_task(sub.solution)
        except (KeyError, ValueError) as exc:
            raise RunError(f"submission {sub.name}: {exc}") from None
        if solution_task != task:
            raise RunError(f"submission {sub.name}: {sub.solution} is an {solution_task} solution; the benchmark "
                           f"is {task}")
        if sub.checkpoint is not None and not sub.checkpoint.exists():
            raise RunError(f"submission {sub.name}: checkpoint {sub.checkpoint} not found")
        checkpoint_hash = tree_hash(sub.checkpoint) if sub.checkpoint is not None else None
        train_hash = Split(sub.train).split_hash if sub.train is not None else None
        return Resolved(sub, "local", {"kind": "solution", "solution": sub.solution, "checkpoint": checkpoint_hash,
                                       "train": train_hash}, checkpoint_hash=checkpoint_hash)
    if runtime == "local":
        raise RunError(f"submission {sub.name}: an {sub.kind} runs only in the Docker runtime (--runtime local "
                       "is for solutions)")
    try:
        client = client_factory()
    except Exception as exc:
        raise RunError(f"submission {sub.name}: {exc}") from None
    if sub.kind == "archive":
        digest, ref = _load_archive(client, sub)
    else:
        from vsbench.harness.docker_runtime import inspect_image

        info = inspect_image(client, sub.image)
        if sub.digest is not None and info.id != sub.digest:
            raise RunError(f"submission {sub.name}: image {sub.image} is {info.id}, not the declared {sub.digest}")
        digest, ref = info.id, sub.image
    return Resolved(sub, "docker", {"kind": sub.kind, "image": digest, "contract": sub.contract}, image_ref=ref,
                    image_digest=digest)


# --- jobs (run in Dask workers: plain functions of plain data) ----------------------------------------------------


def run_key_of(bench: Benchmark, resolved: Resolved, split: Split) -> str:
    limits = bench.limits.model_dump() if resolved.runtime == "docker" else None
    return sha256_json({"benchmark": bench.name, "submission": resolved.submission.name,
                        "version": resolved.submission.version, "identity": resolved.identity,
                        "split": split.split_hash, "runtime": resolved.runtime, "limits": limits, "seed": bench.seed})


def inference_job(spec: dict) -> dict:
    """Run one submission on one split (or on ``spec['cases']`` of it) into a fresh partial folder; returns
    ``{"partial": folder, "record": run.json}``. Runs in a Dask worker; writes nothing but that folder."""
    from vsbench.harness.docker_runtime import Limits, parse_bytes

    partial = Path(spec["workspace"]) / PREDICTIONS / f"{spec['run_key']}.partial-{uuid.uuid4().hex[:8]}"
    started = time.time()
    try:
        if spec["runtime"] == "docker":
            from vsbench.harness.docker_runtime import run_image

            lim = spec["limits"]
            limits = Limits(time_s=lim["time_s"], memory_bytes=parse_bytes(lim["memory"]), cpus=lim["cpus"],
                            pids=lim["pids"], gpus=lim["gpus"])
            record = run_image(spec["image"], spec["split"], partial, contract=spec["contract"], limits=limits,
                               cases=spec.get("cases"), progress=False)
        else:
            from vsbench.harness.local_runtime import run_local

            _seed_everything(spec["seed"])
            record = run_local(spec["solution"], spec["split"], partial, checkpoint=spec.get("checkpoint"),
                               train=spec.get("train"), cases=spec.get("cases"), progress=False)
    except Exception as exc:  # the runtime itself failed (a training split it cannot read, a broken checkpoint,
        # the engine gone): every case fails with its one-line reason; the traceback goes to the run's log, never
        # to the worker's logger (the user's terminal)
        record = _runtime_failed(spec, partial, exc)
    return {"partial": str(partial), "record": record, "started": started, "finished": time.time()}


def _runtime_failed(spec: dict, partial: Path, exc: Exception) -> dict:
    """Write ``partial`` as a run whose every case failed with ``exc``'s first line; its traceback in
    ``logs/runtime.stderr.txt``. Returns the record (also ``partial/run.json``)."""
    import traceback

    from vsbench.harness.contract import FAILED, STATUSES, case_ids, one_line
    from vsbench.harness.predict import LOGS_DIR

    reason = one_line(exc)[:500]
    shutil.rmtree(partial, ignore_errors=True)  # whatever the runtime left: no prediction of a failed run is kept
    log = partial / LOGS_DIR / "runtime.stderr.txt"
    log.parent.mkdir(parents=True)
    log.write_text("".join(traceback.format_exception(exc)))
    try:
        cases = list(spec.get("cases") or case_ids(Split(spec["split"])))
    except Exception:  # the split itself is unreadable: a run of no case
        cases = []
    results = [{"case": c, "status": FAILED, "reason": reason, "exit_code": None, "durations": {}, "stdout": None,
                "stderr": str(log), "image_digest": spec.get("image")} for c in cases]
    record = {"runtime": spec["runtime"], "sandboxed": spec["runtime"] == "docker", "split": spec["split"],
              "contract": spec.get("contract") if spec["runtime"] == "docker" else "local", "error": reason,
              "vsbench_version": __version__, "summary": {s: sum(r["status"] == s for r in results) for s in STATUSES},
              "cases": results}
    _write_json(partial / RUN_RECORD, record)
    return record


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def score_job(spec: dict) -> dict:
    """Score one prediction folder; writes ``metrics.json`` atomically into the score folder; returns its path.
    Runs in a Dask worker. A scoring that raises returns ``{"error": its first line}`` (the traceback in
    ``score.stderr.txt`` there), never a traceback from the worker's logger on the user's terminal."""
    try:
        return _score_job(spec)
    except Exception as exc:
        import traceback

        from vsbench.harness.contract import one_line

        log = Path(spec["workspace"]) / SCORES / spec["score_key"] / "score.stderr.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(traceback.format_exception(exc)))
        return {"error": f"{one_line(exc)} (traceback in {log})"}


def _score_job(spec: dict) -> dict:
    from vsbench.harness.evaluate import json_safe

    out = Path(spec["workspace"]) / SCORES / spec["score_key"] / "metrics.json"
    split = Split(spec["split"])
    if split.task == "lmc":
        from vsbench.harness.evaluate import evaluate_lmc

        metrics = evaluate_lmc(split, Path(spec["predictions"]), workers=1, progress=False,
                               cellprofiler=spec["cellprofiler"])
    else:
        from concurrent.futures import ThreadPoolExecutor

        from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte

        cache = Path(spec["workspace"]) / "feature-cache"
        with ThreadPoolExecutor(max_workers=1) as inline:  # a Dask worker (daemonic) cannot start a process pool
            metrics = evaluate_adipocyte([(split, Path(spec["predictions"]))], progress=False, cache_dir=cache,
                                         executor=inline)
    metrics["provenance"]["benchmark_metrics"] = spec["metrics"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".metrics-{uuid.uuid4().hex[:8]}.json")
    tmp.write_text(json.dumps(json_safe(metrics), indent=1, allow_nan=False) + "\n")
    tmp.replace(out)
    return {"metrics_path": str(out)}


# --- the driver ----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What ``run_benchmark`` did: counts of work done and reused, and one row per submission x split."""

    inferred: int = 0
    reused_runs: int = 0
    scored: int = 0
    reused_scores: int = 0
    rows: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # one per run with cases that did not succeed (or that failed as a whole): submission, version, split,
    # run_key, status, n_cases, n_failed, reason, logs (a log file or folder, or None) and a one-line message
    failures: list[dict] = field(default_factory=list)


def _finalize(partial: Path, final: Path) -> Path:
    """Rename a complete partial folder to its final name; if another attempt got there first, keep that one.
    The log paths of its run.json are first rewritten to where the logs will be (the final folder)."""
    from vsbench.harness.logs import moved, relocate_logs

    record_path = partial / RUN_RECORD
    _write_json(record_path, relocate_logs(json.loads(record_path.read_text()), moved(partial, final)))
    try:
        os.rename(partial, final)
    except OSError:
        if (final / RUN_RECORD).is_file():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            raise
    return final


def _predictions_hash(folder: Path) -> str:
    from vsbench.harness.evaluate import _predictions_digest

    return _predictions_digest(folder)


def _merge_retry(final: Path, partial: Path, retried: dict) -> dict:
    """Move the retried cases' outputs from ``partial`` into ``final`` and update its run.json: the retry's logs
    are kept beside the first ones as ``logs/retry-<id>-<name>``, and the retried cases' log paths say so."""
    from vsbench.harness.logs import moved, relocate_logs

    record = json.loads((final / RUN_RECORD).read_text())
    retry_id = uuid.uuid4().hex[:6]
    targets: dict[str, str] = {}
    for path in sorted(p for p in partial.rglob("*") if p.is_file() and p.name != RUN_RECORD):
        rel = path.relative_to(partial)
        if rel.parts[0] == "logs":
            rel = Path("logs") / f"retry-{retry_id}-{rel.name}"
        (final / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final / rel)
        targets[str(path)] = str(final / rel)
    to_final = moved(partial, final)
    relocate_logs(retried, lambda old: targets.get(old) or to_final(old))
    new = {c["case"]: c for c in retried["cases"]}
    record["cases"] = [new.get(c["case"], c) for c in record["cases"]]
    record["summary"] = {s: sum(c["status"] == s for c in record["cases"]) for s in record["summary"]}
    retry = {"cases": sorted(new), "at": time.time()}
    if retried.get("runs"):
        retry["runs"] = retried["runs"]
    if retried.get("error"):
        retry["error"] = record["error"] = retried["error"]
    else:
        record.pop("error", None)  # the runtime ran this time
    record.setdefault("retries", []).append(retry)
    _write_json(final / RUN_RECORD, record)
    shutil.rmtree(partial, ignore_errors=True)
    return record


def _run_row(bench: Benchmark, item: _Item, record: dict, times: dict, hw: dict) -> dict:
    resolved, split_spec, split, run_key, final = item.res, item.spec, item.split, item.key, item.final
    cases = record["cases"]
    n_ok = sum(c["status"] == "succeeded" for c in cases)
    return {
        "run_key": run_key, "benchmark": bench.name, "submission": resolved.submission.name,
        "submission_version": resolved.submission.version, "submission_kind": resolved.submission.kind,
        "image_ref": resolved.image_ref or resolved.submission.solution, "image_digest": resolved.image_digest,
        "checkpoint_hash": resolved.checkpoint_hash, "split_name": split_spec.name, "split_path": str(split.root),
        "split_hash": split.split_hash, "inputs_hash": split.manifest.get("inputs_hash"),
        "runtime": resolved.runtime, "sandboxed": bool(record.get("sandboxed")),
        "contract": record.get("contract", "local"), "batch": bool(record.get("batch", True)),
        "limits": record.get("limits"), "seed": bench.seed, "hardware": hw, "vsbench_version": __version__,
        "status": "complete" if n_ok else "failed",  # final: a run with no case done is failed, never left running
        "started_at": _utc(times.get("started")), "finished_at": _utc(times.get("finished")),
        "duration_s": (times["finished"] - times["started"]) if times.get("started") else None,
        "n_cases": len(cases), "n_succeeded": n_ok, "n_failed": len(cases) - n_ok,
        "predictions_path": str(final), "predictions_hash": item.predictions_hash(),
        "run_record_path": str(final / RUN_RECORD), "logs_path": str(final / "logs"),
    }


def _utc(seconds: float | None):
    import datetime as dt

    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _case_rows(record: dict) -> list[dict]:
    keep = ("case", "status", "reason", "exit_code", "durations", "stdout", "stderr", "image_digest")
    return [{k: c.get(k) for k in keep} for c in record["cases"]]


@dataclass
class _Item:
    """One submission on one split: where its work goes and what keys it."""

    res: Resolved
    spec: object  # SplitSpec
    split: Split
    key: str
    final: Path
    job: dict
    score_key: str | None = None
    _hash: str | None = field(default=None, repr=False)

    def predictions_hash(self, fresh: bool = False) -> str:
        """The content hash of the final predictions folder: computed once, again with ``fresh`` (it changed)."""
        if fresh or self._hash is None:
            self._hash = _predictions_hash(self.final)
        return self._hash

    @property
    def label(self) -> str:
        return f"{self.res.submission.label} on {self.spec.name}"


def _resolve_all(bench: Benchmark, runtime: str, client_factory, outcome: Outcome, log) -> list[Resolved]:
    resolved = []
    for sub in bench.submissions:
        try:
            resolved.append(resolve_submission(sub, bench.task, runtime, client_factory))
        except (RunError, ValueError) as exc:
            outcome.errors.append(str(exc))  # the caller reports it (once)
    kinds = {r.runtime for r in resolved}
    if "docker" in kinds:
        log("runtime: docker (sandboxed) for images and archives"
            + ("; local (not sandboxed) for solutions" if "local" in kinds else ""))
    elif kinds:
        log("runtime: local (in-process, not sandboxed)")
    return resolved


def _plan(bench: Benchmark, resolved: list[Resolved], workspace: Path) -> list[_Item]:
    splits = {s.name: Split(s.path) for s in bench.splits}
    for spec in bench.splits:
        if splits[spec.name].task != bench.task:
            raise RunError(f"split {spec.name}: {spec.path} is an {splits[spec.name].task} split; the benchmark is "
                           f"{bench.task}")
    items = []
    for res in resolved:
        sub = res.submission
        for spec in bench.splits:
            split = splits[spec.name]
            key = run_key_of(bench, res, split)
            job = {"run_key": key, "workspace": str(workspace), "split": str(split.root), "runtime": res.runtime,
                   "seed": bench.seed, "limits": bench.limits.model_dump(), "contract": sub.contract,
                   "image": res.image_digest, "solution": sub.solution,
                   "checkpoint": str(sub.checkpoint) if sub.checkpoint else None,
                   "train": str(sub.train) if sub.train else None}
            items.append(_Item(res, spec, split, key, workspace / PREDICTIONS / key, job))
    return items


def _repair_log_paths(item: _Item, record: dict) -> bool:
    """Point log paths that a run.json written before logs were relocated still has into its partial folder
    (``<run_key>.partial-<id>/logs/...``) at the same file in the final folder, where it exists; rewrites run.json
    and says whether anything changed."""
    from vsbench.harness.logs import relocate_logs

    prefix = f"{item.key}.partial-"
    changed = []

    def mapping(path: str) -> str | None:
        parts = Path(path).parts
        for i, part in enumerate(parts):
            if part.startswith(prefix):
                new = item.final.joinpath(*parts[i + 1:])
                if new.is_file():
                    changed.append(path)
                    return str(new)
        return None

    relocate_logs(record, mapping)
    if changed:
        _write_json(item.final / RUN_RECORD, record)
    return bool(changed)


def _unfinished_row(bench: Benchmark, item: _Item, hw: dict, status: str) -> dict:
    """The run row of ``item`` before it has a run.json: what it is and where, with ``status``."""
    res = item.res
    return {"run_key": item.key, "benchmark": bench.name, "submission": res.submission.name,
            "submission_version": res.submission.version, "submission_kind": res.submission.kind,
            "split_name": item.spec.name, "split_path": str(item.split.root), "split_hash": item.split.split_hash,
            "runtime": res.runtime, "status": status, "vsbench_version": __version__, "hardware": hw,
            "seed": bench.seed, "image_digest": res.image_digest, "checkpoint_hash": res.checkpoint_hash}


def _store_failed(bench: Benchmark, item: _Item, store, hw: dict, reason: str) -> None:
    """Store ``item``'s run as failed, every case with ``reason`` (no predictions, no logs kept)."""
    from vsbench.harness.contract import case_ids

    cases = item.job.get("cases") or case_ids(item.split)
    store.upsert_run({**_unfinished_row(bench, item, hw, "failed"), "finished_at": _utc(time.time())},
                     cases=[{"case": c, "status": "failed", "reason": reason} for c in cases])


def _resources(bench: Benchmark) -> dict[str, float] | None:
    """Dask resources of an inference run: ``{"GPU": 1}`` when the benchmark gives containers GPUs."""
    return {"GPU": 1} if bench.limits.gpus != 0 else None


def _infer(bench: Benchmark, items: list[_Item], store, dask, retry_failed: bool, hw: dict, outcome: Outcome,
           progress: bool) -> None:
    """Submit the inference runs that are missing (or have failed cases to retry); store each as it completes.
    A finished run found on disk but not (or not fully) in the store is stored without running again."""
    from distributed import as_completed
    from tqdm import tqdm

    pending = {}
    for item in items:
        if (item.final / RUN_RECORD).is_file():
            record = json.loads((item.final / RUN_RECORD).read_text())
            repaired = _repair_log_paths(item, record)
            stored = store.get_run(item.key)
            if repaired or stored is None or stored.get("predictions_hash") != item.predictions_hash() \
                    or len(stored["cases"]) != len(record["cases"]):  # an older vsbench killed mid-store
                store.upsert_run(_run_row(bench, item, record, {}, hw), cases=_case_rows(record))
            failed = [c["case"] for c in record["cases"] if c["status"] != "succeeded"]
            if retry_failed and failed:
                pending[dask.submit(inference_job, {**item.job, "cases": failed}, pure=False,
                                    resources=_resources(bench))] = (item, True)
            else:
                outcome.reused_runs += 1
            continue
        store.upsert_run(_unfinished_row(bench, item, hw, "running"))
        pending[dask.submit(inference_job, item.job, pure=False, resources=_resources(bench))] = (item, False)

    with tqdm(total=len(pending), desc=f"{bench.name}: inference", unit="run", disable=not progress) as bar:
        for future in as_completed(list(pending)) if pending else ():  # no cluster is started for no work
            item, retry = pending[future]
            bar.set_postfix_str(item.label, refresh=False)
            try:
                result = future.result()
            except Exception as exc:  # the job itself died (a lost worker, ...): reported, the others go on
                from vsbench.harness.contract import one_line

                if retry:  # the run stays as it was
                    outcome.errors.append(f"{item.label}: retrying the failed cases failed: {one_line(exc)}")
                else:  # stored failed (final), with its reason; the next run tries again
                    _store_failed(bench, item, store, hw, f"the run could not finish: {one_line(exc)}")
                bar.update(1)
                continue
            partial = Path(result["partial"])
            if retry:
                record = _merge_retry(item.final, partial, result["record"])
            else:
                _finalize(partial, item.final)
                record = json.loads((item.final / RUN_RECORD).read_text())
            item.predictions_hash(fresh=True)
            store.upsert_run(_run_row(bench, item, record, result, hw), cases=_case_rows(record))
            outcome.inferred += 1
            bar.update(1)


def _score(bench: Benchmark, items: list[_Item], store, dask, workspace: Path, outcome: Outcome,
           progress: bool) -> None:
    """Score every complete run under this benchmark's evaluator configuration unless stored already; a
    metrics.json written before a crash is stored without scoring again."""
    from distributed import as_completed
    from tqdm import tqdm

    evaluator = _evaluator(bench)
    pending = {}
    for item in items:
        if not (item.final / RUN_RECORD).is_file():
            continue
        summary = json.loads((item.final / RUN_RECORD).read_text()).get("summary") or {}
        if not summary.get("succeeded"):  # a failed run: no prediction to score (the run says why)
            continue
        item.score_key = sha256_json({"run": item.key, "predictions": item.predictions_hash(), **evaluator})
        metrics_path = workspace / SCORES / item.score_key / "metrics.json"
        if store.get_score(item.score_key) is not None:
            outcome.reused_scores += 1
        elif metrics_path.is_file():
            _store_score(store, bench, evaluator, item, metrics_path)
            outcome.reused_scores += 1
        else:
            job = {"workspace": str(workspace), "score_key": item.score_key, "split": str(item.split.root),
                   "predictions": str(item.final), "cellprofiler": bench.cellprofiler, "metrics": bench.metric_set}
            pending[dask.submit(score_job, job, pure=False)] = item
    with tqdm(total=len(pending), desc=f"{bench.name}: scoring", unit="score", disable=not progress) as bar:
        for future in as_completed(list(pending)) if pending else ():  # no cluster is started for no work
            item = pending[future]
            try:
                result = future.result()
                if result.get("error"):
                    raise RuntimeError(result["error"])
            except Exception as exc:
                from vsbench.harness.contract import one_line

                outcome.errors.append(f"scoring {item.label}: {one_line(exc)}")
                item.score_key = None
            else:
                _store_score(store, bench, evaluator, item, Path(result["metrics_path"]))
                outcome.scored += 1
            bar.update(1)


def run_benchmark(bench: Benchmark, store, *, runtime: str = "auto", retry_failed: bool = False,
                  scheduler: str | None = None, workers: int = 1, progress: bool = True,
                  client_factory: Callable[[], object] | None = None, log: Callable[[str], None] = print) -> Outcome:
    """Run ``bench``: infer what is missing, score what is missing, store both (see the module docstring)."""
    from vsbench.harness.docker_runtime import docker_client
    from vsbench.harness.scale import dask_client

    check_benchmark(bench)  # every problem of the file (BenchmarkError) before anything runs or is stored
    workspace = Path(bench.workspace)
    (workspace / PREDICTIONS).mkdir(parents=True, exist_ok=True)
    (workspace / SCORES).mkdir(parents=True, exist_ok=True)
    outcome = Outcome()
    resolved = _resolve_all(bench, runtime, client_factory or _cached(docker_client), outcome, log)
    items = _plan(bench, resolved, workspace)
    hw = hardware()
    # GPU inference runs carry a GPU resource: a cluster places them on workers started with --resources GPU=1;
    # a local cluster advertises one per worker so that they run here
    local_resources = _resources(bench) if scheduler is None else None
    dask = _LazyClient(lambda: dask_client(scheduler, workers=workers, resources=local_resources))
    if scheduler:
        dask.start()  # an address that does not answer is an error even when there is nothing to do
    try:
        _infer(bench, items, store, dask, retry_failed, hw, outcome, progress)
        _score(bench, items, store, dask, workspace, outcome, progress)
    except BaseException as exc:  # interrupted or broken: no run of this command is left 'running'
        from vsbench.harness.contract import one_line

        try:
            for item in items:
                if (store.get_run(item.key) or {}).get("status") == "running":
                    _store_failed(bench, item, store, hw, f"interrupted: {one_line(exc)}")
        except Exception:  # the store itself may be what broke: the original exception is what matters
            pass
        raise
    finally:
        dask.close()
    for item in items:
        run = store.get_run(item.key) or {}
        outcome.rows.append({"submission": item.res.submission.name, "version": item.res.submission.version,
                             "split": item.spec.name, "run_key": item.key, "runtime": item.res.runtime,
                             "n_cases": run.get("n_cases"), "n_succeeded": run.get("n_succeeded"),
                             "score_key": item.score_key})
        if run and (run.get("status") != "complete" or run.get("n_failed")):
            outcome.failures.append(_failure(item, run))
    return outcome


class _LazyClient:
    """A Dask client made on the first ``submit`` (a run whose work is all stored starts no local cluster)."""

    def __init__(self, make: Callable[[], object]):
        self._make, self._client = make, None

    def start(self):
        if self._client is None:
            self._client = self._make()
        return self._client

    def submit(self, *args, **kwargs):
        return self.start().submit(*args, **kwargs)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _failure(item: _Item, run: dict) -> dict:
    """A run with cases that did not succeed, for the run's summary: who, why (escaped), where the logs are."""
    from vsbench.harness.logs import escape_control, run_reason

    cases = run.get("cases", [])
    n_bad, n = sum(c["status"] != "succeeded" for c in cases), len(cases)
    reason = escape_control(run_reason(cases) or "no case")
    logs = next((c.get("stderr") or c.get("stdout") for c in cases
                 if c["status"] != "succeeded" and (c.get("stderr") or c.get("stdout"))), None)
    if logs is None and run.get("logs_path") and Path(run["logs_path"]).is_dir():
        logs = run["logs_path"]
    what = f"failed, no case succeeded ({n} cases)" if run.get("status") != "complete" else \
        f"{n_bad} of {n} cases did not succeed"
    where = f"logs: {logs}" if logs else "no logs kept"
    return {"submission": item.res.submission.name, "version": item.res.submission.version,
            "split": item.spec.name, "run_key": item.key, "status": run.get("status"), "n_cases": n,
            "n_failed": n_bad, "reason": reason, "logs": logs,
            "message": f"{item.label}: {what}: {reason}; {where}"}


def _cached(factory):
    made = []

    def get():
        if not made:
            made.append(factory())
        return made[0]
    return get


def _evaluator(bench: Benchmark) -> dict:
    if bench.task == "lmc":
        from vsbench.harness.evaluate import EVALUATOR
    else:
        from vsbench.harness.evaluate_adipocyte import EVALUATOR
    return {"evaluator": EVALUATOR, "evaluator_version": __version__, "metrics": sorted(bench.metric_set),
            "cellprofiler": bench.cellprofiler}


def _store_score(store, bench: Benchmark, evaluator: dict, item: _Item, metrics_path: Path) -> None:
    """Store the score of ``metrics_path``: its headline, provenance, and the values of the benchmark's metrics."""
    from vsbench.harness.store import score_from_metrics

    metrics = json.loads(metrics_path.read_text())
    score = score_from_metrics(metrics, score_key=item.score_key, run_key=item.key, metrics_path=metrics_path)
    wanted = set(bench.metric_set)
    score["values"] = [v for v in score["values"] if v["metric"] in wanted]
    score["metrics"] = bench.metric_set
    score["evaluator_version"] = evaluator["evaluator_version"]
    store.upsert_score(score)
