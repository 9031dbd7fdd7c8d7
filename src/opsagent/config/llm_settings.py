"""The LLM endpoint and its budgets per investigation and chat turn."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr


class LLMSettings(BaseModel):
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp). Unset ``base_url``/``model``: no LLM."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr("not-needed")
    model: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    temperature: float = 0.0
    # Budgets per investigation (and per chat turn): a runaway agent loop costs money and delays the page.
    max_steps: int = 8
    max_prompt_tokens: int = 24_000
    max_seconds: float = 120.0
    """A wall clock for the whole agent run: a model call still in flight at this point is cancelled
    (the client's own timeout and retries notwithstanding) and the offline engine answers."""

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)
