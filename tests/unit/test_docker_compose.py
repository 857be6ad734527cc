"""docker-compose.yaml and the Dockerfile, checked for structure: no Docker engine is needed.

What is checked is what would break ``docker compose up`` in ways that only show at run time:
services that cannot find each other (names, ports, listen addresses), Airflow components that
disagree (executor, JWT secret, image, code mounts), start-up order, health checks that cannot
succeed in the image, ports exposed beyond loopback, and an image that is not the pinned set.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

EMULATOR = "sagemaker-emulator"
POSTGRES = "postgres"
API_SERVER = "airflow-apiserver"
INIT = "airflow-init"
AIRFLOW_SERVICES = (INIT, API_SERVER, "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
LONG_RUNNING = tuple(name for name in (POSTGRES, EMULATOR, *AIRFLOW_SERVICES) if name != INIT)
CODE_DIRS = ("dags", "plugins", "include")
# Executables the health checks may run inside our image (python:*-slim has no curl or wget).
IMAGE_EXECUTABLES = {"python", "python3", "airflow", "sagemaker-emulator"}
AIRFLOW_API_SERVER_DEFAULT_PORT = 8080
AIRFLOW_SCHEDULER_HEALTH_DEFAULT_PORT = 8974
EMULATOR_DEFAULT_PORT = 4566


# --- helpers ---------------------------------------------------------------------------------


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command(service: str) -> list[str]:
    cmd = SERVICES[service].get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def option(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def compose_default(value: str) -> str:
    """``${VAR:-default}`` -> ``default`` (what compose substitutes when VAR is unset)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", value)


def emulator_port() -> int:
    port = option(command(EMULATOR), "--port") or environment(EMULATOR).get("EMULATOR_PORT")
    return int(port or EMULATOR_DEFAULT_PORT)


def api_server_port() -> int:
    return int(option(command(API_SERVER), "--port") or option(command(API_SERVER), "-p")
               or AIRFLOW_API_SERVER_DEFAULT_PORT)


def scheduler_health_port() -> int:
    env = environment("airflow-scheduler")
    return int(env.get("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT", AIRFLOW_SCHEDULER_HEALTH_DEFAULT_PORT))


LISTEN_PORTS = {EMULATOR: emulator_port, API_SERVER: api_server_port, "airflow-scheduler": scheduler_health_port}


def published_ports(service: str) -> list[tuple[str, int | None, int]]:
    """(host ip, host port, container port) of every ``ports`` entry, short or long syntax."""
    entries = []
    for entry in SERVICES[service].get("ports") or []:
        if isinstance(entry, dict):
            entries.append((entry.get("host_ip", "0.0.0.0"), int(entry["published"]) if entry.get("published") else None,
                            int(entry["target"])))
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2) if spec.count(":") >= 2 else spec.split(":")
        if len(parts) == 3:
            entries.append((parts[0].strip("[]"), int(parts[1]) if parts[1] else None, int(parts[2])))
        elif len(parts) == 2:
            entries.append(("0.0.0.0", int(parts[0]), int(parts[1])))
        else:
            entries.append(("0.0.0.0", None, int(parts[0])))
    return entries


