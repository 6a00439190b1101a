"""``liandong simulate SCENARIO``: city command centres that speak exactly their adapters'
dialects, against a running hub.

The simulator runs the scenario's city adapters itself (the same manifests, codecs and
mappings as ``liandong adapter run``; only where they connect is changed) and plays each
city's system on the far side of its adapter: HTTP cities get a task endpoint of their own,
MQTT cities connect to the broker with their own credential, Kafka cities use their own topics.
Every city reports its incidents at their offsets and answers its tasks as the scenario says
(delays, declines with reasons, silence), deterministically for a ``--seed``.

What it needs: the hub's URL; each adapter's hub token (``--tokens FILE``, else the variable
its manifest names in ``hub.token_env``); for MQTT cities a broker (``--mqtt local`` starts a
private mosquitto with Liandong's configuration; ``--mqtt HOST:PORT`` uses one whose
passwords are given in the tokens file); for Kafka cities a cluster (``--kafka local`` starts
Tansu, from the dev extra; ``--kafka HOST:PORT`` uses one). A city whose transport has no
place given is left out, with the reason.

This Typer app reaches ``liandong`` through the ``liandong.commands`` entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from hub.errors import HubError

# A Typer app added to `liandong` is a command group; options may follow the scenario only
# if the group lets them in among its arguments.
app = typer.Typer(
    help="Simulated city command centres playing a scenario against the hub.",
    context_settings={"allow_interspersed_args": True},
)

TokensOption = Annotated[
    Path | None,
    typer.Option(
        "--tokens",
        help="YAML/JSON: adapter id -> hub token, or -> {hub_token, city_mqtt_password}",
    ),
]


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _secrets(path: Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    from adapters.framework.yamldoc import load_yaml

    document, _ = load_yaml(path)
    if not isinstance(document, dict):
        raise HubError(f"{path}: adapter id -> token (or a mapping with hub_token)")
    found: dict[str, dict[str, str]] = {}
    for adapter_id, value in document.items():
        entry = {"hub_token": value} if isinstance(value, str) else dict(value or {})
        found[str(adapter_id)] = {str(k): str(v) for k, v in entry.items()}
    return found


def _tokens(scenario: Any, given: dict[str, dict[str, str]]) -> dict[str, str]:
    from adapters.framework.discovery import find

    tokens: dict[str, str] = {}
    for adapter_id in scenario.cities:
        token = given.get(adapter_id, {}).get("hub_token")
        if token is None:
            manifest = find(adapter_id).manifest
            assert manifest is not None
            token = os.environ.get(manifest.hub.token_env, "").strip() or None
        if token:
            tokens[adapter_id] = token
    return tokens


def _address(text: str, what: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise HubError(f"{what}: HOST:PORT or 'local', not '{text}'")
    return host, int(port)


@contextlib.contextmanager
def _brokers(
    mqtt: str | None, kafka: str | None, cities: dict[str, str], given: dict[str, dict[str, str]]
) -> Iterator[tuple[Any, Any]]:
    """The places the MQTT and Kafka cities meet their adapters (local brokers are started
    here and stopped on the way out)."""
    from adapters.simulator.wiring import KafkaPlace, MqttPlace

    with contextlib.ExitStack() as stack:
        mqtt_place = kafka_place = None
        if mqtt == "local":
            from adapters.transports.mqtt_broker import LocalBroker

            users = {code: secrets.token_urlsafe(16) for code in cities.values()}
            link = secrets.token_urlsafe(16)
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="liandong-sim-")))
            broker = stack.enter_context(LocalBroker(root, {**users, "liandong-link": link}))
            broker.start()
            assert broker.port is not None
            mqtt_place = MqttPlace(broker.host, broker.port, link, users)
        elif mqtt:
            host, port = _address(mqtt, "--mqtt")
            passwords = {
                code: given[adapter_id]["city_mqtt_password"]
                for adapter_id, code in cities.items()
                if "city_mqtt_password" in given.get(adapter_id, {})
            }
            mqtt_place = MqttPlace(host, port, None, passwords)
        if kafka == "local":
            from adapters.transports.kafka_broker import TANSU_CLIENT_OPTIONS, TansuBroker

            tansu = TansuBroker()
            stack.callback(tansu.cleanup)
            tansu.start()
            kafka_place = KafkaPlace(tansu.bootstrap, TANSU_CLIENT_OPTIONS)
        elif kafka:
            _address(kafka.split(",")[0], "--kafka")
            kafka_place = KafkaPlace(kafka)
        yield mqtt_place, kafka_place


@app.callback(invoke_without_command=True)
def simulate(
    scenario_path: Annotated[Path, typer.Argument(help="scenario YAML", metavar="SCENARIO")],
    hub: Annotated[
        str | None, typer.Option(help="hub URL (env LIANDONG_HUB_URL; else http://127.0.0.1:8000)")
    ] = None,
    tokens_file: TokensOption = None,
    mqtt: Annotated[str | None, typer.Option(help="broker HOST:PORT, or 'local'")] = None,
    kafka: Annotated[str | None, typer.Option(help="cluster HOST:PORT[,...], or 'local'")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: the scenario's)")] = None,
    speed: Annotated[float, typer.Option(help="scenario seconds per real second")] = 1.0,
    run_id: Annotated[str, typer.Option(help="suffix of incident identifiers (default: now)")] = "",
    run_for: Annotated[str | None, typer.Option(help="scenario time to run, H:MM:SS")] = None,
    only: Annotated[list[str] | None, typer.Option(help="play only these adapter ids")] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help="adapters' task polling, s (default: manifest)")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="write what happened as JSON")] = None,
    check: Annotated[bool, typer.Option("--check", help="check the scenario and stop")] = False,
) -> None:
    """Play SCENARIO: run its cities' adapters and their simulated systems until it ends."""
    from adapters.simulator.play import Setup, Simulation, check_scenario
    from adapters.simulator.region_scenario import load_region_scenario, offset_s

    logging.basicConfig(
        level=os.environ.get("LIANDONG_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        scenario = load_region_scenario(scenario_path)
        problems = check_scenario(scenario)
        if problems:
            _fail("the scenario cannot be played:\n  " + "\n  ".join(problems))
        if check:
            typer.echo(f"ok: {scenario.title} ({len(scenario.incidents())} incidents)")
            raise typer.Exit(0)
        given = _secrets(tokens_file)
        tokens = _tokens(scenario, given)
        duration = offset_s(run_for) if run_for else None
    except (HubError, ValueError) as exc:
        _fail(str(exc))
    url = hub or os.environ.get("LIANDONG_HUB_URL", "").strip() or "http://127.0.0.1:8000"
    cities = _mqtt_cities(scenario)

    async def main(mqtt_place: Any, kafka_place: Any) -> dict[str, Any]:
        setup = Setup(
            hub_url=url.rstrip("/"),
            tokens=tokens,
            mqtt=mqtt_place,
            kafka=kafka_place,
            seed=seed,
            speed=speed,
            run_id=run_id,
            poll_interval_s=poll_interval,
            only=frozenset(only) if only else None,
        )
        simulation = Simulation(scenario, setup)
        waiting = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            if waiting is not None:
                loop.add_signal_handler(sig, waiting.cancel)
        with contextlib.suppress(asyncio.CancelledError):  # Ctrl-C or SIGTERM: stop, report
            async with simulation:
                await simulation.wait(duration)
        return simulation.report()

    try:
        with _brokers(mqtt, kafka, cities, given) as (mqtt_place, kafka_place):
            result = asyncio.run(main(mqtt_place, kafka_place))
    except (HubError, OSError, RuntimeError) as exc:
        _fail(str(exc))
    _summarise(result)
    if report is not None:
        report.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


def _mqtt_cities(scenario: Any) -> dict[str, str]:
    """Adapter id -> jurisdiction of the scenario's MQTT cities (their broker usernames)."""
    from adapters.framework.discovery import find
    from adapters.framework.manifest import MqttTransport

    cities = {}
    for adapter_id in scenario.cities:
        manifest = find(adapter_id).manifest
        if manifest is not None and isinstance(manifest.transport, MqttTransport):
            cities[adapter_id] = manifest.jurisdiction
    return cities


def _summarise(result: dict[str, Any]) -> None:
    typer.echo(f"\n{result['scenario']} (seed {result['seed']}, run {result['run_id']})")
    for name, why in result["skipped"].items():
        typer.echo(f"  {name:<10} not played: {why}")
    for name, city in result["cities"].items():
        answers = [a["answer"] for t in city["tasks"] for a in t["answers"]]
        silent = sum(1 for t in city["tasks"] if t["silent"])
        typer.echo(
            f"  {name:<10} {city['format']:<15} incidents {len(city['incidents'])}, "
            f"tasks {len(city['tasks'])}, acknowledged {answers.count('acknowledge')}, "
            f"accepted {answers.count('accept')}, declined {answers.count('decline')}, "
            f"done {answers.count('done')}, silent {silent}"
        )
