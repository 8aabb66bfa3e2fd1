"""A real HTTP server that speaks OpenAI's chat-completions protocol, for tests.

    with FakeLLM() as llm:
        llm.script(Reply(status=429, headers={"Retry-After": "0.3"}), Reply(VALID))
        ...  # point RUNPOD_BASE_URL / OPENAI_BASE_URL at llm.url
        assert llm.requests[0].body["model"] == "clinic-derm-v1"

It listens on 127.0.0.1 on a free port and answers POST .../chat/completions under any
prefix (`/v1/chat/completions`, RunPod's `/v2/<id>/openai/v1/chat/completions`), streamed
as server-sent events (chunked, keep-alive) or as one JSON body, as the request asks.
Scripted replies are used in order, then `responder(request)` if set, else `default`
(a valid contract answer) forever.

Standalone, for end-to-end tests that start the app as a subprocess:

    python -m testkit.fake_llm --port 8765      # prints its URL, serves the default answer

Modules: `replies` (Reply, RecordedRequest, Headers: what tests script and read), `wire`
(OpenAI's JSON bodies and server-sent events), `http_handler` (sockets, timing,
hang-ups), `fake` (FakeLLM itself) and `__main__` (the command line).
"""

from __future__ import annotations

from testkit.fake_llm.fake import FakeLLM, closed_port_url
from testkit.fake_llm.replies import Headers, RecordedRequest, Reply

__all__ = ["FakeLLM", "Reply", "RecordedRequest", "Headers", "closed_port_url"]
