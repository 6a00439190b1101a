"""``deploy/`` checked as files (there is no Docker engine here): the compose file parses, every
file and module it names exists, every setting it passes is documented, images are pinned, the
hub runs two replicas and the long-running services have health checks.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from hub.bus import topics
from hub.cli import DEMO_JURISDICTIONS

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env" / "liandong.env.example"
# Services that run and stay up, so something must be able to tell whether they work.
LONG_RUNNING_WITH_HEALTH = ("kafka", "postgres", "mosquitto", "hub")
ONE_SHOT = ("kafka-init", "mosquitto-init", "demo-seed")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Where the hub's Dockerfile puts the repository (WORKDIR).
IMAGE_APP_DIR = "/app/"


@cache
def _compose() -> dict[str, Any]:
    # ruamel's safe loader refuses duplicate keys, which Compose would silently merge.
    loaded: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume, short syntax or long."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out.append((source, target))
    return out


def _env_files(service: dict[str, Any]) -> list[tuple[str, bool]]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, str) else files
    return [
        (f, True) if isinstance(f, str) else (f["path"], f.get("required", True)) for f in files
    ]


def _command_words(service: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if isinstance(value, str):
            words.extend(shlex.split(value))
        elif value:
            words.extend(str(v) for v in value)
    return words


def _referenced_paths() -> list[tuple[str, Path]]:
    """Every repository file or folder compose.yaml (and the Dockerfiles it builds) relies on."""
    refs: list[tuple[str, Path]] = []
    for name, service in _services().items():
        build = service.get("build")
        if build:
            context = DEPLOY / (build if isinstance(build, str) else build.get("context", "."))
            refs.append((f"{name}: build context", context))
            dockerfile = context / (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            refs.append((f"{name}: dockerfile", dockerfile))
            refs.extend(
                (f"{name}: COPY in {dockerfile.name}", context / source)
                for source in _dockerfile_copies(dockerfile)
            )
        for source, _ in _volumes(service):
            if source.startswith((".", "/")):
                refs.append((f"{name}: bind mount", (DEPLOY / source).resolve()))
        for path, required in _env_files(service):
            if required:
                refs.append((f"{name}: env_file", DEPLOY / path))
        words = _command_words(service)
        for i, word in enumerate(words):
            if word.startswith(IMAGE_APP_DIR):
                refs.append((f"{name}: file in the image", REPO / word.removeprefix("/app/")))
            if word == "-m" and i + 1 < len(words):
                module = words[i + 1]
                refs.append((f"{name}: python -m {module}", _module_path(module)))
    return refs


def _module_path(module: str) -> Path:
    base = REPO / Path(*module.split("."))
    return base / "__main__.py" if base.is_dir() else base.with_suffix(".py")


def _dockerfile_copies(dockerfile: Path) -> list[str]:
    if not dockerfile.is_file():
        return []
    sources: list[str] = []
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if (
            words
            and words[0].upper() in ("COPY", "ADD")
            and not any(w.startswith("--from") for w in words)
        ):
            sources.extend(w for w in words[1:-1] if not w.startswith("--"))
    return sources


def test_compose_parses_and_has_the_topology() -> None:
    services = _services()
    for name in ("kafka", "kafka-init", "postgres", "mosquitto", "hub", "mqtt-link", "simulator"):
        assert name in services, f"compose.yaml has no service {name}"
    assert services["simulator"].get("profiles") == ["demo"], "the simulator is optional"


def test_every_referenced_file_exists() -> None:
    refs = _referenced_paths()
    assert len(refs) > 10
    outside = [f"{what}: {path}" for what, path in refs if not path.is_relative_to(REPO)]
    assert not outside, "compose.yaml names host paths outside the repository:\n" + "\n".join(
        outside
    )
    missing = [f"{what}: {path.relative_to(REPO)}" for what, path in refs if not path.exists()]
    assert not missing, "compose.yaml refers to files that do not exist:\n" + "\n".join(missing)


def test_every_liandong_setting_in_compose_is_documented() -> None:
    used = set(re.findall(r"LIANDONG_[A-Z0-9_]+", COMPOSE.read_text(encoding="utf-8")))
    for dockerfile in DEPLOY.rglob("Dockerfile"):
        used |= set(re.findall(r"LIANDONG_[A-Z0-9_]+", dockerfile.read_text(encoding="utf-8")))
    documented = set(re.findall(r"LIANDONG_[A-Z0-9_]+", ENV_EXAMPLE.read_text(encoding="utf-8")))
    assert used, "the hub's services are configured through LIANDONG_* settings"
    assert used <= documented, f"not in {ENV_EXAMPLE.name}: {sorted(used - documented)}"


def test_every_compose_variable_is_explained_in_the_readme() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    for secret in _compose().get("secrets", {}).values():
        if "environment" in secret:
            variables.add(secret["environment"])
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert variables, "the database password comes from the environment, not the file"
    unexplained = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not unexplained, f"deploy/README.md does not explain {unexplained}"


def test_images_are_pinned_to_a_major_version_at_least() -> None:
    for name, service in _services().items():
        image = service.get("image")
        assert image or service.get("build"), f"{name} has neither image nor build"
        if not image:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest" and re.match(r"\d+", tag), f"{name}: {image} is not pinned"
    images = {name: service.get("image", "") for name, service in _services().items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert images["mosquitto"].startswith("eclipse-mosquitto:2")
    assert images["postgres"].startswith("postgres:15")
    base = re.search(r"^FROM\s+(\S+)", (DEPLOY / "hub" / "Dockerfile").read_text(), re.M)
    assert base and re.match(r"python:3\.1[1-9]", base.group(1)), "the hub's base image"


def test_kafka_runs_kraft_without_zookeeper() -> None:
    env = _services()["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert env["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false", "topics come from kafka-init"
    assert any(target == env["KAFKA_LOG_DIRS"] for _, target in _volumes(_services()["kafka"]))


def test_kafka_init_creates_exactly_the_hubs_topics() -> None:
    script = (DEPLOY / "kafka" / "create-topics.sh").read_text(encoding="utf-8")
    listed = re.findall(r"^\s+((?:exercise\.)?liandong\.[a-z-]+\.v\d+)", script, re.M)
    assert sorted(listed) == sorted(topics.ALL_TOPICS)


def _mosquitto_conf() -> dict[str, list[str]]:
    """mosquitto.conf's options: name → every value given (comments skipped)."""
    options: dict[str, list[str]] = {}
    conf = DEPLOY / "mosquitto" / "mosquitto.conf"
    for line in conf.read_text(encoding="utf-8").splitlines():
        words = line.split(None, 1)
        if words and not words[0].startswith("#"):
            options.setdefault(words[0], []).append(words[1] if len(words) > 1 else "")
    return options


