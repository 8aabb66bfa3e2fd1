"""One chat completion, start to end: upload, admission, queue, first token, generation.

This is where a profile's behaviour meets a request: every random draw of request N to
a provider comes from its own `random.Random` seeded by (seed, provider, N), and every
duration is slept on the simulator's clock.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
import traceback

from bench.simulator.answers import case_class, contract_answer, ramble
from bench.simulator.capacity import ProviderState, QueueTimeout, Worker
from bench.simulator.clock import SimClock
from bench.simulator.connection import Connection, Request, error_body, retry_after_seconds
from bench.simulator.records import RequestRecord
from bench.simulator.tokens import read_prompt, split_tokens, token_limit


class ChatCompletions:
    """Answers chat-completions requests as the providers' profiles say, on `clock`'s time."""

    def __init__(self, clock: SimClock, seed: int, min_chunk_interval: float) -> None:
        """`min_chunk_interval`: wall seconds a stream waits at least between two chunks."""
        self.clock, self.seed, self.min_chunk_interval = clock, seed, min_chunk_interval

    async def run(self, conn: Connection, provider: ProviderState, req: Request, rec: RequestRecord) -> bool:
        """One chat completion: upload, admission, queue, first token, generation. Returns keep-alive."""
        p, keep = provider.profile, req.keep_alive
        rng = random.Random(f"{self.seed}/{provider.name}/{rec.index}")
        worker: Worker | None = None
        try:
            if p.uplink_bps:
                rec.upload = len(req.body) * 8 / p.uplink_bps
                await self.clock.sleep(rec.upload)
            try:
                body = json.loads(req.body)
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                rec.outcome = "bad_request"
                return await self._error(conn, rec, 400, "The body must be JSON with a 'messages' list.", keep)
            rec.stream = bool(body.get("stream"))

            # Every draw up front, in one order, so request N behaves the same whichever branch it takes.
            fate = rng.random()
            error = fate < p.error_rate
            hang = not error and fate < p.error_rate + p.hang_rate
            slow = not (error or hang) and fate < p.error_rate + p.hang_rate + p.slow_rate
            delay = rng.uniform(*p.slow_first_token) if slow else p.first_token_delay(rng)
            speed = p.tokens_per_second * (rng.lognormvariate(0, p.speed_jitter) if p.speed_jitter else 1.0)
            code = (None if p.differ_rate is None
                    else case_class(self.seed, body["messages"], provider.name, p.differ_rate))
            answer = contract_answer(rng, rng.randint(*p.answer_tokens), code)
            runaway = rng.random() < p.runaway_rate

            if provider.bucket is not None:
                wait = provider.bucket.take(self.clock.now())
                if wait > 0:
                    rec.outcome = "rate_limited"
                    wall = self.clock.wall(wait)
                    headers = {"retry-after": retry_after_seconds(wall), "retry-after-ms": str(math.ceil(wall * 1000)),
                               "x-ratelimit-limit-requests": f"{p.rate_limit_rpm:g}",
                               "x-ratelimit-remaining-requests": "0",
                               "x-ratelimit-reset-requests": f"{retry_after_seconds(wall)}s"}
                    message = (f"Rate limit reached for {p.model}: limit {p.rate_limit_rpm:g} requests per "
                               f"minute. Please try again in {retry_after_seconds(wall)}s.")
                    return await self._error(conn, rec, 429, message, keep, headers)

            text_tokens, images = read_prompt(body["messages"])
            rec.image_pixels = sum(w * h for w, h, _ in images)
            rec.prompt_tokens = text_tokens + sum(p.image_tokens(w, h, d) for w, h, d in images)
            room = p.context_limit - rec.prompt_tokens
            if room <= 0:
                rec.outcome = "bad_request"
                message = (f"This model's maximum context length is {p.context_limit} tokens. However, your "
                           f"messages resulted in {rec.prompt_tokens} tokens.")
                return await self._error(conn, rec, 400, message, keep)
            rec.max_tokens = limit = token_limit(body, p, room)
            tokens = split_tokens(answer)
            if runaway:
                tokens = ramble(tokens, limit + 1)
            rec.finish_reason = "length" if len(tokens) > limit else "stop"
            tokens = tokens[:limit]

            if provider.pool is not None:
                try:
                    worker = await provider.pool.acquire(rec)
                except QueueTimeout:
                    rec.outcome = "queue_timeout"
                    message = f"No worker took the job within {p.queue_timeout:g} s."
                    return await self._error(conn, rec, 504, message, keep)
                speed /= provider.pool.load(worker)
            if error:
                await self.clock.sleep(delay)
                rec.outcome = "error"
                status = 500 if fate < p.error_rate / 2 else 503
                message = ("The server had an error while processing your request." if status == 500
                           else "The engine is currently overloaded, please try again later.")
                return await self._error(conn, rec, status, message, keep)
            if hang:
                rec.outcome = "hung"
                await conn.gone_event.wait()
                return False

            model = body.get("model") or p.model
            cid = f"chatcmpl-sim{rec.id}"
            if rec.stream:   # headers as soon as the engine takes the request, as vLLM does
                conn.start_stream(keep=keep)
                rec.status = 200
                await conn.drain()
            prefill = rec.prompt_tokens / p.prefill_tokens_per_second
            prefill += rec.image_pixels / 1e6 * p.image_seconds_per_megapixel
            await self.clock.sleep(delay + prefill)
            rec.first_token = self.clock.now() - rec.arrived
            usage = {"prompt_tokens": rec.prompt_tokens, "completion_tokens": len(tokens),
                     "total_tokens": rec.prompt_tokens + len(tokens)}
            if rec.stream:
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                await self._stream(conn, rec, tokens, speed, cid, model, usage if include_usage else None)
            else:
                await self.clock.sleep(len(tokens) / speed)
                rec.completion_tokens = len(tokens)
                message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
                await conn.respond_json(200, {
                    "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None,
                                 "finish_reason": rec.finish_reason}],
                    "usage": usage, "system_fingerprint": None}, keep=keep)
                rec.status = 200
            rec.outcome = "disconnected" if conn.gone else ("length" if rec.finish_reason == "length" else "ok")
            return keep
        except Exception:  # a bug in the simulator: say so, loudly, and keep serving
            traceback.print_exc(file=sys.stderr)
            rec.outcome = "error"
            if not conn.head_sent:
                return await self._error(conn, rec, 500, "Simulator error (see its stderr).", False)
            return False
        finally:
            if worker is not None:
                provider.pool.release(worker)
            if rec.outcome == "pending":
                rec.outcome = "disconnected" if conn.gone else "cancelled"
            if rec.status is None and conn.gone:
                rec.status = 499
            rec.duration = self.clock.now() - rec.arrived

    async def _stream(self, conn: Connection, rec: RequestRecord, tokens: list[str], speed: float,
                      cid: str, model: str, usage: dict | None) -> None:
        """Send `tokens` at `speed` tokens per simulated second, as server-sent events."""
        created = int(time.time())

        def event(choices: list, with_usage: dict | None = None) -> dict:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": choices}
            if usage is not None:
                data["usage"] = with_usage
            return data

        def delta(d: dict, finish: str | None = None) -> dict:
            return event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        loop = asyncio.get_running_loop()
        start, step = loop.time(), self.clock.scale / speed   # wall seconds per token
        conn.send_event(delta({"role": "assistant", "content": ""}))
        sent = 0
        while sent < len(tokens):
            due = min(len(tokens), 1 + int((loop.time() - start) / step))
            if due > sent:
                conn.send_event(delta({"content": "".join(tokens[sent:due])}))
                sent = rec.completion_tokens = due
                await conn.drain()
            if sent < len(tokens):
                await asyncio.sleep(max(self.min_chunk_interval, start + sent * step - loop.time()))
        conn.send_event(delta({}, rec.finish_reason))
        if usage is not None:
            conn.send_event(event([], usage))
        conn.send_event("[DONE]")
        conn.end_stream()
        await conn.drain()

    async def _error(self, conn: Connection, rec: RequestRecord, status: int, message: str, keep: bool,
                     headers: dict | None = None) -> bool:
        """Answer `status` with OpenAI's error body; returns keep-alive."""
        rec.status = status
        await conn.respond_json(status, error_body(status, message), keep=keep, headers=headers)
        return keep
