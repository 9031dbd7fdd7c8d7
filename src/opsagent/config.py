"""Settings: one ``Settings`` object, built once by the CLI or ``create_app()``, never at import.

Sources, highest first: constructor arguments, ``OPSAGENT_*`` environment variables (nested with
``__``, e.g. ``OPSAGENT_LLM__BASE_URL``), the YAML file named by ``OPSAGENT_CONFIG_FILE`` (default
``./opsagent.yaml`` when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from opsagent.domain import AutonomyLevel, Risk


class LLMSettings(BaseModel):
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp). Unset ``base_url``/``model``: no LLM."""

    base_url: str | None = None
    api_key: SecretStr = SecretStr("not-needed")
    model: str | None = None
    timeout_seconds: float = 60.0
    max_retries: int = 2
    temperature: float = 0.0
    # Budgets per investigation: a runaway agent loop costs money and delays the page.
    max_steps: int = 8
    max_prompt_tokens: int = 24_000
    max_seconds: float = 120.0

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


class PrometheusSettings(BaseModel):
    url: str | None = None
    timeout_seconds: float = 10.0
    retries: int = 2
    # Bounds on what one investigation may ask of Prometheus.
    max_range_hours: float = 6.0
    max_points: int = 1_100
    headers: dict[str, str] = Field(default_factory=dict)


class LokiSettings(BaseModel):
    url: str | None = None
    token: SecretStr | None = None
    tenant: str | None = None
    timeout_seconds: float = 10.0
    limit: int = 5_000


class PolicyRule(BaseModel):
    """Allows ``actions`` to run without approval on matching targets (``*`` matches anything)."""

    actions: list[str] = Field(default_factory=lambda: ["*"])
    services: list[str] = Field(default_factory=lambda: ["*"])
    namespaces: list[str] = Field(default_factory=lambda: ["*"])
    max_risk: Risk = Risk.HIGH


class AutonomySettings(BaseModel):
    """Policy of the autonomy gate beyond the global level (``OPSAGENT_AUTONOMY_LEVEL``)."""

    service_levels: dict[str, AutonomyLevel] = Field(default_factory=dict)
    confidence_threshold: float = 0.7
    rules: list[PolicyRule] = Field(default_factory=list)
    kill_switch: bool = False
    dry_run: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSAGENT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path(".opsagent")
    runbooks_dir: Path = Path("runbooks")
    prompts_dir: Path = Path("prompts")
    database_url: str | None = None
    redis_url: str | None = None
    chroma_url: str | None = None
    embedding: Literal["minilm", "hashing"] = "minilm"
    autonomy_level: AutonomyLevel = AutonomyLevel.L1
    autonomy: AutonomySettings = Field(default_factory=AutonomySettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    logs_dir: Path | None = None
    webhook_token: SecretStr | None = None
    source_timeout_seconds: float = 20.0

    @field_validator("autonomy_level", mode="before")
    @classmethod
    def _parse_level(cls, value: object) -> object:
        if isinstance(value, str):
            return AutonomyLevel.parse(value)
        return value

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{(self.data_dir / 'opsagent.db').resolve()}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or self.sqlite_url

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("OPSAGENT_CONFIG_FILE", "opsagent.yaml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)
