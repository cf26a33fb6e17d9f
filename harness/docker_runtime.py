"""The sandboxed runtime: run a container image (trusted or not) on a split through the predict contract.

:func:`run_image` stages the split's inputs (never its ground truth, :func:`~vsbench.harness.contract.stage_inputs`),
runs the image with the Docker engine and ingests what it wrote (:func:`~vsbench.harness.contract.ingest_outputs`)
into the prediction layout ``vsbench evaluate`` reads, with ``run.json`` saying what happened to every case.

Two ways to run an image (``containers/CONTRACT.md``):

- **vsbench** (labelled ``org.vsbench.*`` images, ``batch``): every case of the split in one container run;
- **grand-challenge** (an image without vsbench labels, as their template builds it): one container run per
  case, each with a fresh ``/input`` holding that case only and a fresh ``/output``.

Every container run is contained the same way (:func:`container_options`): no network; a read-only root
filesystem; ``/input`` a read-only bind of the staged copies; ``/output`` a fresh empty folder; ``/tmp`` a
fresh tmpfs; a non-root user (an image whose user is root or resolves to uid 0 runs as 65532); all
capabilities dropped; no-new-privileges; limits on pids, memory (no swap), CPUs, open files and file size;
a wall-clock limit after which it is killed; an output-size limit watched while it runs (killed when
crossed); bounded logs; GPUs only when asked (``DeviceRequest``). Statuses follow from what the engine says:
``timed_out`` (killed at the time limit), ``oom`` (the kernel's OOM killer fired), ``failed`` (nonzero exit,
with the last line of stderr), ``invalid_output`` (the ingestion's reason, or the output limit), else
``succeeded``. One bad case never stops the others.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from vsbench.harness import __version__
from vsbench.harness.contract import (
    CONTRACT_VERSION,
    FAILED,
    IMAGES,
    INVALID_OUTPUT,
    LABEL_GPU,
    OOM,
    OUTPUT_SOCKETS,
    STATUSES,
    SUCCEEDED,
    TIMED_OUT,
    CaseResult,
    ContractError,
    StagedCase,
    case_ids,
    default_max_output_bytes,
    ingest_outputs,
    one_line,
    prepare_prediction_folder,
    stage_inputs,
    task_of_labels,
)
from vsbench.harness.predict import LOGS_DIR, RUN_RECORD, _write_json
from vsbench.harness.split import Split

VSBENCH, GRAND_CHALLENGE, AUTO = "vsbench", "grand-challenge", "auto"
CONTRACTS = (AUTO, VSBENCH, GRAND_CHALLENGE)
FALLBACK_USER = "65532:65532"  # the conventional "nonroot" uid/gid of distroless images
POLL_S = 0.25  # how often a running container's clock and output size are checked
RUN_LABEL = "org.vsbench.run"  # set on every container the harness creates (find leftovers: docker ps -af label=...)


class RuntimeUnavailable(RuntimeError):
    """No Docker engine answers (one-line message)."""


class ImageError(ValueError):
    """The image cannot be run: absent, or labelled for another task (one-line message)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one container run (a batch run or one grand-challenge case).

    ``time_s``: wall clock, then killed (``timed_out``). ``memory_bytes``: memory, and memory+swap (no swap),
    exceeding it is ``oom``. ``cpus``: CPU share. ``pids``: processes and threads. ``output_bytes``: disk used
    under ``/output`` (default: every expected file at its largest, see
    :func:`~vsbench.harness.contract.default_max_output_bytes`), crossing it kills the run (``invalid_output``);
    it (or ``tmp_bytes`` if larger) is also the largest file any process may write (``RLIMIT_FSIZE``), which
    stops one growing file between two checks of the folder. ``tmp_bytes``: the ``/tmp`` tmpfs and
    ``shm_bytes`` ``/dev/shm`` (both count against ``memory_bytes``). ``log_bytes``: stdout and stderr kept by
    the engine (each). ``gpus``: 0 none, -1 all, N that many.
    """

    time_s: float = 1200.0  # grand-challenge's default algorithm time limit is 20 min (platforms.md §1.3)
    memory_bytes: int = 8 << 30
    cpus: float = 2.0
    pids: int = 256
    output_bytes: int | None = None
    tmp_bytes: int = 1 << 30
    shm_bytes: int = 256 << 20
    log_bytes: int = 8 << 20
    gpus: int = 0

    def __post_init__(self) -> None:
        for name in ("time_s", "memory_bytes", "cpus", "pids", "tmp_bytes", "shm_bytes", "log_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"limit {name} must be positive, not {getattr(self, name)!r}")
        if self.output_bytes is not None and self.output_bytes <= 0:
            raise ValueError(f"limit output_bytes must be positive, not {self.output_bytes!r}")
        if self.gpus < -1:
            raise ValueError(f"limit gpus must be -1 (all), 0 or a count, not {self.gpus}")


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_bytes(text: str | int) -> int:
    """``"512m"``, ``"4g"``, ``"2GiB"``, ``"1048576"`` -> bytes (binary units, as Docker reads ``--memory``)."""
    if isinstance(text, int):
        return text
    s = str(text).strip().lower().replace(" ", "")
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(number):]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a size (e.g. 512m, 4g)") from None
    if unit not in _UNITS or value <= 0:
        raise ValueError(f"{text!r} is not a size (e.g. 512m, 4g)")
    return int(value * _UNITS[unit])


def docker_client(timeout: int = 120):
    """A Docker SDK client whose engine answers, else :class:`RuntimeUnavailable`."""
    try:
        import docker
    except ImportError:  # pragma: no cover - a dependency of vsbench
        raise RuntimeUnavailable("the Docker SDK for Python is not installed (pip install docker)") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise RuntimeUnavailable(f"no Docker engine answers at {host} ({one_line(exc)[:160]}); start dockerd, or "
                                 "use --runtime local (not sandboxed)") from None
    return client


@dataclass(frozen=True)
class ImageInfo:
    """What the engine knows of an image: the reference asked for, its id (``sha256:`` of its config, the
    digest every result records), repo digests, labels, and its configured user."""

    ref: str
    id: str
    repo_digests: tuple[str, ...]
    labels: dict[str, str] = field(hash=False)
    user: str


def inspect_image(client, ref: str) -> ImageInfo:
    """The engine's record of ``ref`` (:class:`ImageError` if it has none)."""
    import docker

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise ImageError(f"image {ref!r} is not in the engine (docker load -i FILE.tar, or build it)") from None
    config = image.attrs.get("Config") or {}
    return ImageInfo(ref, image.id, tuple(image.attrs.get("RepoDigests") or ()), dict(config.get("Labels") or {}),
                     config.get("User") or "")


