"""The providers the app knows, declared in one place and built from settings."""

from __future__ import annotations

from providers.base import Provider
from utils.settings import Settings


class OpenAIProvider(Provider):
    """OpenAI's own API (or a proxy at OPENAI_BASE_URL), with a key."""

    name, title = "openai", "OpenAI"
    key_var, url_var, model_var = "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"
    # OpenAI reads max_completion_tokens and rejects requests that also set max_tokens for newer models.
    sends_max_tokens = False

    @classmethod
    def from_settings(cls, s: Settings) -> OpenAIProvider:
        """OpenAI from the OPENAI_* settings."""
        return cls(s, api_key=s.openai_api_key, base_url=s.openai_base_url, model=s.openai_model)


class RunPodProvider(Provider):
    """A RunPod serverless endpoint: a key and a URL, and cold starts the warm-up hides."""

    name, title = "runpod", "RunPod"
    key_var, url_var, model_var = "RUNPOD_API_KEY", "RUNPOD_BASE_URL", "RUNPOD_MODEL_NAME"
    serverless = True

    @classmethod
    def from_settings(cls, s: Settings) -> RunPodProvider:
        """RunPod from the RUNPOD_* settings."""
        return cls(s, api_key=s.runpod_api_key, base_url=s.runpod_base_url, model=s.runpod_model_name)


class LocalProvider(Provider):
    """A server on the clinic's own machine (Ollama, vLLM, llama.cpp): keyless, maybe text-only."""

    name, title = "local", "Local server"
    key_var, url_var, model_var = "LOCAL_API_KEY", "LOCAL_BASE_URL", "LOCAL_MODEL"
    key_required = False  # Ollama, vLLM and llama.cpp run without a key by default

    @classmethod
    def from_settings(cls, s: Settings) -> LocalProvider:
        """The local server from the LOCAL_* settings, including whether it reads images."""
        return cls(s, api_key=s.local_api_key, base_url=s.local_base_url, model=s.local_model,
                   accepts_images=s.local_accepts_images)


PROVIDER_CLASSES: tuple[type[Provider], ...] = (RunPodProvider, OpenAIProvider, LocalProvider)


def build_providers(settings: Settings) -> dict[str, Provider]:
    """Every known provider by name, configured or not, in the order the UI lists them."""
    return {cls.name: cls.from_settings(settings) for cls in PROVIDER_CLASSES}
