"""The simulator in a process of its own, for benchmarks that measure clients in this one."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class SimulatorProcess:
    """`python -m bench.simulator` in a process of its own, so that the clients measured and the simulated
    providers do not share one interpreter lock (sharing it adds the server's work to every
    client timing, then multiplies it by 1/scale)."""

    def __init__(self, *, scale: float, seed: int, args: tuple[str, ...] = ()) -> None:
        """`args` go to `python -m bench.simulator` as they are (e.g. `("--hosted-rpm", "10000")`)."""
        self.scale, self.seed, self.args = scale, seed, args
        self.urls: dict[str, str] = {}

    def __enter__(self) -> SimulatorProcess:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.simulator", "--scale", str(self.scale),
                                      "--seed", str(self.seed), *self.args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in self.proc.stdout:
            name, url = line.split()
            self.urls[name] = url
            if name == "stats":
                return self
        raise RuntimeError("the simulator did not start")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def url(self, name: str) -> str:
        """The OpenAI-style base URL of provider `name`, as the process printed it."""
        return self.urls[name]

    def stats(self) -> dict:
        """The process's `/_stats`: its scale, its clock and `Simulator.stats()`."""
        with urllib.request.urlopen(self.urls["stats"], timeout=10) as response:
            return json.load(response)