def _passwd_uid(client, image_id: str, name: str) -> tuple[int, int] | None:
    """(uid, gid) of user ``name`` in the image's /etc/passwd, read from a created (never started) container."""
    import io
    import tarfile

    container = client.containers.create(image_id, entrypoint=["/nonexistent"], network_mode="none",
                                         labels={RUN_LABEL: "inspect"})
    try:
        stream, _ = container.get_archive("/etc/passwd")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            text = tar.extractfile(member).read().decode("utf-8", "replace") if member and member.isfile() else ""
    except Exception:
        return None
    finally:
        container.remove(force=True)
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[0] == name and parts[2].isdigit() and parts[3].isdigit():
            return int(parts[2]), int(parts[3])
    return None


def run_user(client, info: ImageInfo) -> str:
    """The ``uid:gid`` the image runs as: its own user when that is not root, else :data:`FALLBACK_USER`.

    A user given by name is resolved in the image's ``/etc/passwd`` (a name that maps to uid 0, or that cannot
    be resolved, runs as the fallback), so a name can never smuggle in root."""
    user, _, group = info.user.partition(":")
    if user in ("", "root", "0"):
        return FALLBACK_USER
    if user.isdigit():
        uid, gid = int(user), int(group) if group.isdigit() else int(user)
    else:
        resolved = _passwd_uid(client, info.id, user)
        if resolved is None:
            return FALLBACK_USER
        uid, gid = resolved
        if group.isdigit():
            gid = int(group)
    return FALLBACK_USER if uid == 0 else f"{uid}:{gid if gid != 0 else uid}"


