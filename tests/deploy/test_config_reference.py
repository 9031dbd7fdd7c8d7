"""docs/CONFIGURATION.md is exactly what scripts/gen_config_reference.py generates from Settings.

When this fails after adding or changing a setting: `python scripts/gen_config_reference.py`.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from opsagent.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_config_reference.py"
REFERENCE = ROOT / "docs" / "CONFIGURATION.md"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def env_names(model: type[BaseModel], prefix: str = "OPSAGENT_") -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_configuration_reference_is_up_to_date() -> None:
    expected = generator().render()
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert current == expected, (
        "docs/CONFIGURATION.md is out of date: run `python scripts/gen_config_reference.py`"
    )


def test_reference_lists_every_setting_with_its_env_var() -> None:
    text = generator().render()
    for name in env_names(Settings):
        assert f"`{name}`" in text, name


def test_render_does_not_depend_on_the_environment(monkeypatch) -> None:
    """Defaults come from the code, not from whoever runs the generator."""
    module = generator()
    before = module.render()
    monkeypatch.setenv("OPSAGENT_LLM__MODEL", "something-local")
    monkeypatch.setenv("OPSAGENT_AUTONOMY_LEVEL", "L4")
    assert module.render() == before


def test_check_mode_exits_non_zero_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "CONFIGURATION.md"
    stale.write_text("# stale\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--output", str(stale)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr
