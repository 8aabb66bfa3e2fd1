"""`python -m bench.simulator`: serve the default providers, print their URLs, run until Ctrl-C.

The first lines printed are `<provider> <base URL>`, then `stats <URL>`: `SimulatorProcess`
reads them to learn where the simulator listens.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from bench.simulator.profiles import HostedProfile, default_profiles, fixed_hosted
from bench.simulator.server import Simulator


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; then print the stats as JSON on stderr."""
    parser = argparse.ArgumentParser(prog="python -m bench.simulator",
                                     description="Serve simulated RunPod, OpenAI and llama.cpp providers.")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="wall seconds per simulated second, e.g. 0.1 (default 1: real time)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--hosted-rpm", type=float, default=None,
                        help="the hosted (openai) profile's rate limit in requests a minute (default: its tier-1 500)")
    parser.add_argument("--hosted-seconds", type=float, default=None,
                        help="make the hosted (openai) profile answer every request in about this many seconds: no "
                             "tails, failures, jitter or rate limit (the API load benchmark's fixed provider)")
    parser.add_argument("--differ", action="append", default=[], metavar="PROVIDER=SHARE",
                        help="answers follow the case (every provider reads one case alike), except that PROVIDER "
                             "reads another class in SHARE of the cases, e.g. runpod=0.15 (repeatable)")
    args = parser.parse_args(argv)
    profiles = default_profiles()
    if args.differ:
        shares = {name: float(share) for name, _, share in (d.partition("=") for d in args.differ)}
        unknown = set(shares) - set(profiles)
        if unknown:
            parser.error(f"--differ: no provider {', '.join(sorted(unknown))}; known: {', '.join(profiles)}")
        profiles = {name: dataclasses.replace(p, differ_rate=shares.get(name, 0.0)) for name, p in profiles.items()}
    if args.hosted_seconds is not None:
        hosted = profiles["openai"]
        assert isinstance(hosted, HostedProfile)
        profiles["openai"] = fixed_hosted(hosted, args.hosted_seconds)
    if args.hosted_rpm is not None:
        profiles["openai"] = dataclasses.replace(profiles["openai"], rate_limit_rpm=args.hosted_rpm)
    sim = Simulator(profiles, scale=args.scale, seed=args.seed, host=args.host, port=args.port)
    for name, url in sim.start().items():
        print(f"{name:8} {url}", flush=True)
    print(f"{'stats':8} http://{args.host}:{sim.port}/_stats", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        print(json.dumps(sim.stats(), indent=2, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
