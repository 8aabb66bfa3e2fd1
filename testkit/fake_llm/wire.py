"""What the fake says, byte for byte: OpenAI's chat-completion bodies and server-sent-event framing.

Pure encoding; when each piece goes out, and whether the connection survives it, is
the handler's business.
"""

from __future__ import annotations

import json
import time

from testkit.fake_llm.replies import Reply

DONE = b"data: [DONE]\n\n"


def usage(reply: Reply) -> dict:
    """The reply's token usage as OpenAI reports it."""
    prompt, completion = reply.usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(reply: Reply, request: dict, completion_id: str) -> dict:
    """The whole JSON body of a non-streamed answer."""
    return {
        "id": completion_id, "object": "chat.completion",
        "created": int(time.time()), "model": request.get("model") or "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                     "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": usage(reply),
    }


def cut_inside_content(body: dict, cut_after: int) -> int:
    """Bytes of `body`'s JSON to send so the cut falls `cut_after` characters into the answer."""
    data = json.dumps(body, ensure_ascii=False)
    return len(data[:data.index('"content"') + 12 + cut_after].encode("utf-8"))


class StreamChunks:
    """The `chat.completion.chunk` objects of one streamed answer (usage on each when the request asked)."""

    def __init__(self, request: dict, completion_id: str) -> None:
        self.include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.id = completion_id
        self.created, self.model = int(time.time()), request.get("model") or "fake-model"

    def event(self, choices: list, usage: dict | None = None) -> dict:
        """One chunk with `choices`; `usage` goes out only if the request asked for it."""
        data = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": None, "choices": choices}
        if self.include_usage:
            data["usage"] = usage
        return data

    def delta(self, d: dict, finish: str | None = None) -> dict:
        """A chunk carrying one delta (the role, a piece of content, or nothing but the finish reason)."""
        return self.event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])


def sse(data: dict) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    return b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n"


def http_chunk(data: bytes) -> bytes:
    """`data` framed as one chunk of chunked transfer encoding (b"" is the terminating chunk)."""
    return b"%x\r\n%s\r\n" % (len(data), data)
