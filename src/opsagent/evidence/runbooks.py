"""Runbook files: parse Markdown with YAML front matter into ``Runbook`` models.

A malformed runbook raises ``RunbookFormatError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opsagent.domain import ActionSpec, Runbook
from opsagent.errors import RunbookFormatError

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)
_HEADING = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*])\s+(.*\S)\s*$")


def _sections(body: str) -> dict[str, list[str]]:
    """Level-2 sections of the body → their list items (continuation lines folded in)."""
    out: dict[str, list[str]] = {}
    heads = list(_HEADING.finditer(body))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        items: list[str] = []
        in_code = False
        for line in body[head.end() : end].splitlines():
            if line.strip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            match = _ITEM.match(line)
            if match and not line.startswith("    "):
                items.append(match.group(1))
            elif items and line.strip() and line.startswith(" "):
                items[-1] += " " + line.strip()
        out[head.group(1).strip().lower()] = items
    return out


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def parse_runbook(path: Path) -> Runbook:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookFormatError(path, f"cannot read: {exc}") from None
    match = _FRONT_MATTER.match(text)
    if not match:
        raise RunbookFormatError(path, "no YAML front matter (the file must start with a '---' block)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise RunbookFormatError(path, f"front matter is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(meta, dict):
        raise RunbookFormatError(path, "front matter must be a mapping")
    for required in ("id", "title", "alerts"):
        if required not in meta:
            raise RunbookFormatError(path, f"front matter field '{required}' is missing")
    if meta["id"] != path.stem:
        raise RunbookFormatError(path, f"field 'id' is {meta['id']!r} but the file is named {path.stem!r}")
    body = match.group(2)
    sections = _sections(body)
    raw_actions = meta.get("actions") or []
    if not isinstance(raw_actions, list):
        raise RunbookFormatError(path, "field 'actions' must be a list")
    actions: list[ActionSpec] = []
    for i, raw in enumerate(raw_actions):
        try:
            actions.append(ActionSpec.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = _field_path(("actions", i, *first["loc"]))
            raise RunbookFormatError(path, f"field '{where}': {first['msg']}") from None
    try:
        return Runbook(
            id=meta["id"],
            title=meta["title"],
            alerts=meta.get("alerts") or [],
            services=meta.get("services") or [],
            signals=meta.get("signals") or [],
            fault_types=meta.get("fault_types") or [],
            actions=actions,
            queries=meta.get("queries") or [],
            symptoms=sections.get("symptoms", []),
            diagnosis=sections.get("diagnosis", []),
            remediation=sections.get("remediation", []),
            body=body,
            path=str(path),
            content_hash=hashlib.sha256(text.encode()).hexdigest(),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RunbookFormatError(path, f"field '{_field_path(first['loc'])}': {first['msg']}") from None


# The runbooks that ship with the package (the checkout's runbooks/ folder, as package data).
BUNDLED_RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"


def resolve_runbooks_dir(configured: Path) -> Path:
    """The configured folder; the default relative one, when absent here, falls back to the bundled runbooks.

    So ``opsagent serve`` works from any folder; a folder named explicitly (absolute, or other than
    ``runbooks``) that does not exist is still an error.
    """
    if configured.is_dir():
        return configured
    if not configured.is_absolute() and configured == Path("runbooks") and BUNDLED_RUNBOOKS.is_dir():
        return BUNDLED_RUNBOOKS
    raise RunbookFormatError(configured, "runbook folder does not exist (OPSAGENT_RUNBOOKS_DIR)")


def load_runbooks(directory: Path) -> list[Runbook]:
    """Every ``*.md`` runbook of a folder (README.md excepted), sorted by id.

    ``directory`` is resolved by ``resolve_runbooks_dir`` (the bundled runbooks stand in for a
    missing default folder).
    """
    directory = resolve_runbooks_dir(directory)
    books = [parse_runbook(p) for p in sorted(directory.glob("*.md")) if p.name.lower() != "readme.md"]
    seen: dict[str, ActionSpec] = {}
    for book in books:
        for action in book.actions:
            known = seen.get(action.id)
            if known is not None and known.model_dump(exclude={"description"}) != action.model_dump(
                exclude={"description"}
            ):
                raise RunbookFormatError(
                    book.path, f"action '{action.id}' differs from its declaration in another runbook"
                )
            seen.setdefault(action.id, action)
    return books
