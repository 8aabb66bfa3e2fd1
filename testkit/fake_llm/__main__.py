"""`python -m testkit.fake_llm --port 8765`: serve the default answer, print the URL, run until Ctrl-C."""

from __future__ import annotations

import argparse
import time

from testkit.answers import BENIGN, VALID
from testkit.fake_llm.fake import FakeLLM
from testkit.fake_llm.replies import Reply


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m testkit.fake_llm",
                                     description="Serve a fake OpenAI-compatible chat-completions endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--answer", choices=("valid", "benign"), default="valid")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer starts")
    args = parser.parse_args(argv)
    default = Reply(VALID if args.answer == "valid" else BENIGN, chunk_delay=args.chunk_delay, delay=args.delay)
    fake = FakeLLM(default, host=args.host, port=args.port).start()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
