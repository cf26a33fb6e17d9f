"""The solution images (harness/images.py, containers/{runtime,patchgan,vqgan}/Dockerfile, `containers build`).

Tiny weights are trained here in a few steps (patchgan on a synthetic adipocyte split, the four LMC VQGAN
specialists on a hand-made LMC split); both images are built on the offline base (``base_image``) and share one
runtime image, built once per session (and found again by its tag in later sessions). Each image is checked for
the contract labels, a non-root user, read-only root-owned weights, the same id when built again, and a run as
the platform runs it (``--network none --read-only --tmpfs /tmp``, staged /input read-only) whose /output the
harness ingests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vsbench.algorithms.base import ORGANELLES
from vsbench.harness.cli import _make_on_device, main
from vsbench.harness.contract import (
    INPUT_SOCKETS,
    LABEL_BATCH,
    LABEL_CONTRACT_VERSION,
    LABEL_GPU,
    LABEL_INPUT_SOCKETS,
    LABEL_MODEL_NAME,
    LABEL_MODEL_VERSION,
    LABEL_OUTPUT_SOCKETS,
    LABEL_TASK,
    LABELS,
    OUTPUT_SOCKETS,
    SUCCEEDED,
    ingest_outputs,
    stage_inputs,
    task_of_labels,
)
from vsbench.harness.images import (
    DEFAULT_BASE_IMAGE,
    OFFLINE_BASE_IMAGE,
    BaseInfo,
    ImageBuildError,
    _context_tar,
    build_runtime_image,
    build_solution_image,
    inspect_weights,
    read_requirements,
    runtime_requirements,
)
from vsbench.harness.split import Split
from vsbench.harness.synth_adipocyte import synthesize_adipocyte

from splitfactory import make_split

pytestmark = pytest.mark.slow
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- weights ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adipocyte_split(tmp_path_factory) -> Split:  # 384 px: CellProfiler's threshold window must fit (evaluate)
    return Split(synthesize_adipocyte(tmp_path_factory.mktemp("adipocyte") / "split", "20x", sets=2, size=(384, 384),
                                      seed=0))


@pytest.fixture(scope="module")
def lmc_split(tmp_path_factory) -> Split:
    return Split(make_split(tmp_path_factory.mktemp("lmc") / "split"))  # every organelle in some field


@pytest.fixture(scope="module")
def patchgan_weights(adipocyte_split, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("patchgan") / "ckpt"
    assert main(["--quiet", "train", "patchgan", "--task", "adipocyte", "--split", str(adipocyte_split.root),
                 "--config", "tiny", "--out", str(out), "--steps", "2", "--steps-per-epoch", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def vqgan_weights(lmc_split, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vqgan") / "root"
    for organelle in ORGANELLES:
        assert main(["--quiet", "train", "vqgan", "--organelle", organelle, "--split", str(lmc_split.root),
                     "--config", "tiny", "--out", str(root / organelle), "--steps", "2",
                     "--steps-per-epoch", "1"]) == 0
    return root


# --- without an engine ---------------------------------------------------------------------------------------


def test_weights_are_recognised_and_bad_ones_refused_in_one_line(patchgan_weights, vqgan_weights, tmp_path):
    model = inspect_weights("patchgan", patchgan_weights)
    assert (model.task, model.algorithm, sorted(model.files)) == ("adipocyte", "adipocyte-patchgan-tiny",
                                                                  ["checkpoint.pt"])
    assert inspect_weights("patchgan", patchgan_weights / "checkpoint.pt").files == model.files
    model = inspect_weights("vqgan", vqgan_weights)
    assert (model.task, model.algorithm) == ("lmc", "vqgan-lmc-tiny")
    assert sorted(model.files) == sorted(f"{o}/checkpoint.pt" for o in ORGANELLES)

    partial = tmp_path / "partial"
    (partial / "nucleus").mkdir(parents=True)
    (partial / "nucleus" / "checkpoint.pt").write_bytes((vqgan_weights / "nucleus" / "checkpoint.pt").read_bytes())
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "checkpoint.pt").write_bytes(b"not a checkpoint")
    cases = [("vqgan", partial, "no mitochondria, tubulin, actin specialist"),
             ("patchgan", vqgan_weights, "no patchgan checkpoint"),
             ("patchgan", garbage, "not loadable patchgan weights"),
             ("vqgan", patchgan_weights, "no nucleus, mitochondria, tubulin, actin specialist"),
             ("patchgan", tmp_path / "absent", "no such weights"),
             ("unet", patchgan_weights, "unknown solution")]
    for solution, weights, message in cases:
        with pytest.raises(ImageBuildError, match=message) as err:
            inspect_weights(solution, weights)
        assert "\n" not in str(err.value)


def test_torch_comes_from_a_cuda_base_image_and_from_the_wheelhouse_otherwise():
    lines = read_requirements()
    assert "torch==2.13.0" in lines and "numpy>=1.24,<2" in lines and "scipy>=1.10,<1.11" in lines
    offline = runtime_requirements(BaseInfo(OFFLINE_BASE_IMAGE, "sha256:0", "3.11"))
    cuda = runtime_requirements(BaseInfo(DEFAULT_BASE_IMAGE, "sha256:1", "3.11", "2.9.0+cu128", "12.8"))
    assert offline == lines and cuda == [ln for ln in lines if not ln.startswith("torch")]
    from vsbench.harness import cli_containers as cli

    assert (cli.DEFAULT_BASE_IMAGE, cli.OFFLINE_BASE_IMAGE) == (DEFAULT_BASE_IMAGE, OFFLINE_BASE_IMAGE)


def test_build_contexts_are_byte_identical_whatever_the_file_times(tmp_path):
    model = tmp_path / "model"
    (model / "a").mkdir(parents=True)
    (model / "a" / "w.pt").write_bytes(b"weights")
    first = _context_tar([("Dockerfile", b"FROM x\n", False), ("model", model, True)], tmp_path / "1.tar")
    os.utime(model / "a" / "w.pt", (0, 12345))
    os.chmod(model / "a" / "w.pt", 0o600)
    second = _context_tar([("Dockerfile", b"FROM x\n", False), ("model", model, True)], tmp_path / "2.tar")
    assert first.read_bytes() == second.read_bytes()


def test_predict_device_option(patchgan_weights, adipocyte_split):
    from vsbench.algorithms.adipocyte_base import AdipocyteCase
    from vsbench.algorithms.patchgan.predictor import PatchGANPredictor

    planes = np.random.default_rng(0).integers(100, 3000, (7, 70, 66)).astype(np.uint16)
    case = AdipocyteCase("B03_F001", planes, "20x")
    default = PatchGANPredictor(checkpoint=patchgan_weights).predict(case)
    on_cpu = _make_on_device("adipocyte-patchgan-tiny", patchgan_weights, "cpu")
    assert on_cpu.device == torch.device("cpu")
    assert all(np.array_equal(default[c], v) for c, v in on_cpu.predict(case).items())
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            _make_on_device("adipocyte-patchgan-tiny", patchgan_weights, "cuda")
    with pytest.raises(ValueError, match="CPU only"):
        _make_on_device("adipocyte-ridge", None, "cuda")


def _containers_cli(argv: list[str]) -> int:
    """``vsbench [--quiet] containers ...`` through the real CLI."""
    quiet = ["--quiet"] if argv[:1] == ["--quiet"] else []
    return main([*quiet, "containers", *argv[len(quiet):]])


def test_containers_build_help_explains_the_hermetic_build_and_the_base(capsys):
    with pytest.raises(SystemExit):
        _containers_cli(["build", "--help"])
    text = capsys.readouterr().out
    for needle in ("hermetic", "wheelhouse", "network_mode none", DEFAULT_BASE_IMAGE, OFFLINE_BASE_IMAGE,
                   "vsbench containers base", "/opt/ml/model", "image id"):
        assert needle in " ".join(text.split()), needle


# --- with the engine -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def runtime_image(docker_client, base_image) -> str:
    t0 = time.perf_counter()
    image_id = build_runtime_image(base_image, client=docker_client, progress=False)
    TIMINGS["runtime"] = time.perf_counter() - t0
    return image_id


@pytest.fixture(scope="module")
def images(runtime_image, base_image, docker_client, patchgan_weights, vqgan_weights):
    built = {}
    for solution, weights in (("patchgan", patchgan_weights), ("vqgan", vqgan_weights)):
        t0 = time.perf_counter()
        built[solution] = build_solution_image(solution, weights, base_image=base_image, client=docker_client,
                                               progress=False)
        TIMINGS[solution] = time.perf_counter() - t0
    yield built
    for image_id in built.values():  # weights trained here differ between sessions: keep no stale images
        try:
            docker_client.images.remove(image_id, force=True)
        except Exception:  # already gone, or in use by a container another test left
            pass


def _run(docker_client, image_id: str, input_dir: Path, output_dir: Path) -> tuple[int, str]:
    output_dir.mkdir()
    os.chown(output_dir, 65532, 65532)
    container = docker_client.containers.run(
        image_id, detach=True, network_mode="none", read_only=True, tmpfs={"/tmp": "rw,size=256m"},
        cap_drop=["ALL"], security_opt=["no-new-privileges"], pids_limit=256, mem_limit="2g",
        volumes={str(input_dir): {"bind": "/input", "mode": "ro"}, str(output_dir): {"bind": "/output", "mode": "rw"}})
    try:
        code = container.wait(timeout=300)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.parametrize("solution", ["patchgan", "vqgan"])
def test_image_labels_user_weights_and_a_sandboxed_run(solution, images, adipocyte_split, lmc_split, docker_client,
                                                       tmp_path):
    image = docker_client.images.get(images[solution])
    labels = image.labels
    task = "adipocyte" if solution == "patchgan" else "lmc"
    assert set(LABELS) <= set(labels)
    assert task_of_labels(labels) == (task, True)
    assert labels[LABEL_TASK] == task and labels[LABEL_CONTRACT_VERSION] == "1"
    assert labels[LABEL_INPUT_SOCKETS] == INPUT_SOCKETS[task]
    assert labels[LABEL_OUTPUT_SOCKETS] == ",".join(OUTPUT_SOCKETS[task].values())
    assert labels[LABEL_BATCH] == "true" and labels[LABEL_GPU] == "true"
    assert labels[LABEL_MODEL_NAME] == ("adipocyte-patchgan-tiny" if solution == "patchgan" else "vqgan-lmc-tiny")
    assert len(labels[LABEL_MODEL_VERSION]) == 12
    assert image.attrs["Config"]["User"] == "65532:65532"
    assert "--device" in image.attrs["Config"]["Entrypoint"][2]

    check = ("import os; files = [os.path.join(d, f) for d, _, fs in os.walk('/opt/ml/model') for f in fs]; "
             "print(len(files), all(os.stat(f).st_uid == 0 and not os.access(f, os.W_OK) for f in files), "
             "os.access('/opt/ml/model', os.W_OK), os.getuid())")
    out = docker_client.containers.run(images[solution], ["-c", check], entrypoint=["python3"], network_mode="none",
                                       read_only=True, remove=True).decode().split()
    assert out[1:] == ["True", "False", "65532"] and int(out[0]) >= 1

    split = adipocyte_split if solution == "patchgan" else lmc_split
    staged = stage_inputs(split, tmp_path / "input")
    t0 = time.perf_counter()
    code, logs = _run(docker_client, images[solution], tmp_path / "input", tmp_path / "output")
    TIMINGS[f"{solution} run ({len(staged)} cases)"] = time.perf_counter() - t0
    assert code == 0, logs[-2000:]
    results = ingest_outputs(tmp_path / "output", staged, tmp_path / "predictions", task)
    assert [r.status for r in results] == [SUCCEEDED] * len(staged), [r.reason for r in results]


@pytest.mark.docker
@pytest.mark.parametrize("solution", ["patchgan", "vqgan"])
def test_the_harness_runs_the_image_and_scores_what_the_solution_predicts_in_process(
        solution, images, adipocyte_split, lmc_split, patchgan_weights, vqgan_weights, tmp_path):
    """End to end: ``vsbench containers run`` (sandbox, batch), then ``vsbench evaluate``; the container's
    predictions are the in-process solution's (``vsbench predict --checkpoint``, same weights, CPU)."""
    import json

    import tifffile

    split, weights = (adipocyte_split, patchgan_weights) if solution == "patchgan" else (lmc_split, vqgan_weights)
    algorithm = "adipocyte-patchgan-tiny" if solution == "patchgan" else "vqgan-lmc-tiny"
    t0 = time.perf_counter()
    assert main(["--quiet", "containers", "run", images[solution], "--split", str(split.root),
                 "--predictions", str(tmp_path / "container"), "--memory", "2g", "--time-limit", "300"]) == 0
    TIMINGS[f"{solution} through 'containers run'"] = time.perf_counter() - t0
    record = json.loads((tmp_path / "container" / "run.json").read_text())
    assert record["sandboxed"] is True and record["contract"] == "vsbench" and record["batch"] is True
    assert record["summary"]["succeeded"] == len(record["cases"]) > 0
    assert main(["--quiet", "predict", "--split", str(split.root), "--algorithm", algorithm, "--checkpoint",
                 str(weights), "--device", "cpu", "--out", str(tmp_path / "in-process")]) == 0
    made = sorted(p.relative_to(tmp_path / "container") for p in (tmp_path / "container").rglob("*.tif*"))
    assert made == sorted(p.relative_to(tmp_path / "in-process") for p in (tmp_path / "in-process").rglob("*.tif*"))
    for rel in made:  # equal up to the rounding to integers of float sums taken in another order (other threads)
        a, b = (tifffile.imread(tmp_path / d / rel).astype(np.int64) for d in ("container", "in-process"))
        assert a.shape == b.shape and np.abs(a - b).max() <= 1 and np.mean(a != b) < 1e-3, rel
    metrics = tmp_path / "metrics.json"
    assert main(["--quiet", "evaluate", "--task", split.task, "--split", str(split.root), "--predictions",
                 str(tmp_path / "container"), "--out", str(metrics)]) == 0
    assert json.loads(metrics.read_text())["errors"] == []


