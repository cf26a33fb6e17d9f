"""Acceptance: a team shares one results database, through the installed ``vsbench`` only.

Where the database is: ``--database URL``, else ``$VSBENCH_DB_URL``, else the benchmark file's ``database:``,
else WORKSPACE/results.db (an explicit ``--workspace`` counts like ``--database``). Three users in three folders
store into one PostgreSQL database at the same time (by the flag, by the environment variable, by the benchmark
file's ``database:``), and every read command (``results list|show``, ``compare``, ``leaderboard show|publish``)
sees all their runs; nothing shown to a user, the published site included, holds the database password. The
SQLite variant drives every command with ``--database sqlite:///...`` and checks the precedence, with
``$VSBENCH_DB_URL`` pointing at a server that refuses connections.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from cli_support import VSBENCH, cli_env, vsbench

SUBMISSION_NAMES = ("blurred", "inverted", "input")  # in-process solutions that learn nothing: cheap
REFUSING = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/nowhere"  # nothing listens on port 1: refused at once


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    """A tiny synthetic Light My Cells test split (one field of view, two slices)."""
    root = tmp_path_factory.mktemp("data")
    vsbench("data", "synth", "lmc", root / "lmc", "--fovs", "1", "--train-fovs", "1", "--size", "64",
            "--max-deviation", "1", "--seed", "0", cwd=root)
    return root / "lmc" / "test"


def _bench(folder: Path, split: Path, *solutions: str, database: str | None = None) -> Path:
    """A user's folder with its ``bench.yaml`` (benchmark ``team``; one in-process solution per name)."""
    folder.mkdir(parents=True)
    doc = {"name": "team", "task": "lmc", "splits": [{"name": "test", "path": str(split)}],
           "submissions": [{"name": s, "version": "1", "solution": s} for s in solutions],
           "metrics": ["PCC", "SSIM"]}
    if database is not None:
        doc["database"] = database
    (folder / "bench.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


class Transcript:
    """Runs ``vsbench`` like :func:`cli_support.vsbench` and keeps every result, to check all that was shown."""

    def __init__(self) -> None:
        self.seen: list[subprocess.CompletedProcess] = []

    def __call__(self, *args, cwd: Path, env: dict[str, str] | None = None, expect: int | None = 0):
        proc = vsbench(*args, cwd=cwd, env=env, expect=expect)
        self.seen.append(proc)
        return proc

    def start(self, *args, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        """``vsbench ARGS`` started in the background (:meth:`finish` waits for it)."""
        return subprocess.Popen([str(VSBENCH), *map(str, args)], cwd=cwd, env=cli_env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finish(self, proc: subprocess.Popen, expect: int = 0) -> subprocess.CompletedProcess:
        stdout, stderr = proc.communicate(timeout=600)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        self.seen.append(done)
        assert done.returncode == expect, (f"{' '.join(proc.args[1:])}: exit {done.returncode}, expected {expect}"
                                           f"\n--- stdout ---\n{stdout[-6000:]}\n--- stderr ---\n{stderr[-6000:]}")
        return done

    def assert_never_shown(self, secret: str) -> None:
        for proc in self.seen:
            assert secret not in proc.stdout + proc.stderr, f"{' '.join(map(str, proc.args[1:]))} showed {secret!r}"


def _site_text(site: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(site.rglob("*")) if p.is_file())


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_team_shares_one_postgresql_database(db_url, split, tmp_path):
    url = make_url(db_url)
    if not url.password:
        pytest.skip("the test PostgreSQL URL has no password: nothing to keep hidden")
    secret = f":{url.password}@"  # the password itself ("vsbench") is also the tool's name
    shown = url.render_as_string(hide_password=True)
    assert secret not in shown and secret in db_url
    alice = _bench(tmp_path / "alice", split, "blurred")
    bob = _bench(tmp_path / "bob", split, "inverted")
    carol = _bench(tmp_path / "carol", split, "input", database=db_url)
    dave = tmp_path / "dave"  # reads only
    dave.mkdir()
    cli = Transcript()

    # three users store into one database at once: by the flag, by the environment variable, by the benchmark
    # file's database:
    started = [cli.start("run", "bench.yaml", "--database", db_url, cwd=alice),
               cli.start("run", "bench.yaml", "--json", cwd=bob, env={"VSBENCH_DB_URL": db_url}),
               cli.start("run", "bench.yaml", cwd=carol)]
    by_flag, by_env, by_file = (cli.finish(proc) for proc in started)
    assert f"results in {shown}" in by_flag.stdout
    assert json.loads(by_env.stdout)["database"] == shown
    assert f"results in {shown}" in by_file.stdout
    for user in (alice, bob, carol):
        assert not (user / ".vsbench" / "results.db").exists(), f"{user.name} stored into the workspace's SQLite"

    # every read command sees all three runs, given the database by flag, by environment or by benchmark file
    listed = cli("results", "list", "--database", db_url, cwd=dave)
    for name in SUBMISSION_NAMES:
        assert f"  team  {name}@1  test  " in listed.stdout, listed.stdout
    runs = json.loads(cli("results", "list", "--json", cwd=dave, env={"VSBENCH_DB_URL": db_url}).stdout)
    keys = {r["submission"]: r["run_key"] for r in runs}
    assert sorted(keys) == sorted(SUBMISSION_NAMES) and all(r["status"] == "complete" for r in runs)
    assert not (dave / ".vsbench").exists()  # the default workspace was never opened
    shown_run = cli("results", "show", keys["inverted"][:10], "--database", db_url, cwd=dave)
    assert keys["inverted"] in shown_run.stdout and "inverted" in shown_run.stdout

    board = cli("leaderboard", "show", "bench.yaml", "--database", db_url, "--bootstrap", "20", cwd=alice)
    for name in SUBMISSION_NAMES:
        assert f" {name} " in board.stdout, board.stdout

    compared = cli("compare", keys["blurred"][:10], keys["inverted"][:10], "--database", db_url, cwd=dave,
                   expect=None)
    assert compared.returncode in (0, 1), compared.stderr
    assert "blurred@1" in compared.stdout and "inverted@1" in compared.stdout

    published = cli("leaderboard", "publish", "bench.yaml", "--out", dave / "site", "--bootstrap", "20", cwd=carol)
    assert "(3 entries" in published.stdout  # everybody's, found through carol's benchmark file
    site = _site_text(dave / "site")
    assert secret not in site and shown not in site  # a published site names no database, let alone its password
    cli.assert_never_shown(secret)


def test_every_command_takes_a_sqlite_database_url(split, tmp_path):
    db = tmp_path / "team" / "results.db"
    url = f"sqlite:///{db}"
    refusing = {"VSBENCH_DB_URL": REFUSING}  # in effect unless a flag or --workspace overrides it
    alice = _bench(tmp_path / "alice", split, "blurred", "inverted")
    bob = _bench(tmp_path / "bob", split, "blurred", database=url)
    cli = Transcript()

    ran = cli("run", "bench.yaml", "--database", url, cwd=alice, env=refusing)
    assert f"results in {url}" in ran.stdout
    assert db.is_file() and not (alice / ".vsbench" / "results.db").exists()

    listed = cli("results", "list", "--database", url, cwd=tmp_path, env=refusing)
    for name in ("blurred", "inverted"):
        assert f"  team  {name}@1  test  " in listed.stdout, listed.stdout
    keys = {line.split()[2].split("@")[0]: line.split()[0] for line in listed.stdout.splitlines()}  # key prefixes
    assert keys["blurred"] in cli("results", "show", keys["blurred"][:8], "--database", url, cwd=tmp_path,
                                  env=refusing).stdout
    compared = cli("compare", keys["blurred"][:8], keys["inverted"][:8], "--database", url, cwd=tmp_path,
                   env=refusing, expect=None)
    assert compared.returncode in (0, 1), compared.stderr
    assert "blurred@1" in compared.stdout and "inverted@1" in compared.stdout
    board = cli("leaderboard", "show", "bench.yaml", "--database", url, "--bootstrap", "0", cwd=alice, env=refusing)
    assert " blurred " in board.stdout and " inverted " in board.stdout
    cli("leaderboard", "publish", "bench.yaml", "--database", url, "--out", tmp_path / "site", "--bootstrap", "0",
        cwd=alice, env=refusing)
    site = _site_text(tmp_path / "site")
    assert url not in site and str(db) not in site and str(tmp_path) not in site  # no local path either

    # precedence: --database, else $VSBENCH_DB_URL, else the benchmark file's database:, else the workspace's;
    # an explicit --workspace beats the environment variable
    assert cli("results", "list", "--workspace", db.parent, cwd=tmp_path, env=refusing).stdout == listed.stdout
    for args, cwd in ((("results", "list"), tmp_path), (("leaderboard", "show", "bench.yaml"), bob)):
        refused = cli(*args, cwd=cwd, env=refusing, expect=2)
        assert refused.stderr.startswith("vsbench: error: ") and "127.0.0.1" in refused.stderr, refused.stderr
        assert len(refused.stderr.splitlines()) == 1
    assert " blurred " in cli("leaderboard", "show", "bench.yaml", "--bootstrap", "0", cwd=bob).stdout
    assert not (bob / ".vsbench" / "results.db").exists()
    cli.assert_never_shown(":hunter2@")
    cli.assert_never_shown("hunter2")
