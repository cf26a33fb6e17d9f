"""Runtime test algorithm (stdlib only). MODE=copy: each output is a copy of its input (valid: same plane);
first-then-hang: write the first case, then hang; fail: write nothing, exit 3 with a traceback on stderr."""
import os
import shutil
import sys
import time

IN = "/input/images/organelles-transmitted-light-ome-tiff"
OUT = "/output/images/{}-fluorescence-ome-tiff"
mode = os.environ.get("MODE", "copy")
print(f"UID={os.getuid()} GID={os.getgid()} EUID={os.geteuid()}", flush=True)
if mode == "fail":
    print("Traceback (most recent call last):\nValueError: the model exploded", file=sys.stderr)
    sys.exit(3)
for i, name in enumerate(sorted(os.listdir(IN))):
    if mode == "first-then-hang" and i == 1:
        time.sleep(3600)
    for organelle in ("nucleus", "mitochondria", "tubulin", "actin"):
        os.makedirs(OUT.format(organelle), exist_ok=True)
        shutil.copyfile(os.path.join(IN, name), os.path.join(OUT.format(organelle), name))
