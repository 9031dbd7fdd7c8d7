"""``Settings``: the one settings object, its sources and the groups it nests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from opsagent.config.autonomy_settings import AutonomySettings
from opsagent.config.llm_settings import LLMSettings
from opsagent.config.service_settings import ApiToken, ConsoleSettings, IncidentSettings, NotifySettings
from opsagent.config.source_settings import (
    FileLogSettings,
    LokiSettings,
    NormalPeriodSettings,
    PrometheusSettings,
    TopologySettings,
)
from opsagent.domain import AutonomyLevel


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPSAGENT_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path(".opsagent")
    runbooks_dir: Path = Path("runbooks")
    # The prompt templates. A relative folder that does not exist: the prompts the package ships.
    prompts_dir: Path = Path("prompts")
    database_url: str | None = None
    redis_url: str | None = None
    chroma_url: str | None = None
    embedding: Literal["minilm", "hashing", "openai", "sentence-transformers"] = "minilm"
    # For "openai" (any OpenAI-compatible /embeddings endpoint) and "sentence-transformers".
    embedding_model: str | None = None
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    autonomy_level: AutonomyLevel = AutonomyLevel.L1
    autonomy: AutonomySettings = Field(default_factory=AutonomySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    logs_dir: Path | None = None
    file_logs: FileLogSettings = Field(default_factory=FileLogSettings)
    topology: TopologySettings = Field(default_factory=TopologySettings)
    normal_period: NormalPeriodSettings = Field(default_factory=NormalPeriodSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    webhook_token: SecretStr | None = None
    source_timeout_seconds: float = 20.0
    reference_offset_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    """When set, an incident without a reference period gets one: its own window shifted back by this
    many hours (24: the same hours yesterday; 168: the same hours last week; at most a year). Logs
    and traces from there are the normal side of the event comparison instead of the minutes before
    the alert. An offset so short that the shifted window reaches the incident itself (its alert) is
    not used; the report names it as a gap."""
    # The service (``opsagent serve`` / ``opsagent worker``).
    api_tokens: list[ApiToken] = Field(default_factory=list)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=20, ge=0)
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # Investigations run at once by each worker process (thread mode: by the API process) without
    # OPSAGENT_REDIS_URL; more queue up in the database.
    workers: int = Field(default=2, ge=1)
    # Where investigations run without OPSAGENT_REDIS_URL. "process": in worker processes that
    # `opsagent serve` spawns at a lower OS priority, restarts when they die and stops with itself,
    # so an investigation never holds the API's GIL (webhook latency under load). "thread": in
    # threads of the API process (one process and one copy of the models fewer).
    worker_mode: Literal["process", "thread"] = "process"
    # Worker processes in "process" mode; each builds the services (runbook index, embedding model,
    # catalogue) once and runs `workers` investigations at once.
    worker_processes: int = Field(default=1, ge=1)
    # Beyond this many unfinished investigations, requests for more are refused (503) until it drains.
    queue_max_pending: int = Field(default=1_000, ge=1)
    # A running investigation whose worker stops renewing this lease is handed to another worker.
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1)
    redis_queue: str = "opsagent-investigations"

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
