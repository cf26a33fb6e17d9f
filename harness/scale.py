"""Scale-out: the scoring (and, through :func:`run_tasks`, any per-item work such as container runs)
executed as Dask tasks, on this machine or on a cluster.

- :func:`dask_client`: a local cluster of worker processes, or a client of an existing scheduler
  (``tcp://host:8786``: SLURM via dask-jobqueue, Kubernetes via dask-kubernetes, ``dask scheduler``
  plus ``dask worker`` by hand; see ``docs/scale-out.md``).
- :func:`evaluate_lmc_dask`: the LMC scoring in chunks of cases (:func:`vsbench.harness.evaluate.score_lmc_cases`)
  and the hashing of the prediction files as tasks, assembled here by the same code as
  :func:`vsbench.harness.evaluate.evaluate_lmc`: the metrics.json is identical apart from ``created_utc``.
- :func:`evaluate_adipocyte_dask`: the Adipocyte scoring, one task per image set (the per-set work of
  :func:`vsbench.harness.evaluate_adipocyte.evaluate_adipocyte`, which assembles as usual).
- :func:`run_tasks`: one task per item, with Dask resources (``{"GPU": 1}`` sends a task only to workers
  started with ``--resources GPU=1``), results in item order.

Workers read the split, the predictions and the feature cache by path: on a cluster these must be on a
filesystem every worker mounts at the same path (paths are made absolute before they are sent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from vsbench.harness.evaluate import (
    _prediction_files,
    assemble_lmc_metrics,
    check_lmc_inputs,
    combine_digests,
    file_digests,
    score_lmc_cases,
)
from vsbench.harness.split import Split

CONNECT_TIMEOUT_S = 10.0
CHUNKS_PER_THREAD = 4  # default chunking: enough tasks per worker thread to balance uneven cases
HASH_CHUNK_FILES = 32  # prediction files hashed per task


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler address given does not answer."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError("scale-out needs Dask: pip install 'dask[distributed]'") from None
    return distributed


def dask_client(scheduler: str | None = None, workers: int = 2, threads_per_worker: int = 1,
                resources: dict[str, float] | None = None, timeout: float = CONNECT_TIMEOUT_S):
    """A ``distributed.Client``.

    ``scheduler`` None: a new ``LocalCluster`` of ``workers`` worker processes with ``threads_per_worker``
    threads each (no dashboard), owned by the client (``client.close()`` stops it); every worker gets
    ``resources`` (e.g. ``{"GPU": 1}``) when given. OpenMP / MKL / OpenBLAS / numba threads in the
    workers are limited to ``threads_per_worker`` (so torch too uses that many intra-op threads), and
    Dask's ``MALLOC_TRIM_THRESHOLD_`` is left unset (see below).

    ``scheduler`` an address (``tcp://host:8786``): a client of that running cluster; raises
    :class:`SchedulerUnreachable` (one line) when it does not answer within ``timeout`` seconds.
    """
    distributed = _distributed()
    if scheduler:
        try:
            return distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(f"Dask scheduler {scheduler} did not answer within {timeout:g} s "
                                       f"({type(exc).__name__}); is it running and reachable from here?") from None
    if workers < 1 or threads_per_worker < 1:
        raise ValueError(f"dask_client: workers ({workers}) and threads_per_worker ({threads_per_worker}) must be >= 1")
    import dask

    n = str(threads_per_worker)
    environ = {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "NUMBA_NUM_THREADS": n,
               # Dask sets 65536 to hand freed memory back to the OS sooner; setting it also switches off
               # glibc's adaptive mmap threshold, so every MB-sized image buffer and file read becomes a fresh
               # mmap: measured 1.8x slower hashing and ~20% slower scoring. None: not set in the workers.
               "MALLOC_TRIM_THRESHOLD_": None}
    # pre-spawn: set before the worker process starts, so before numpy / torch read them
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}):
        # no dashboard; the scheduler's small HTTP server (health, metrics) on a free port, not 8787,
        # which another cluster on the machine may hold
        return distributed.Client(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                                  dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                  resources=resources)


def total_threads(client) -> int:
    """Worker threads in the cluster now (at least 1: an adaptive cluster may have none yet)."""
    return max(1, sum(client.nthreads().values()))


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _gather_in_order(client, futures: list, progress: bool, desc: str, unit: str,
                     return_exceptions: bool = False) -> list:
    """Results of ``futures`` in their order, a progress bar advancing as they complete. The first
    failure cancels the rest and is raised, unless ``return_exceptions`` (then it takes the result's place)."""
    distributed = _distributed()
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(futures)
    try:
        with tqdm(total=len(futures), desc=desc, unit=unit, disable=not progress) as bar:
            for fut in distributed.as_completed(futures):
                if fut.status == "error" and return_exceptions:
                    out[index[fut.key]] = fut.exception()
                else:
                    out[index[fut.key]] = fut.result()
                fut.release()
                bar.update(1)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return out


def evaluate_lmc_dask(split: Split | Path | str, predictions: Path | str, client, chunk_size: int | None = None,
                      cellprofiler: bool = False, progress: bool = True) -> dict:
    """:func:`vsbench.harness.evaluate.evaluate_lmc` on a Dask cluster: the same metrics.json.

    Cases go out in chunks of ``chunk_size`` consecutive cases (slices of a field of view stay together,
    so a chunk reads and checks each ground truth once); default: about ``CHUNKS_PER_THREAD`` chunks per
    worker thread. The predictions hash is computed by tasks too. A case that cannot be scored is an
    entry in ``errors``, as in-process; a task that fails (e.g. a worker that cannot see the split) stops
    the evaluation with that worker's exception."""
    split = split if isinstance(split, Split) else Split(split)
    predictions = Path(predictions)
    cases = check_lmc_inputs(split, predictions)
    root, preds = split.root.resolve(), predictions.resolve()  # workers may run in another directory
    if chunk_size is None:
        chunk_size = max(1, math.ceil(len(cases) / (CHUNKS_PER_THREAD * total_threads(client))))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
    chunks = _chunks([c.name for c in cases], chunk_size)
    hash_chunks = _chunks(_prediction_files(preds), HASH_CHUNK_FILES)
    n = len(chunks)
    futures = client.map(score_lmc_cases, [root] * n, [preds] * n, chunks, cellprofiler=cellprofiler, pure=False)
    futures += client.map(file_digests, [preds] * len(hash_chunks), hash_chunks, pure=False)
    parts = _gather_in_order(client, futures, progress, "evaluate (dask)", "chunk")
    done = [x for part in parts[:n] for x in part]
    digest = combine_digests([line for part in parts[n:] for line in part])
    return assemble_lmc_metrics(split, predictions, done, cellprofiler, predictions_hash=digest)


def evaluate_adipocyte_dask(pairs: list[tuple[Split, Path]], client, progress: bool = True,
                            cache_dir: Path | None = None, generic: bool = True) -> dict:
    """:func:`vsbench.harness.evaluate_adipocyte.evaluate_adipocyte` with one Dask task per image set
    (the CellProfiler pipeline on ground truth and prediction); the assembly runs here. ``cache_dir``
    must be on the shared filesystem for workers to share measured ground truth. The provenance's
    ``workers`` is the cluster's worker thread count."""
    from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte

    pairs = [(Split(s.root.resolve()), Path(p).resolve()) for s, p in pairs]
    cache_dir = Path(cache_dir).resolve() if cache_dir is not None else None
    executor = client.get_executor(pure=False)
    return evaluate_adipocyte(pairs, workers=total_threads(client), progress=progress, cache_dir=cache_dir,
                              generic=generic, executor=executor)


def _check_resources(client, resources: dict[str, float]) -> None:
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:
        return  # an adaptive cluster that has not started its workers yet: the tasks wait for them
    if not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers.values()):
        spec = ",".join(f"{k}={v:g}" for k, v in resources.items())
        raise ValueError(f"no worker of the Dask cluster offers {spec}: start GPU workers with "
                         f"'dask worker <scheduler> --resources {spec}' (tasks would wait forever)")


def run_tasks(client, fn: Callable, items: Iterable, resources: dict[str, float] | None = None,
              fn_kwargs: dict | None = None, retries: int = 0, progress: bool = True, desc: str = "tasks",
              return_exceptions: bool = False, check_resources: bool = True) -> list:
    """``[fn(item, **fn_kwargs) for item in items]`` as Dask tasks (one per item), in item order.

    ``resources``: what each task holds while it runs, e.g. ``{"GPU": 1}`` for a container run on a GPU:
    the scheduler places it only on workers started with ``--resources GPU=1``, one task per GPU at a
    time. Leave it None for CPU work (a local cluster has no GPU resource). ``check_resources`` fails at
    once when the cluster has workers and none offers ``resources``. ``fn`` must be importable on the
    workers (a module-level function of an installed package). ``retries``: re-runs of a task whose
    worker died or that raised. ``return_exceptions``: a failed item's exception takes its result's place
    (else the first failure cancels the rest and is raised here)."""
    items = list(items)
    if not items:
        return []
    if resources and check_resources:
        _check_resources(client, resources)
    futures = client.map(fn, items, resources=resources, retries=retries or None, pure=False, **(fn_kwargs or {}))
    return _gather_in_order(client, futures, progress, desc, "task", return_exceptions=return_exceptions)
