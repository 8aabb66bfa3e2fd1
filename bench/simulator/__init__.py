"""A simulated, time-scaled OpenAI-compatible provider server, for benchmarks.

The original backend's 2-3 minute answers did not come from slow code: they came from
how the providers behave. RunPod serverless scales to zero and cold-starts for one to
two and a half minutes; hosted APIs rate-limit, fail now and then, sometimes hang and
sometimes take twenty seconds to say anything; a clinic's uplink takes seconds to send
a phone photo. A benchmark that is to say whether a change helps has to meet all of
that, reproducibly, and in minutes rather than in a day. This package plays those
providers on one local HTTP server:

    from bench.simulator import Simulator, ServerlessProfile, HostedProfile

    profiles = {"runpod": ServerlessProfile(), "openai": HostedProfile()}
    with Simulator(profiles, scale=0.1, seed=1) as sim:
        sim.url("runpod")           # http://127.0.0.1:PORT/runpod/v1, for RUNPOD_BASE_URL
        ...                         # run the app against it
        sim.stats()["runpod"]       # requests, cold starts, workers booted, worker-seconds ...
        sim.records()               # one RequestRecord per request

    python -m bench.simulator --scale 0.1     # prints the URLs and serves until Ctrl-C

Time. Every number in a profile is in real-world seconds; `scale` multiplies each
simulated duration into wall-clock time, so at scale 0.1 a 90 s cold start takes 9 s.
Clients see wall time (Retry-After included, so their back-off stays in step); the
server records simulated seconds, so its metrics read like a day at the clinic. Divide
a client-side wall timing by `scale` to compare it with them.

Protocol. POST /<provider>/<anything>/chat/completions, where the first path segment
picks the profile (so /runpod/v1 and /openai/v1 are two providers on one port), answers
one JSON body or server-sent events (`stream: true`; a usage chunk when
`stream_options.include_usage`; `data: [DONE]`), keep-alive, like OpenAI and vLLM do.
GET /<provider>/v1/models lists the profile's model; GET /_stats returns `stats()` as
JSON (add `?records=1` for every request).

Tokens. There is no tokenizer: a token is about 4 ASCII characters or 1.5 other
(Hangul) characters, between what OpenAI's o200k and Qwen's tokenizers make of Korean
text. Usage, the max-token cut and generation speed all count these same tokens, so
they agree with one another if not with tiktoken. Streamed chunks carry as many tokens
as were generated since the previous chunk, at most one chunk per `min_chunk_interval`
of wall time, so thousands of concurrent streams stay cheap at any scale.

Answers are contract XML (see /work/shared/answer-contract.md): a random class of the 15
with two similar ones and Korean findings, 250-400 tokens in all, cut at the token limit
with finish_reason "length" (leaving the XML unclosed). A profile's `differ_rate` (the CLI's
`--differ runpod=0.15`) makes the class follow the case instead, so two providers reading one
case agree except in a seeded share of cases (double reading). Every random draw of request N
to a provider comes from its own `random.Random` seeded by (seed, provider, N), and
every worker boot likewise, so a run with the same seed and arrival order replays.

Modules, from the bottom up: `profiles` (how each provider behaves), `records` (what
the server measured), `tokens` (token counts of text, prompts and images), `answers`
(the model's contract XML), `clock` (simulated against wall time), `capacity` (rate
limits and the serverless worker pool), `connection` (HTTP/1.1 on one socket), `chat`
(one chat completion, start to end), `server` (`Simulator`: the event loop, routing and
metrics), `process` (the simulator in a process of its own) and `__main__` (the CLI).
"""

from __future__ import annotations

from bench.simulator.answers import contract_answer
from bench.simulator.process import SimulatorProcess
from bench.simulator.profiles import HostedProfile, Profile, ServerlessProfile, default_profiles, llamacpp_profile
from bench.simulator.records import RequestRecord, WorkerRecord
from bench.simulator.server import Simulator
from bench.simulator.tokens import count_tokens, image_size, split_tokens

__all__ = [
    "Profile", "ServerlessProfile", "HostedProfile", "llamacpp_profile", "default_profiles",
    "Simulator", "SimulatorProcess", "RequestRecord", "WorkerRecord", "contract_answer", "split_tokens",
    "count_tokens", "image_size",
]
