"""The answer cache's keys: which request, to which provider, under which prompt and settings.

Pure functions of their arguments, so a key can be computed (and tested) without an engine.
Everything that shapes an answer is in the key; the key itself is a hash and reveals none of it.
"""

from __future__ import annotations

import hashlib

from domain.prompt import HELPER_PROMPT_VERSION, PROMPT_VERSION
from domain.request import DiagnosisRequest
from providers.base import Provider
from storage.cache import cache_key
from utils.settings import Settings


def answer_key(request: DiagnosisRequest, provider: Provider, settings: Settings) -> str:
    """The versioned key of `request`'s assessment from `provider`."""
    return cache_key({
        "provider": provider.name, "model": provider.model, "base_url": provider.base_url,
        "prompt": PROMPT_VERSION, "temperature": settings.temperature, "max_tokens": settings.max_tokens,
        "language": request.language, "text": request.text.strip(), "info": request.info.canonical(),
        "image": hashlib.sha256(request.image.jpeg).hexdigest() if request.image else None,
    })


def assist_key(task: str, subject: str, language: str, provider: Provider, settings: Settings) -> str:
    """The versioned key of a helper's answer (`task` is 'refine' or 'explain') about `subject`."""
    return cache_key({"task": task, "prompt": HELPER_PROMPT_VERSION, "provider": provider.name,
                      "model": provider.model, "base_url": provider.base_url, "language": language,
                      "temperature": settings.temperature, "input": subject})


def demo_key(case_id: str, language: str) -> str:
    """The key of a demo pack case's pinned answer in `language` (engine/demo.py): the case, not a provider's call.

    The pack's answers are written for the demo, so no provider, model or prompt is part of them; a request finds its
    case by what the clinician gave (domain/demo.py), then its pinned row by this key.
    """
    return cache_key({"demo_case": case_id, "language": language})
