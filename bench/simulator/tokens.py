"""Approximate token counts: of text, of a request's prompt (images included), and an answer's limit.

There is no tokenizer: a token is about 4 ASCII characters or 1.5 other (Hangul)
characters, between what OpenAI's o200k and Qwen's tokenizers make of Korean text.
Usage, the max-token cut and generation speed all count these same tokens, so they
agree with one another if not with tiktoken.
"""

from __future__ import annotations

import base64
import binascii
import io

from bench.simulator.profiles import Profile


def split_tokens(text: str) -> list[str]:
    """`text` in approximate tokens: 4 ASCII characters or 1.5 other characters each."""
    pieces: list[str] = []
    start, weight = 0, 0.0
    for i, ch in enumerate(text):
        weight += 0.25 if ch < "\x80" else 2 / 3
        if weight >= 1 - 1e-9:
            pieces.append(text[start:i + 1])
            start, weight = i + 1, weight - 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def count_tokens(text: str) -> int:
    """How many approximate tokens `text` is (see `split_tokens`)."""
    return len(split_tokens(text))


_HEADER_CHARS = 256 * 1024   # base64 characters read first: 192 KB covers a JPEG's EXIF, ICC and SOF
_UNKNOWN_IMAGE = (512, 512)  # what a remote (http) image URL, which is never fetched, is counted as


def image_size(url: str) -> tuple[int, int] | None:
    """Width and height of a base64 data-URL image, from its header alone (no pixel decoding).

    The first 192 KB usually hold every JPEG marker up to the frame header; when they do
    not, the whole image is decoded from base64 (still without decoding pixels).
    """
    if not url.startswith("data:"):
        return None
    meta, _, data = url.partition(",")
    if ";base64" not in meta:
        return None
    from PIL import Image  # only needed for images; Pillow is one of the app's dependencies

    for chunk in (data[:_HEADER_CHARS], data) if len(data) > _HEADER_CHARS else (data,):
        try:
            raw = base64.b64decode(chunk[:len(chunk) // 4 * 4])
            with Image.open(io.BytesIO(raw)) as img:
                return img.size
        except (binascii.Error, ValueError, OSError, IndexError, SyntaxError, Image.DecompressionBombError):
            continue
    return None


def read_prompt(messages: list) -> tuple[int, list[tuple[int, int, str | None]]]:
    """Text tokens of the conversation (4 per message of overhead), and (width, height, detail) per image."""
    tokens, images = 3, []
    for message in messages:
        if not isinstance(message, dict):
            continue
        tokens += 4
        content = message.get("content")
        if isinstance(content, str):
            tokens += count_tokens(content)
            continue
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                tokens += count_tokens(str(part.get("text") or ""))
            elif part.get("type") == "image_url":
                ref = part.get("image_url")
                url = ref.get("url") if isinstance(ref, dict) else ref
                detail = ref.get("detail") if isinstance(ref, dict) else None
                size = image_size(url) if isinstance(url, str) else None
                images.append((*(size or _UNKNOWN_IMAGE), detail))
    return tokens, images


def token_limit(body: dict, profile: Profile, room: int) -> int:
    """The answer's token limit: the smaller of the honoured request fields, never past the context."""
    fields = ["max_tokens"] + (["max_completion_tokens"] if profile.honours_max_completion_tokens else [])
    asked = [body.get(f) for f in fields]
    limits = [int(v) for v in asked if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return min([room, *limits])
