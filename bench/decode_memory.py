"""What decoding a photo costs in memory: peak resident memory and time of `shrink_image`.

Three photos: an 88 MP PNG (10800×8150, RGBA, one flat colour: about 360 KB on disk, the shape
of the issue's 343 KB file), a 49 MP PNG just under the 50 MP limit, and a typical 12 MP phone
JPEG (bench.photos.typical_jpeg). Each is shrunk once, then many times at once (sixteen threads,
as a batch at its highest concurrency would; twelve for the 49 MP PNG, issue 19's twelve
uploads), each scenario in a fresh interpreter so that its peak is its own:

    .venv/bin/python -m bench.decode_memory                    # this checkout's utils/images.py
    .venv/bin/python -m bench.decode_memory --code 2eaac5b     # utils/images.py as it was at a commit
    .venv/bin/python -m bench.decode_memory --max-pixels 100000000 --concurrency 4

`--code REV` loads `utils/images.py` from git revision REV (the code before a change, with its
own defaults) instead of the working tree's. `--max-pixels` and `--concurrency` are passed to
`shrink_image` only when given and only when that version takes them; otherwise its defaults
apply (so the current code refuses the 88 MP PNG at its 50 MP default: that refusal is measured
too). Figures: peak RSS of the whole process (VmHWM), the part of it above what the process
held just before the first decode ("added"), what it still holds half a second after the last
decode ("idle"), and the wall time of the scenario. Each child runs
under an address-space cap (`--cap-gb`, default 8) so that a scenario that would need more ends
in MemoryError instead of taking the machine; such decodes are counted as failed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import json
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def flat_png(width: int, height: int, rgba: tuple[int, int, int, int] = (196, 120, 108, 255)) -> bytes:
    """An RGBA PNG of one colour, compressed without ever holding the canvas (a few hundred KB at 88 MP)."""
    row = b"\0" + bytes(rgba) * width  # filter byte "none" + pixels
    z = zlib.compressobj(9)
    block = row * 100
    idat = b"".join(z.compress(block) for _ in range(height // 100)) + z.compress(row * (height % 100)) + z.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def photos() -> dict[str, bytes]:
    """The two benchmark photos, by name."""
    from bench.photos import typical_jpeg
    return {"88 MP PNG": flat_png(10800, 8150), "49 MP PNG": flat_png(8100, 6050), "12 MP JPEG": typical_jpeg()}


# How many decodes each photo gets at once: 12 uploads of 49 MP PNGs is issue 19's case.
COPIES = {"88 MP PNG": (1, 16), "49 MP PNG": (1, 12), "12 MP JPEG": (1, 16)}


def images_module(rev: str | None) -> ModuleType:
    """`utils.images` from the working tree, or as it was at git revision `rev`."""
    if rev is None:
        import utils.images
        return utils.images
    source = subprocess.run(["git", "show", f"{rev}:utils/images.py"], cwd=ROOT, capture_output=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="images-")) / "images_at_rev.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("images_at_rev", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (its peak) from /proc, in MB.

    Not ru_maxrss: on Linux a child starts with its parent's peak (here the parent's, which made
    the photos), so a small scenario would report the parent's figure.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(photo_file: str, copies: int, rev: str | None, options: dict, cap_gb: float) -> dict:
    """One scenario, in this (fresh) process: `copies` decodes at once; returns the figures."""
    cap = int(cap_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    images = images_module(rev)
    accepted = inspect.signature(images.shrink_image).parameters
    kwargs = {name: value for name, value in options.items() if value is not None and name in accepted}
    data = Path(photo_file).read_bytes()
    before_mb = _status_mb("VmRSS")
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            shrunk = images.shrink_image(data, **kwargs)
            outcome = f"shrunk to {shrunk.width}×{shrunk.height}"
        except MemoryError:
            outcome = "MemoryError"
        except images.ImageRejected as exc:
            outcome = f"refused: {exc}"
        with lock:
            outcomes.append(outcome)

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM")
    gc.collect()
    time.sleep(0.5)  # what the process keeps once every decode is over: the app between uploads
    idle_mb = _status_mb("VmRSS")
    return {"copies": copies, "seconds": seconds, "peak_mb": peak_mb, "added_mb": peak_mb - before_mb,
            "idle_mb": idle_mb,
            "outcomes": sorted(set(outcomes)), "failed": sum(o == "MemoryError" for o in outcomes),
            "kwargs": kwargs}


def run(rev: str | None, options: dict, cap_gb: float, log) -> list[dict]:
    """Every scenario, each in its own interpreter; the rows of the table."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in photos().items():
            path = Path(tmp) / "photo"
            path.write_bytes(data)
            for copies in COPIES[name]:
                log(f"{name}, {copies} at once ...")
                args = [sys.executable, "-m", "bench.decode_memory", "--child", str(path), str(copies),
                        "--cap-gb", str(cap_gb), "--options", json.dumps(options)]
                if rev:
                    args += ["--code", rev]
                done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    rows.append({"photo": name, "copies": copies, "error": done.stderr.strip().splitlines()[-1:]})
                    continue
                rows.append({"photo": name, "bytes": len(data), **json.loads(done.stdout)})
    return rows


def markdown(rows: list[dict], label: str) -> str:
    """The table for bench/RESULTS.md."""
    lines = [label, "", "| photo | at once | peak RSS MB | added MB | idle RSS MB | wall s | outcome |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['photo']} | {row['copies']} | – | – | – | – | child failed: {row['error']} |")
            continue
        outcome = "; ".join(o[:70] for o in row["outcomes"])
        if row["failed"]:
            outcome += f" ({row['failed']} of {row['copies']} out of memory)"
        lines.append(f"| {row['photo']} ({row['bytes'] / 1000:.0f} KB) | {row['copies']} | {row['peak_mb']:.0f} | "
                     f"{row['added_mb']:.0f} | {row['idle_mb']:.0f} | {row['seconds']:.2f} | {outcome} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the table (or, with --child, one scenario as JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.decode_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--code", metavar="REV", help="measure utils/images.py as it was at this git revision")
    parser.add_argument("--max-pixels", type=int, help="passed to shrink_image (default: its own)")
    parser.add_argument("--concurrency", type=int, help="passed to shrink_image, if it takes it")
    parser.add_argument("--cap-gb", type=float, default=8.0, help="address-space cap of each scenario's process")
    parser.add_argument("--child", nargs=2, metavar=("PHOTO", "COPIES"), help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.code, json.loads(args.options), args.cap_gb)))
        return 0
    options = {"max_pixels": args.max_pixels, "concurrency": args.concurrency}
    rows = run(args.code, options, args.cap_gb, lambda message: print(message, file=sys.stderr, flush=True))
    given = ", ".join(f"{k}={v}" for k, v in options.items() if v is not None) or "its defaults"
    print(markdown(rows, f"utils/images.py {'at ' + args.code if args.code else 'of the working tree'}, {given}:"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
