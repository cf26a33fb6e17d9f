"""Benchmark files: validated on load, one-line errors naming the field, paths resolved against the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsbench.harness.benchmark import BenchmarkError, load_benchmark, parse_benchmark

GOOD = """\
name: lmc-demo
task: lmc
splits:
  - {name: test, path: data/test}
submissions:
  - {name: img, version: 3, image: "my-model:3"}
  - {name: arc, version: "1", archive: up/a.tar.gz, digest: "sha256:%s"}
  - {name: fb, version: "1", solution: filterbank, train: data/train}
metrics: [PCC, SSIM]
limits: {time_s: 60, memory: 512m, gpus: 1}
""" % ("a" * 64)


def test_a_good_file_loads_with_paths_resolved(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(GOOD)
    bench = load_benchmark(path)
    assert bench.name == "lmc-demo" and bench.task == "lmc" and bench.metric_set == ["PCC", "SSIM"]
    assert bench.splits[0].path == tmp_path / "data" / "test"
    assert bench.workspace == tmp_path / ".vsbench"
    kinds = [s.kind for s in bench.submissions]
    assert kinds == ["image", "archive", "solution"] and bench.submissions[0].version == "3"
    assert bench.submissions[1].archive == tmp_path / "up" / "a.tar.gz"
    assert bench.submissions[2].train == tmp_path / "data" / "train"
    assert bench.limits.memory == "512m" and bench.limits.gpus == 1 and bench.limits.cpus == 2.0
    defaults = parse_benchmark({"name": "x", "task": "adipocyte", "splits": [{"name": "s", "path": "p"}],
                                "submissions": [{"name": "r", "version": "1", "solution": "adipocyte-ridge"}]})
    assert defaults.metric_set == ["pixel_mae", "feature_mae", "mae"] and defaults.ranking.policy == "mean-rank"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("task"), "bench.yaml: task: field required"),
    (lambda d: d.update(task="cells"), "bench.yaml: task: Input should be 'lmc' or 'adipocyte'"),
    (lambda d: d["submissions"][1].pop("version"), "bench.yaml: submissions[1].version: field required"),
    (lambda d: d["submissions"][0].update(solution="x"),
     "bench.yaml: submissions[0]: give exactly one of image, archive, solution (got image, solution)"),
    (lambda d: d["submissions"][1].update(digest="md5:1"), "bench.yaml: submissions[1].digest: String should match"),
    (lambda d: d.update(metrics=["PCC", "pixel_mae"]), "bench.yaml: metrics: 'pixel_mae' is not a lmc metric"),
    (lambda d: d["limits"].update(memory="lots"), "bench.yaml: limits.memory: 'lots' is not a size"),
    (lambda d: d["limits"].update(time_s=0), "bench.yaml: limits.time_s: Input should be greater than 0"),
    (lambda d: d.update(colour="red"), "bench.yaml: colour: unknown field"),
    (lambda d: d["submissions"].append(dict(d["submissions"][0])), "bench.yaml: submissions: duplicate name 'img'"),
    (lambda d: d.update(name="has space"), "bench.yaml: name: 'has space' is not a name"),
    (lambda d: d.update(splits=[]), "bench.yaml: splits: List should have at least 1 item"),
])
def test_bad_files_are_one_line_naming_the_field(tmp_path, change, message):
    import yaml

    data = yaml.safe_load(GOOD)
    change(data)
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(tmp_path / "bench.yaml")), text
    assert message.split("bench.yaml", 1)[1] in text, text


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(BenchmarkError, match="cannot read"):
        load_benchmark(tmp_path / "absent.yaml")
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    with pytest.raises(BenchmarkError, match=r"b.yaml: line \d+ not valid YAML"):
        load_benchmark(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("- a list\n")
    with pytest.raises(BenchmarkError, match="a benchmark file is a mapping"):
        load_benchmark(Path(tmp_path / "c.yaml"))
