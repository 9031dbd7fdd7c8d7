"""Generate docs/CONFIGURATION.md from ``opsagent.config.Settings``.

    python scripts/gen_config_reference.py            # rewrite docs/CONFIGURATION.md
    python scripts/gen_config_reference.py --check    # exit 1 when the file is out of date

The reference is generated, never edited by hand, so it cannot drift from the code: a test
(tests/deploy/test_config_reference.py) fails when the file differs from this script's output.
Descriptions come from the code itself, in this order: ``Field(description=...)``, an attribute
docstring, or the ``#`` comment lines directly above the field in its class.
"""

from __future__ import annotations

import argparse
import ast
import enum
import inspect
import json
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from opsagent.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "CONFIGURATION.md"
ENV_PREFIX = "OPSAGENT_"
NESTED = "__"
# Defaults longer than this are shown in a block under the table instead of in a cell.
MAX_INLINE_DEFAULT = 60


class Row(NamedTuple):
    path: str
    env: str
    type: str
    default: str
    description: str
    long_default: str | None


def field_comments(cls: type) -> dict[str, str]:
    """Attribute docstrings and the comment block directly above each annotated field of ``cls``."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    tree = ast.parse(source)
    class_def = tree.body[0]
    if not isinstance(class_def, ast.ClassDef):
        return {}
    found: dict[str, str] = {}
    body = class_def.body
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        following = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[name] = " ".join(following.value.value.split())
            continue
        comment: list[str] = []
        line_no = node.lineno - 2  # 0-based index of the line above the field
        while line_no >= 0 and lines[line_no].strip().startswith("#"):
            comment.insert(0, lines[line_no].strip().lstrip("#").strip())
            line_no -= 1
        if comment:
            found[name] = " ".join(comment)
    return found


def type_name(annotation: Any) -> str:
    """A reader's name for a type: ``str | None``, ``"a" | "b"``, ``list[PolicyRule]``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(json.dumps(member.value) for member in annotation)
    if annotation is SecretStr:
        return "secret str"
    return getattr(annotation, "__name__", str(annotation))


def plain(value: Any) -> Any:
    """A default as JSON-able data (what one would write in opsagent.yaml)."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="python"))
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def default_of(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class when a field is a (possibly optional) nested model, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def rows_of(model: type[BaseModel], prefix: str) -> list[tuple[str, str, list[Row]]]:
    """Sections (title, intro, rows): this model's scalar fields, then one section per nested model."""
    comments = field_comments(model)
    rows: list[Row] = []
    nested: list[tuple[str, str, list[Row]]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        sub = nested_model(info.annotation)
        if sub is not None:
            nested.extend(rows_of(sub, f"{path}."))
            continue
        value = plain(default_of(info))
        rendered = "" if value is None else json.dumps(value, ensure_ascii=False)
        long_default = None
        if len(rendered) > MAX_INLINE_DEFAULT:
            long_default = rendered
            rendered = "see below"
        env = ENV_PREFIX + path.replace(".", NESTED).upper()
        description = info.description or comments.get(name, "")
        rows.append(Row(path, env, type_name(info.annotation), rendered, description, long_default))
    # Only the class's own docstring: an undocumented model would otherwise inherit BaseModel's.
    own_doc = model.__dict__.get("__doc__")
    doc = inspect.cleandoc(own_doc) if isinstance(own_doc, str) and model is not Settings else ""
    title = prefix.rstrip(".") or "general"
    return [(title, " ".join(doc.split()), rows), *nested]


def item_models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """Models that appear as items of list/dict fields anywhere under ``model``, in order of appearance."""
    found: list[type[BaseModel]] = []

    def visit(annotation: Any) -> None:
        sub = nested_model(annotation)
        if sub is not None:
            for info in sub.model_fields.values():
                visit_items(info.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    def visit_items(annotation: Any) -> None:
        if nested_model(annotation) is not None:
            visit(annotation)
            return
        for arg in typing.get_args(annotation):
            item = nested_model(arg)
            if item is not None and item not in found:
                found.append(item)
                for info in item.model_fields.values():
                    visit_items(info.annotation)
            else:
                visit_items(arg)

    for info in model.model_fields.values():
        visit_items(info.annotation)
    return found


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by scripts/gen_config_reference.py from opsagent.config.Settings. Do not edit:",
        "     change the code, then run `python scripts/gen_config_reference.py`. -->",
        "",
        "Every setting can be given, highest precedence first, as a constructor argument, as an",
        "environment variable (prefix `OPSAGENT_`, nested sections joined with `__`), or in the YAML",
        "file named by `OPSAGENT_CONFIG_FILE` (default `./opsagent.yaml` when it exists), using the",
        "dotted path as nesting. Lists, dicts and nested objects take JSON in an environment variable,",
        'e.g. `OPSAGENT_PROMETHEUS__HEADERS=\'{"X-Scope-OrgID": "team-a"}\'`. An empty default means',
        "unset (`None`).",
        "",
    ]
    for title, intro, rows in rows_of(Settings, ""):
        if not rows:
            continue
        out += [f"## `{title}`" if title != "general" else "## General", ""]
        if intro:
            out += [intro, ""]
        out += [
            "| setting | environment variable | type | default | description |",
            "|---|---|---|---|---|",
        ]
        long_defaults: list[Row] = []
        for row in rows:
            default = f"`{cell(row.default)}`" if row.default and row.long_default is None else row.default
            out.append(
                f"| `{row.path}` | `{row.env}` | `{cell(row.type)}` | {default} | {cell(row.description)} |"
            )
            if row.long_default is not None:
                long_defaults.append(row)
        out.append("")
        for row in long_defaults:
            # YAML, as it would be written in opsagent.yaml (JSON would escape every quote of a query).
            pretty = yaml.safe_dump(
                json.loads(row.long_default or "null"), sort_keys=False, allow_unicode=True, width=1000
            ).rstrip("\n")
            out += [f"Default of `{row.path}`:", "", "```yaml", pretty, "```", ""]
    items = item_models(Settings)
    if items:
        out += [
            "## Item types",
            "",
            "Lists and dicts of objects above take items of these shapes (in YAML, or as JSON in the",
            "environment variable).",
            "",
        ]
        for model in items:
            own_doc = model.__dict__.get("__doc__")
            comments = field_comments(model)
            out += [f"### `{model.__name__}`", ""]
            if isinstance(own_doc, str):
                out += [" ".join(own_doc.split()), ""]
            out += ["| field | type | default | description |", "|---|---|---|---|"]
            for name, info in model.model_fields.items():
                value = plain(default_of(info))
                default = "" if value is None else f"`{cell(json.dumps(value, ensure_ascii=False))}`"
                if info.is_required():
                    default = "required"
                description = info.description or comments.get(name, "")
                out.append(
                    f"| `{name}` | `{cell(type_name(info.annotation))}` | {default} | {cell(description)} |"
                )
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run python scripts/gen_config_reference.py", file=sys.stderr
            )
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
