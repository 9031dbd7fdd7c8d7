"""Prompts from ``prompts/``: Jinja templates with YAML front matter (name, version), hashed.

Every prompt an investigation uses is recorded as a ``PromptRecord`` (name, version, sha256 of the
file), so a report says exactly which words the model saw. No prompt prose lives in Python.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from opsagent.domain import PromptRecord
from opsagent.errors import ConfigError

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)
# The prompts that ship with the package: src/opsagent/prompts links to the checkout's prompts/
# (the only copy in git), and a wheel holds the files themselves as package data.
BUNDLED_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
# A checkout whose link did not survive (a filesystem without symlinks): prompts/ next to src/.
_REPO_PROMPTS = Path(__file__).resolve().parents[3] / "prompts"


def resolve_prompts_dir(configured: Path) -> Path:
    """The configured folder (``OPSAGENT_PROMPTS_DIR``, default ``./prompts``) when it exists; a
    relative one that does not falls back to the package's own prompts, then the checkout's."""
    if configured.is_dir():
        return configured
    if not configured.is_absolute():
        for shipped in (BUNDLED_PROMPTS, _REPO_PROMPTS):
            if shipped.is_dir():
                return shipped
    raise ConfigError(f"prompt folder {configured} does not exist (OPSAGENT_PROMPTS_DIR)")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    sha256: str
    template: jinja2.Template

    @property
    def record(self) -> PromptRecord:
        return PromptRecord(name=self.name, version=self.version, sha256=self.sha256)

    def render(self, **context: Any) -> str:
        try:
            return self.template.render(**context).strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(f"prompt {self.name} v{self.version}: {exc}") from exc


@dataclass(frozen=True)
class ToolTexts:
    """The tools' descriptions (``prompts/tools.yaml``), versioned like a template."""

    version: str
    sha256: str
    descriptions: dict[str, str]

    @property
    def record(self) -> PromptRecord:
        return PromptRecord(name="tools", version=self.version, sha256=self.sha256)


class PromptLibrary:
    """Loads and caches the prompts of one folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = resolve_prompts_dir(directory)
        self._env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # plain text for a model, not HTML; data goes in through |tojson
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._cache: dict[str, Prompt] = {}
        self._tools: ToolTexts | None = None

    def get(self, name: str) -> Prompt:
        if name in self._cache:
            return self._cache[name]
        path = self.directory / f"{name}.j2"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"prompt {name!r} not found in {self.directory}") from exc
        text = raw.decode("utf-8")
        match = _FRONT_MATTER.match(text)
        if not match:
            raise ConfigError(f"{path}: no front matter (name, version)")
        meta = yaml.safe_load(match.group(1)) or {}
        if not isinstance(meta, dict) or meta.get("name") != name or "version" not in meta:
            raise ConfigError(f"{path}: front matter needs name: {name} and a version")
        try:
            template = self._env.from_string(match.group(2))
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: {exc.message}") from exc
        prompt = Prompt(
            name=name,
            version=str(meta["version"]),
            sha256=hashlib.sha256(raw).hexdigest(),
            template=template,
        )
        self._cache[name] = prompt
        return prompt

    def tools(self) -> ToolTexts:
        if self._tools is None:
            path = self.directory / "tools.yaml"
            try:
                raw = path.read_bytes()
                meta = yaml.safe_load(raw)
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{path}: cannot read tool descriptions: {exc}") from exc
            tools = meta.get("tools") if isinstance(meta, dict) else None
            if not isinstance(tools, dict) or "version" not in meta:
                raise ConfigError(f"{path}: expected 'version' and a 'tools' mapping")
            self._tools = ToolTexts(
                version=str(meta["version"]),
                sha256=hashlib.sha256(raw).hexdigest(),
                descriptions={str(k): str(v) for k, v in tools.items()},
            )
        return self._tools
