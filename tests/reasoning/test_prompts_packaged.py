"""An installed (non-editable) opsagent finds its prompts: the wheel carries prompts/ as package data.

prompts/ at the top of the repository is the only copy in git; src/opsagent/prompts links to it, and
the build copies the files into the wheel. The wheel is built from a copy of the project (a build in
the working tree would leave build/ and egg-info behind), unpacked as an install would lay it out, and
loaded from a folder that has no prompts/ of its own and is no checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
# What a build reads: the metadata files and the trees that become the package.
PROJECT = ("pyproject.toml", "README.md", "NOTICE", "src", "prompts", "runbooks")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("project")
    for name in PROJECT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(
                source,
                project / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(source, project / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(project)],
        check=True,
        timeout=280,
    )
    (built,) = out.glob("opsagent-*.whl")
    return built


def test_wheel_carries_every_prompt_byte_for_byte(wheel: Path) -> None:
    shipped = sorted(p for p in PROMPTS.iterdir() if p.is_file())
    assert shipped, "no prompts in prompts/"
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        for prompt in shipped:
            inside = f"opsagent/prompts/{prompt.name}"
            assert inside in names, f"{prompt.name} is not in the wheel"
            assert whl.read(inside) == prompt.read_bytes()


def test_installed_package_loads_its_prompts(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)  # a pure-Python wheel unpacked is its installed layout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import json, opsagent\n"
        "from pathlib import Path\n"
        "from opsagent.reasoning.prompts import PromptLibrary\n"
        "lib = PromptLibrary(Path('prompts'))\n"
        "names = sorted(p.stem for p in lib.directory.glob('*.j2'))\n"
        "records = [lib.get(n).record.model_dump() for n in names] + [lib.tools().record.model_dump()]\n"
        "print(json.dumps({'package': opsagent.__file__, 'directory': str(lib.directory),"
        " 'records': records}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSAGENT_")}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["package"]).is_relative_to(site), found["package"]
    assert Path(found["directory"]) == site / "opsagent" / "prompts"
    # The same prompts, by name and hash, as the checkout's.
    from opsagent.reasoning.prompts import PromptLibrary

    checkout = PromptLibrary(PROMPTS)
    expected = [checkout.get(r["name"]).record.model_dump() for r in found["records"][:-1]]
    assert found["records"] == [*expected, checkout.tools().record.model_dump()]
    assert len(found["records"]) == len(list(PROMPTS.glob("*.j2"))) + 1