@pytest.mark.docker
def test_building_again_gives_the_same_image_id(images, base_image, docker_client, patchgan_weights, vqgan_weights,
                                                capsys):
    t0 = time.perf_counter()
    again = build_solution_image("patchgan", patchgan_weights / "checkpoint.pt", base_image=base_image,
                                 client=docker_client, progress=False)
    TIMINGS["patchgan cached rebuild"] = time.perf_counter() - t0
    assert again == images["patchgan"]
    capsys.readouterr()
    t0 = time.perf_counter()
    assert _containers_cli(["--quiet", "build", "vqgan", "--weights", str(vqgan_weights),
                            "--base-image", base_image]) == 0
    TIMINGS["vqgan cached rebuild (CLI)"] = time.perf_counter() - t0
    assert capsys.readouterr().out.strip().splitlines()[-1] == images["vqgan"]


@pytest.mark.docker
def test_a_failing_build_is_one_line(base_image, docker_client, tmp_path):
    from vsbench.harness.images import build_image

    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo about to fail && false\n")
    with pytest.raises(ImageBuildError, match="returned a non-zero code") as err:
        build_image(tmp_path, "vsbench-test/failing:1", client=docker_client, progress=False)
    assert "\n" not in str(err.value) and "about to fail" in str(err.value)