def _under(path: str, targets: list[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets)


def test_mosquitto_mounts_what_its_configuration_names() -> None:
    mosquitto = _services()["mosquitto"]
    mounts = {target: source for source, target in _volumes(mosquitto)}
    # eclipse-mosquitto's image starts `mosquitto -c /mosquitto/config/mosquitto.conf`.
    assert mounts.get("/mosquitto/config/mosquitto.conf") == "./mosquitto/mosquitto.conf"
    if not (DEPLOY / "mosquitto" / "mosquitto.conf").exists():
        return  # reported by test_every_referenced_file_exists
    conf = _mosquitto_conf()
    (acl_file,) = conf["acl_file"]
    assert mounts.get(acl_file) == "./mosquitto/acl", f"acl_file {acl_file} is not the ACL"
    (password_file,) = conf["password_file"]
    (persistence,) = conf["persistence_location"]
    named = {t: s for t, s in mounts.items() if s in _compose()["volumes"]}
    assert _under(password_file, list(named)), f"password_file {password_file} has no volume"
    assert _under(persistence, list(named)), f"persistence_location {persistence} is not kept"
    for dest in conf.get("log_dest", []):
        if dest.startswith("file "):
            log_dir = str(Path(dest.split()[1]).parent)
            assert _under(log_dir, list(named)), f"log_dest {dest} has no volume"
    # The one-shot init writes the password file into the same volume before the broker starts.
    init = _services()["mosquitto-init"]
    assert mosquitto["depends_on"]["mosquitto-init"]["condition"] == (
        "service_completed_successfully"
    )
    init_mounts = {target: source for source, target in _volumes(init)}
    password_dir = str(Path(password_file).parent)
    assert init_mounts.get(password_dir) == mounts.get(password_dir)
    assert password_file in " ".join(_command_words(init)), "mosquitto-init writes it"


def test_mosquitto_port_is_the_listener_and_the_health_check_watches_it() -> None:
    mosquitto = _services()["mosquitto"]
    ports = [str(p).split(":")[-1] for p in mosquitto["ports"]]
    listeners = ["1883"]
    if (DEPLOY / "mosquitto" / "mosquitto.conf").exists():
        listeners = [value.split()[0] for value in _mosquitto_conf()["listener"]]
    for port in listeners:
        assert port in ports, f"listener {port} is not published"
        assert f":{int(port):04X} " in " ".join(mosquitto["healthcheck"]["test"])


def test_the_hub_runs_two_replicas_after_its_dependencies_are_healthy() -> None:
    hub = _services()["hub"]
    assert hub["deploy"]["replicas"] == 2
    assert "container_name" not in hub, "a fixed name would allow only one replica"
    depends = hub["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    env = hub["environment"]
    assert env["LIANDONG_BUS"] == "kafka://kafka:9092"
    assert env["LIANDONG_DATABASE"].startswith("postgresql://")
    assert env["LIANDONG_HOST"] == "0.0.0.0"
    assert f":{env['LIANDONG_PORT']}/healthz" in " ".join(hub["healthcheck"]["test"])


def test_long_running_services_have_health_checks_and_dependencies_are_sound() -> None:
    services = _services()
    for name in LONG_RUNNING_WITH_HEALTH:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            assert condition in CONDITIONS, f"{name} → {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health"
            if condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{target} is not a one-shot service"
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} runs once"


def test_named_volumes_and_secrets_are_declared() -> None:
    declared_volumes = set(_compose().get("volumes", {}))
    declared_secrets = set(_compose().get("secrets", {}))
    for name, service in _services().items():
        for source, _ in _volumes(service):
            if source and not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        for secret in service.get("secrets", []):
            secret_name = secret if isinstance(secret, str) else secret["source"]
            assert secret_name in declared_secrets, f"{name}: secret {secret_name}"


def test_the_demo_seeds_the_jurisdictions_the_hub_demo_uses() -> None:
    script = (DEPLOY / "hub" / "demo-seed.sh").read_text(encoding="utf-8")
    loop = re.search(r"^for code in ([0-9 ]+); do", script, re.M)
    assert loop, "demo-seed.sh loops over the demo jurisdictions"
    assert tuple(loop.group(1).split()) == DEMO_JURISDICTIONS
    simulator = _command_words(_services()["simulator"])
    assert simulator[:3] == ["python", "-m", "adapters.simulator"]


def test_shell_scripts_parse() -> None:
    for script in sorted(DEPLOY.rglob("*.sh")):
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.relative_to(REPO)}: {result.stderr}"