def container_options(image_id: str, input_dir: Path, output_dir: Path, limits: Limits, user: str,
                      output_bytes: int, run_id: str) -> dict:
    """The keyword arguments of ``client.containers.create`` for one contained run (see the module docstring)."""
    from docker.types import DeviceRequest, LogConfig, Ulimit

    options = {
        "image": image_id,
        "user": user,
        "network_mode": "none",
        "read_only": True,
        "volumes": {str(input_dir): {"bind": "/input", "mode": "ro"},
                    str(output_dir): {"bind": "/output", "mode": "rw"}},
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"},
        "shm_size": limits.shm_bytes,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # equal: no swap
        "nano_cpus": int(limits.cpus * 1e9),
        # the largest file any process may write: /output's cap, or /tmp's size if larger (models unpack there)
        "ulimits": [Ulimit(name="fsize", soft=max(output_bytes, limits.tmp_bytes),
                           hard=max(output_bytes, limits.tmp_bytes)),
                    Ulimit(name="nofile", soft=4096, hard=4096), Ulimit(name="core", soft=0, hard=0)],
        "log_config": LogConfig(type="json-file", config={"max-size": str(limits.log_bytes), "max-file": "1"}),
        "init": True,  # an init as pid 1 reaps what a fork bomb leaves and passes on the kill
        "ipc_mode": "private",
        "hostname": "vsbench",
        "environment": {"HOME": "/tmp", "TMPDIR": "/tmp"},
        "labels": {RUN_LABEL: run_id},
        "detach": True,
        "stdin_open": False,
        "tty": False,
    }
    if limits.gpus:
        options["device_requests"] = [DeviceRequest(count=limits.gpus, capabilities=[["gpu"]])]
    return options