def healthcheck_argv(service: str) -> list[str]:
    test = SERVICES[service]["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    if kind == "CMD-SHELL":
        return shlex.split(" ".join(rest).replace("$$", "$"))
    assert kind == "CMD", f"{service}: healthcheck test must start with CMD or CMD-SHELL, not {kind!r}"
    return rest


def healthcheck_urls(service: str) -> list[str]:
    return re.findall(r"https?://[^\s'\"]+", " ".join(healthcheck_argv(service)))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def workdir() -> PurePosixPath:
    dirs = [args for keyword, args in dockerfile() if keyword == "WORKDIR"]
    assert dirs, "the Dockerfile sets no WORKDIR"
    return PurePosixPath(dirs[-1])


def copies() -> list[tuple[int, list[str], str]]:
    """(instruction index, sources, destination) of every COPY without --from."""
    found = []
    for index, (keyword, args) in enumerate(dockerfile()):
        if keyword == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            if "--from" not in args:
                found.append((index, parts[:-1], parts[-1]))
    return found


def image_path(destination: str, source: str) -> PurePosixPath:
    """Where ``COPY source destination`` puts ``source``, resolved against WORKDIR."""
    dest = PurePosixPath(destination)
    if not dest.is_absolute():
        dest = workdir() / dest
    return dest / PurePosixPath(source).name if destination.endswith("/") or destination in (".", "./") else dest


# --- services ----------------------------------------------------------------------------------


def test_every_service_is_defined():
    assert set(SERVICES) >= {POSTGRES, EMULATOR, *AIRFLOW_SERVICES}


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_use_the_local_executor(service):
    assert environment(service)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_airflow_services_sign_and_verify_tokens_with_one_secret():
    secrets = {environment(service).get("AIRFLOW__API_AUTH__JWT_SECRET") for service in AIRFLOW_SERVICES}
    assert len(secrets) == 1, f"different JWT secrets: {secrets}"
    (secret,) = secrets
    assert secret and compose_default(secret), "the JWT secret must be set (and non-empty by default)"


def build_context(service: str) -> tuple[Path, Path]:
    build = SERVICES[service].get("build")
    assert build, f"{service} is not built from the repository"
    if isinstance(build, str):
        build = {"context": build}
    context = (REPO / build.get("context", ".")).resolve()
    return context, context / build.get("dockerfile", "Dockerfile")


@pytest.mark.parametrize("service", (EMULATOR, *AIRFLOW_SERVICES))
def test_airflow_and_the_emulator_run_one_image_built_from_the_repositorys_dockerfile(service):
    context, docker_file = build_context(service)
    assert context == REPO
    assert docker_file == REPO / "Dockerfile" and docker_file.is_file()
    assert SERVICES[service].get("image") == SERVICES[EMULATOR]["image"], "every service must run the same image"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_mount_the_code_where_the_image_installed_it(service):
    mounts = {}
    for volume in SERVICES[service].get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume["target"]
        else:
            source, target = str(volume).split(":")[:2]
        if source and source.startswith("."):
            mounts[(REPO / source).resolve()] = PurePosixPath(target)
    for name in CODE_DIRS:
        assert mounts.get(REPO / name) == workdir() / name, f"{service} does not mount ./{name} at {workdir() / name}"
    env = environment(service)
    assert PurePosixPath(env["AIRFLOW__CORE__DAGS_FOLDER"]) == workdir() / "dags"
    assert PurePosixPath(env["AIRFLOW__CORE__PLUGINS_FOLDER"]) == workdir() / "plugins"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_start_after_postgres_and_the_emulator_are_healthy(service):
    depends_on = SERVICES[service].get("depends_on") or {}
    assert isinstance(depends_on, dict), f"{service}: depends_on needs conditions, not a bare list"
    assert depends_on.get(POSTGRES, {}).get("condition") == "service_healthy"
    assert depends_on.get(EMULATOR, {}).get("condition") == "service_healthy"
    if service != INIT:
        assert depends_on.get(INIT, {}).get("condition") == "service_completed_successfully", (
            f"{service} must wait for the database migration")


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_the_aws_connection_points_at_the_emulator_service(service):
    connection = json.loads(environment(service)["AIRFLOW_CONN_AWS_DEFAULT"])
    assert connection["conn_type"] == "aws"
    extra = connection["extra"]
    if isinstance(extra, str):
        extra = json.loads(extra)
    url = urlsplit(extra["endpoint_url"])
    assert url.scheme == "http"
    assert url.hostname == EMULATOR, "containers reach each other by service name"
    assert url.port == emulator_port(), "endpoint_url must use the port the emulator command listens on"
    assert extra.get("region_name")


def test_the_emulator_listens_on_all_interfaces_inside_its_container():
    # The default, 127.0.0.1, would be unreachable from the Airflow containers.
    host = option(command(EMULATOR), "--host") or environment(EMULATOR).get("EMULATOR_HOST")
    assert host in ("0.0.0.0", "::")


def test_the_emulator_command_is_a_console_script_of_the_repository():
    assert command(EMULATOR)[0] in PYPROJECT["project"]["scripts"]
    assert command(EMULATOR)[1] == "serve"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_the_metadata_database_is_the_postgres_service(service):
    url = urlsplit(environment(service)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres = environment(POSTGRES)
    assert url.scheme.startswith("postgresql")
    assert url.hostname == POSTGRES
    assert (url.username, url.password, url.path.lstrip("/")) == (
        postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_task_workers_reach_the_execution_api_on_the_api_server(service):
    url = urlsplit(environment(service)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (url.hostname, url.port or 80) == (API_SERVER, api_server_port())
    assert url.path.rstrip("/") == "/execution"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_ports_are_published_on_loopback_only(service):
    for host_ip, _, container_port in published_ports(service):
        assert host_ip == "127.0.0.1", f"{service} publishes {container_port} on {host_ip}, not loopback only"
        if service in LISTEN_PORTS:
            assert container_port == LISTEN_PORTS[service](), f"{service} does not listen on {container_port}"


def test_the_ui_and_the_emulator_are_published():
    assert [p[2] for p in published_ports(API_SERVER)] == [api_server_port()]
    assert [p[2] for p in published_ports(EMULATOR)] == [emulator_port()]


# --- health checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_have_a_health_check_that_can_run_in_their_image(service):
    healthcheck = SERVICES[service].get("healthcheck")
    assert healthcheck and not healthcheck.get("disable"), f"{service} has no health check"
    argv = healthcheck_argv(service)
    if SERVICES[service].get("image") == SERVICES[EMULATOR]["image"]:
        assert argv[0] in IMAGE_EXECUTABLES, f"{service}: {argv[0]} is not in the image"
    for url in healthcheck_urls(service):
        parsed = urlsplit(url)
        assert parsed.hostname in ("localhost", "127.0.0.1"), f"{service} checks {url}, not itself"
        assert parsed.port == LISTEN_PORTS[service](), f"{service} checks {url}, not the port it listens on"


def test_the_emulator_health_check_calls_the_emulators_health_route():
    from sagemaker_emulator.config import Settings
    from sagemaker_emulator.server import create_app

    app = create_app(Settings())
    get_routes = {route.resource.canonical for route in app.router.routes() if route.method == "GET"}
    (url,) = healthcheck_urls(EMULATOR)
    assert urlsplit(url).path in get_routes


def test_the_scheduler_serves_the_health_endpoint_its_check_calls():
    assert environment("airflow-scheduler").get("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "").lower() == "true"
    (url,) = healthcheck_urls("airflow-scheduler")
    assert urlsplit(url).path == "/health"


@pytest.mark.parametrize(("service", "job_type"), [("airflow-dag-processor", "DagProcessorJob"),
                                                    ("airflow-triggerer", "TriggererJob")])
def test_job_services_check_their_own_job(service, job_type):
    argv = healthcheck_argv(service)
    assert argv[:3] == ["airflow", "jobs", "check"]
    assert option(argv, "--job-type") == job_type


def test_postgres_health_check_uses_the_configured_user():
    argv = healthcheck_argv(POSTGRES)
    assert argv[0] == "pg_isready"
    assert option(argv, "-U") == environment(POSTGRES)["POSTGRES_USER"]


# --- the image ---------------------------------------------------------------------------------


def run_lines() -> list[tuple[int, str]]:
    return [(index, args) for index, (keyword, args) in enumerate(dockerfile()) if keyword == "RUN"]


def test_the_image_installs_the_pinned_requirements():
    copied = [(index, image_path(dest, "requirements.txt")) for index, sources, dest in copies()
              if "requirements.txt" in sources]
    assert copied, "requirements.txt is not copied into the image"
    copy_index, path = copied[0]
    installs = [index for index, args in run_lines()
                if index > copy_index and re.search(rf"pip install .*-r\s+{re.escape(str(path))}(\s|$)", args)]
    assert installs, f"no RUN installs -r {path}"


def test_the_image_installs_the_repository_after_its_sources_without_changing_the_pinned_set():
    packages_from = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]
    needed = {"pyproject.toml", *packages_from}
    copied_at = {source.rstrip("/"): index for index, sources, _ in copies() for source in sources}
    assert needed <= set(copied_at), f"not copied into the image: {needed - set(copied_at)}"
    requirement_installs = [index for index, args in run_lines() if " -r " in f" {args} "]
    repo_installs = [(index, args) for index, args in run_lines()
                     if re.search(r"pip install (\S+ )*(-e )?\.(\s|$)", args)]
    assert repo_installs, "the repository itself is never installed (pip install . / -e .)"
    index, args = repo_installs[-1]
    assert index > max(copied_at[name] for name in needed), "the repository is installed before its sources are copied"
    assert index > max(requirement_installs), "the repository must be installed after the pinned requirements"
    assert "--no-deps" in args, "installing the repository must not re-resolve (and change) the pinned set"


def test_the_image_python_matches_the_lock():
    header = (REPO / "requirements.txt").read_text().splitlines()[:5]
    locked = re.search(r"--python-version[ =](\d+\.\d+)", "\n".join(header))
    assert locked, "requirements.txt does not say which Python it was compiled for"
    base = next(args for keyword, args in dockerfile() if keyword == "FROM")
    assert re.search(rf"python:{re.escape(locked.group(1))}(\D|$)", base), f"{base} is not Python {locked.group(1)}"


def test_the_airflow_services_run_as_the_user_the_image_prepared():
    users = [args for keyword, args in dockerfile() if keyword == "USER"]
    assert users, "the image runs as root"
    uid = users[-1].split(":")[0]
    for service in AIRFLOW_SERVICES:
        user = str(SERVICES[service].get("user", users[-1]))
        assert user.split(":")[0] == uid


def test_the_build_context_leaves_out_the_virtualenv_and_git():
    # Every service builds from the repository root; without this the local .venv (hundreds of
    # MB) is sent to the Docker daemon on every build.
    ignore = REPO / ".dockerignore"
    assert ignore.is_file()
    patterns = {line.strip().strip("/") for line in ignore.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".venv", ".git"} <= patterns