def test_scripts_in_commands_are_mounted_into_their_service() -> None:
    for name, service in _services().items():
        mounted = {target: source for source, target in _volumes(service)}
        for word in _command_words(service):
            if word.startswith("/opt/liandong/"):
                assert mounted.get(word, "").startswith("./"), f"{name}: {word} is not mounted"


def test_the_mqtt_link_starts_with_a_configuration_the_link_accepts(tmp_path: Path) -> None:
    from adapters.links.__main__ import load_config

    link = _services()["mqtt-link"]
    words = _command_words(link)
    assert words[:2] == ["python", "/opt/liandong/run_mqtt_link.py"]
    script = DEPLOY / "hub" / "run_mqtt_link.py"
    assert '"-m", "adapters.links"' in script.read_text(encoding="utf-8")
    assert _module_path("adapters.links").exists()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt_link_password").write_text("s3cret\n")
    (secrets / "mqtt_link_tokens").write_text('{"310118": "ld_a", "320509": "ld_b"}')
    result = subprocess.run(
        [sys.executable, str(script), *words[2:], "--secrets", str(secrets), "--print"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = tmp_path / "link.json"
    config.write_text(result.stdout)
    loaded = load_config(config)
    assert loaded.hub_url == "http://hub:8000"
    assert sorted(loaded.tokens) == ["310118", "320509"]
    assert loaded.broker_log == Path("/var/log/mosquitto/mosquitto.log")
    assert "s3cret" not in result.stdout and "ld_a" not in result.stdout
    declared = _compose()["secrets"]
    assert {"mqtt_link_password", "mqtt_link_tokens"} <= set(link["secrets"]) <= set(declared)
    # The link follows the broker's log; it must see the file the broker writes.
    log_dest = " ".join(_mosquitto_conf().get("log_dest", []))
    broker_log = words[words.index("--broker-log") + 1]
    assert broker_log in log_dest
    log_volume = {t: s for s, t in _volumes(_services()["mosquitto"])}[str(Path(broker_log).parent)]
    assert (log_volume, str(Path(broker_log).parent)) in _volumes(link)