def _disk_usage(root: Path, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``root``, never following links; stops counting at ``max_entries``."""
    total = entries = 0
    stack = [str(root)]
    while stack and entries <= max_entries:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += max(st.st_blocks * 512, st.st_size if entry.is_file(follow_symlinks=False) else 0)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total, entries


def _written_cases(output_dir: Path, task: str, staged: Sequence[StagedCase]) -> int:
    """How many staged cases have every output file present (for the progress bar of a batch run)."""
    names = {c.file_name for c in staged}
    counts: dict[str, int] = {}
    for socket in OUTPUT_SOCKETS[task].values():
        try:
            with os.scandir(output_dir / IMAGES / socket) as it:
                for entry in it:
                    if entry.name in names:
                        counts[entry.name] = counts.get(entry.name, 0) + 1
        except OSError:
            pass
    return sum(n == len(OUTPUT_SOCKETS[task]) for n in counts.values())


@dataclass
class ContainerRun:
    """One container run: the cases it was given, how it ended, where its logs are."""

    cases: list[str]
    status: str
    reason: str | None
    exit_code: int | None
    durations: dict[str, float]
    stdout: str
    stderr: str
    oom_killed: bool = False


def _pids_limit_hits(container_id: str) -> int | None:
    """How often the container's processes were refused a fork at the pids limit, read from its cgroup's
    ``pids.events`` when this host is the engine's (cgroup v1 or v2, cgroupfs or systemd paths); else None."""
    for path in (f"/sys/fs/cgroup/pids/docker/{container_id}/pids.events",
                 f"/sys/fs/cgroup/pids/system.slice/docker-{container_id}.scope/pids.events",
                 f"/sys/fs/cgroup/docker/{container_id}/pids.events",
                 f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/pids.events"):
        try:
            with open(path) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "max" and value.strip().isdigit():
                        return int(value)
        except OSError:
            continue
    return None


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _run_container(client, info: ImageInfo, user: str, input_dir: Path, output_dir: Path, limits: Limits,
                   output_bytes: int, logs_dir: Path, log_name: str, cases: list[str], task: str,
                   staged: Sequence[StagedCase], bar: tqdm | None, run_id: str) -> ContainerRun:
    """Run the image once on a staged input folder; kill it at the time or output limit."""
    import requests

    output_dir.mkdir(parents=True)
    os.chmod(output_dir, 0o777)  # writable by the container's non-root user; the folder is fresh and private
    options = container_options(info.id, input_dir, output_dir, limits, user, output_bytes, run_id)
    max_entries = 4 * len(staged) * len(OUTPUT_SOCKETS[task]) + 64
    t0 = time.perf_counter()
    container = client.containers.create(name=f"vsbench-{run_id}-{log_name}"[:120], **options)
    killed_for: str | None = None
    try:
        container.start()
        t_start = time.perf_counter()
        deadline = t_start + limits.time_s
        done_before = 0
        pids_hits = 0
        while True:
            try:
                container.wait(timeout=POLL_S)
                break
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                pass
            pids_hits = _pids_limit_hits(container.id) or pids_hits
            used, entries = _disk_usage(output_dir, max_entries)
            if used > output_bytes or entries > max_entries:
                killed_for = (f"output over the limit of {output_bytes} bytes" if used > output_bytes
                              else f"output over {max_entries} entries") + "; the container was killed"
            elif time.perf_counter() > deadline:
                killed_for = f"killed at the time limit of {limits.time_s:g} s"
            if killed_for:
                try:
                    container.kill()
                except Exception:  # it may have exited meanwhile
                    pass
                container.wait(timeout=60)
                break
            if bar is not None and len(staged) > 1:
                done = _written_cases(output_dir, task, staged)
                if done > done_before:
                    bar.update(done - done_before)
                    done_before = done
        t_end = time.perf_counter()
        container.reload()
        state = container.attrs.get("State") or {}
        exit_code = state.get("ExitCode")
        oom = bool(state.get("OOMKilled"))
        stdout = container.logs(stdout=True, stderr=False) or b""
        stderr = container.logs(stdout=False, stderr=True) or b""
    finally:
        try:
            container.remove(force=True)
        except Exception:
            pass
        if bar is not None and len(staged) > 1:
            bar.update(max(len(staged) - bar.n, 0))
    logs_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs_dir / f"{log_name}.stdout.txt", logs_dir / f"{log_name}.stderr.txt"
    out_path.write_bytes(stdout)
    err_path.write_bytes(stderr)

    if killed_for and killed_for.startswith("output"):
        status, reason = INVALID_OUTPUT, killed_for
    elif killed_for:
        status, reason = TIMED_OUT, killed_for
    elif oom and exit_code != 0:
        status = OOM
        reason = f"out of memory: killed at the memory limit of {limits.memory_bytes >> 20} MiB (exit {exit_code})"
    elif exit_code != 0:
        tail = _last_line(stderr) or _last_line(stdout)
        status, reason = FAILED, f"exit code {exit_code}" + (f": {tail}" if tail else "")
        if pids_hits:
            reason += f" (the pids limit of {limits.pids} refused {pids_hits} fork(s))"
    else:
        status, reason = SUCCEEDED, None
    durations = {"start": round(t_start - t0, 4), "run": round(t_end - t_start, 4)}
    return ContainerRun(cases, status, reason, exit_code, durations, str(out_path), str(err_path), oom)


def _case_results(run: ContainerRun, ingested: list[CaseResult], info: ImageInfo, share: int) -> list[CaseResult]:
    """Per case: a valid output succeeds even if the run later failed (a batch run killed at case k keeps the
    cases before it); an invalid one takes the run's status when the run did not end well."""
    results = []
    for result in ingested:
        durations = {k: round(v / share, 4) for k, v in run.durations.items()} | result.durations
        status, reason = result.status, result.reason
        if status != SUCCEEDED and run.status != SUCCEEDED:
            missing = reason is not None and reason.startswith("missing ")
            status = run.status
            reason = run.reason if missing or reason is None else f"{run.reason} ({reason})"
        results.append(CaseResult(result.case, status, reason, run.exit_code, durations, run.stdout, run.stderr,
                                  image_digest=info.id))
    return results


def resolve_contract(contract: str, info: ImageInfo, task: str) -> tuple[str, bool]:
    """``(contract, batch)`` for running ``info`` on a ``task`` split (:class:`ImageError` on a mismatch)."""
    if contract not in CONTRACTS:
        raise ValueError(f"--contract {contract!r}: one of {', '.join(CONTRACTS)}")
    try:
        declared = task_of_labels(info.labels)
    except ContractError as exc:
        raise ImageError(f"image {info.ref}: {exc}") from None
    if declared is not None and declared[0] != task:
        raise ImageError(f"image {info.ref} is labelled for the {declared[0]} task; the split is {task}")
    if contract == AUTO:
        contract = GRAND_CHALLENGE if declared is None else VSBENCH
    if contract == GRAND_CHALLENGE:
        return contract, False
    return contract, True if declared is None else declared[1]


def run_image(image: str, split: Split | Path | str, predictions: Path | str, *, contract: str = AUTO,
              limits: Limits = Limits(), cases: Iterable[str] | None = None, overwrite: bool = False,
              client=None, progress: bool = False, work_dir: Path | str | None = None) -> dict:
    """Run container ``image`` on ``split`` in the sandbox; write predictions and ``predictions/run.json``.

    ``contract``: ``auto`` (images with ``org.vsbench.*`` labels run as they declare, all cases in one run when
    ``batch``; images without run as grand-challenge algorithms, one run per case), ``vsbench`` (one run for
    all cases) or ``grand-challenge`` (one run per case). ``cases``: a subset (default all). The record: the
    image (reference, id, labels), contract, batch, limits, user, task, split and its ``inputs_hash``, the
    engine version, host, ``runs`` (one per container run: exit code, status, durations, log files) and
    ``cases`` (one per case: ``case``, ``status``, ``reason``, ``exit_code``, ``durations`` — in a batch run
    ``start`` and ``run`` are the run's shares — ``stdout``, ``stderr``, ``image_digest``), and ``summary``.
    ``predictions`` must be empty or absent unless ``overwrite``. Returns the record.
    """
    split = split if isinstance(split, Split) else Split(split)
    client = client or docker_client()
    info = inspect_image(client, image)
    contract, batch = resolve_contract(contract, info, split.task)
    task = split.task
    predictions = Path(predictions)
    prepare_prediction_folder(predictions, task, overwrite)
    user = run_user(client, info)
    run_id = uuid.uuid4().hex[:12]
    logs_dir = predictions / LOGS_DIR
    record = {
        "runtime": "docker",
        "sandboxed": True,
        "image": {"ref": image, "id": info.id, "repo_digests": list(info.repo_digests), "labels": info.labels},
        "contract": contract,
        "contract_version": CONTRACT_VERSION,
        "batch": batch,
        "limits": asdict(limits),
        "user": user,
        "task": task,
        "split": str(split.root),
        "inputs_hash": split.manifest.get("inputs_hash"),
        "engine": _engine(client),
        "host": {"machine": platform.machine(), "system": platform.system(), "node": platform.node()},
        "vsbench_version": __version__,
        "run_id": run_id,
    }
    if info.labels.get(LABEL_GPU, "").lower() == "true" and not limits.gpus:
        record["note"] = "the image asks for a GPU; none was given (--gpus)"
    runs: list[ContainerRun] = []
    results: list[CaseResult] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vsbench-docker-", dir=work_dir) as tmp:
        tmp = Path(tmp)
        wanted = case_ids(split) if cases is None else list(cases)
        groups: list[list[str]] = [wanted] if batch else [[c] for c in wanted]
        bar = tqdm(total=len(wanted), desc=f"run {image}", unit="case", disable=not progress)
        try:
            for i, names in enumerate(groups):
                name = "batch" if batch else f"case-{i:05d}"
                input_dir = tmp / name / "input"
                group = stage_inputs(split, input_dir, names)
                output_bytes = limits.output_bytes or default_max_output_bytes(group, task)
                try:
                    run = _run_container(client, info, user, input_dir, tmp / name / "output", limits, output_bytes,
                                         logs_dir, name, [c.case for c in group], task, group,
                                         bar if batch else None, run_id)
                except Exception as exc:  # the engine refused this run (e.g. no GPU runtime): this run fails
                    run = ContainerRun([c.case for c in group], FAILED, f"the engine could not run the container: "
                                       f"{one_line(exc)[:200]}", None, {}, "", "")
                runs.append(run)
                ingested = ingest_outputs(tmp / name / "output", group, predictions, task, max_bytes=output_bytes,
                                          notes=notes)
                results.extend(_case_results(run, ingested, info, len(group)))
                if not batch:
                    bar.set_postfix_str(", ".join(f"{s} {n}" for s, n in _summary(results).items() if n),
                                        refresh=False)
                    bar.update(1)
        finally:
            bar.close()
    if notes:
        record["notes"] = notes
    record["runs"] = [asdict(r) for r in runs]
    record["summary"] = _summary(results)
    record["cases"] = [r.to_dict() for r in results]
    _write_json(predictions / RUN_RECORD, record)
    return record


def _summary(results: Sequence[CaseResult]) -> dict[str, int]:
    return {s: sum(r.status == s for r in results) for s in STATUSES}


def _engine(client) -> dict:
    try:
        version = client.version()
        return {"version": version.get("Version"), "api_version": version.get("ApiVersion"),
                "os": version.get("Os"), "kernel": version.get("KernelVersion")}
    except Exception:
        return {}


def summary_line(record: dict) -> str:
    """One line: how many cases ended how, e.g. ``3 cases: 2 succeeded, 1 timed_out``."""
    summary = record["summary"]
    total = sum(summary.values())
    parts = [f"{n} {s}" for s, n in summary.items() if n]
    return f"{total} case{'s' if total != 1 else ''}: " + (", ".join(parts) if parts else "none")
