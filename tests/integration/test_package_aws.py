"""make package-aws's zip, run the way Lambda runs it: beside only what the Python runtime has.

The zip is built once per session, for this machine's architecture (the package holds google-re2's
compiled code, so it runs on the architecture it was built for only), and unpacked into an empty
directory. A fresh `python -I -S` (no site-packages, no PYTHONPATH) gets sys.path = [the unpacked
zip, a directory holding only the runtime's own packages (boto3, botocore, urllib3 1.26, jmespath,
s3transfer, dateutil, six)] plus the standard library, imports `lambda_function` and calls
`handler(event, context)` with an S3 notification that a regex route sends to the DAG. So a
dependency the package forgot fails here, and so does one it should not carry (google-auth,
functions-framework). Airflow is a loopback server that answers like Airflow 2's /api/v1; the test
reads the trigger it received, and the metrics the handler printed.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.standins.mwaa_serverless import MwaaServerlessStandin, Workflow
from tests.unit.stub_airflow import Reply, StubAirflow
from tools.local_airflow import CACHE, REPO
from tools.package_aws import RUNTIMES, PackageError, check_wheel

DAG_ID = "dagtrigger_example"
NAMESPACE = "dagtrigger-package-test"
SERVICE = "dagtrigger"
USERNAME, PASSWORD = "dagtrigger", "not-a-real-password"
RESULT_MARK = "DAGTRIGGER-TEST-RESULT "
# Lambda's name for the architecture of the machine the test runs on.
LAMBDA_ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
# Routes as a user writes them: the date comes out of the object name through RE2.
ROUTES = [
    {
        "name": "daily-sales",
        "match": {"regex": r"^sales/(?P<day>\d{4}-\d{2}-\d{2})/(?P<file>[^/]+)\.csv$"},
        "dag_id": DAG_ID,
        "conf": {"partition": "{day}", "table": "{file}"},
    }
]
# A stand-in for what the python3.12 runtime ships (pure Python, so any platform's wheels do).
# Its urllib3 is 1.26, as the runtime's botocore has it; boto3 new enough for invoke_rest_api.
RUNTIME_PACKAGES = (
    "boto3==1.40.70",
    "botocore==1.40.70",
    "s3transfer==0.14.0",
    "jmespath==1.0.1",
    "urllib3==1.26.20",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
)

S3_EVENT = {
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventTime": "2024-06-01T06:15:02.437Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "dagtrigger-landing",
                "bucket": {"name": "acme-raw-eu", "arn": "arn:aws:s3:::acme-raw-eu"},
                "object": {
                    "key": "sales/2024-06-01/orders.csv",
                    "size": 48213,
                    "eTag": "5eb63bbbe01eeed093cb22bb8f5acdc3",
                    "versionId": "Ly8fN9mYkU3zK0b1qP2rS4tU6vW8xY0A",
                    "sequencer": "00665ABC4E7D1F2A3B",
                },
            },
        }
    ]
}

# Runs in the Lambda-like interpreter. argv: unpacked zip, runtime directory, event file.
HANDLER_SCRIPT = f"""
import importlib.util, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
strays = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
assert not strays, f"site-packages on sys.path: {{strays}}"
for name in ("google", "functions_framework"):
    assert importlib.util.find_spec(name) is None, f"{{name}} is importable"

class Context:
    function_name = "dagtrigger"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dagtrigger"
    aws_request_id = "3f2b1c4d-0000-4000-8000-000000000001"
    def get_remaining_time_in_millis(self):
        return 60_000

import lambda_function
with open(sys.argv[3]) as f:
    event = json.load(f)
result = lambda_function.handler(event, Context())
imported = sorted(m for m in sys.modules if m.split(".")[0] in ("google", "functions_framework"))
re2 = sys.modules.get("re2")
report = {{"result": result, "imported": imported, "re2": re2 and re2.__file__}}
print({RESULT_MARK!r} + json.dumps(report, default=str))
"""


@dataclass(frozen=True)
class LambdaPython:
    executable: str
    version: str  # "3.12", unless this machine has no Python 3.12


def _python_version(executable: str) -> str | None:
    try:
        probe = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


@pytest.fixture(scope="session")
def lambda_python() -> LambdaPython:
    """A Python 3.12 like the runtime's when the machine has one (pyenv's, say), else this one."""
    pyenv = Path.home() / ".pyenv" / "versions"
    candidates = [
        shutil.which("python3.12"),
        *sorted(glob.glob(str(pyenv / "3.12*" / "bin" / "python3.12"))),
        "/usr/bin/python3.12",
    ]
    for candidate in candidates:
        if candidate and _python_version(candidate) == "3.12":
            return LambdaPython(candidate, "3.12")
    return LambdaPython(sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}")


@pytest.fixture(scope="session")
def runtime_site(lambda_python: LambdaPython) -> Path:
    """Only what the Lambda runtime provides, installed once into the cache, then reused."""
    key = hashlib.sha256("\n".join(RUNTIME_PACKAGES).encode()).hexdigest()[:12]
    site = CACHE / f"lambda-runtime-py{lambda_python.version}-{key}"
    stamp = site / ".dagtrigger-installed"
    if stamp.exists():
        return site
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f"{site.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [
            sys.executable, "-m", "uv", "pip", "install", "--quiet",
            "--target", str(partial),
            "--python-version", lambda_python.version,
            "--only-binary", ":all:",
            *RUNTIME_PACKAGES,
        ],
        check=True,
    )  # fmt: skip
    (partial / stamp.name).touch()
    shutil.rmtree(site, ignore_errors=True)  # a half-made one from an interrupted run
    try:
        partial.rename(site)
    except OSError:  # another session finished first: use its copy
        shutil.rmtree(partial, ignore_errors=True)
    return site


def build_zip(zip_path: Path, arch: str, *options: str) -> None:
    build = subprocess.run(
        [
            sys.executable, "-m", "tools.package_aws",
            "--build-dir", str(zip_path.parent / f"build-{zip_path.stem}"),
            "--zip", str(zip_path),
            "--arch", arch,
            *options,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr


@pytest.fixture(scope="session")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory, lambda_python: LambdaPython) -> Path:
    """The zip make package-aws builds, for this machine's architecture."""
    if LAMBDA_ARCH is None:
        pytest.skip(f"Lambda has no {platform.machine()} architecture to build the package for")
    if lambda_python.version != "3.12":
        pytest.skip("google-re2 in the package is built for CPython 3.12, which is not here")
    zip_path = tmp_path_factory.mktemp("package-aws") / "dagtrigger-lambda.zip"
    build_zip(zip_path, LAMBDA_ARCH)
    return zip_path


@pytest.fixture(scope="session")
def lambda_package(lambda_zip: Path) -> Path:
    """The zip, unpacked into an empty directory."""
    unpacked = lambda_zip.parent / "unpacked"
    unpacked.mkdir()
    with zipfile.ZipFile(lambda_zip) as archive:
        archive.extractall(unpacked)
    return unpacked


def run_handler(
    python: LambdaPython, package: Path, runtime: Path, event_file: Path, env: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Run the handler in a fresh interpreter: its result, the JSON lines it printed, all output."""
    command = [python.executable, "-I", "-S", "-c", HANDLER_SCRIPT]
    done = subprocess.run(
        [*command, str(package), str(runtime), str(event_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    results = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert len(results) == 1, output
    lines = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(line))
    return json.loads(results[0].removeprefix(RESULT_MARK)), lines, output


def test_the_zip_holds_the_handler_the_core_and_its_dependencies_only(
    lambda_package: Path,
) -> None:
    top = sorted(path.name for path in lambda_package.iterdir())
    for needed in ("lambda_function.py", "dagtrigger", "aws_lambda_powertools", "re2", "idna"):
        assert needed in top, f"{needed} is missing: {top}"
    for runtime_package in ("boto3", "botocore", "urllib3", "jmespath", "s3transfer", "dateutil"):
        assert runtime_package not in top, f"{runtime_package} is the runtime's: {top}"
    assert not [p for p in lambda_package.rglob("*") if p.name in ("__pycache__", "tests")]


def test_only_google_re2_holds_compiled_code_and_for_this_architecture(
    lambda_package: Path,
) -> None:
    compiled = sorted(
        p.relative_to(lambda_package).as_posix() for p in lambda_package.rglob("*.so")
    )
    assert compiled == [f"re2/_re2.cpython-312-{platform.machine()}-linux-gnu.so"]


def test_the_zip_is_the_same_bytes_when_built_again(lambda_zip: Path, tmp_path: Path) -> None:
    assert LAMBDA_ARCH is not None
    again = tmp_path / "again.zip"
    build_zip(again, LAMBDA_ARCH)

    assert again.read_bytes() == lambda_zip.read_bytes()


def fake_dist_info(tmp_path: Path, *tags: str, purelib: bool = False) -> Path:
    dist_info = tmp_path / "example-1.0.dist-info"
    dist_info.mkdir(parents=True)
    lines = ["Wheel-Version: 1.0", f"Root-Is-Purelib: {str(purelib).lower()}"]
    (dist_info / "WHEEL").write_text("\n".join([*lines, *(f"Tag: {tag}" for tag in tags)]))
    return dist_info


def test_a_compiled_wheel_other_than_google_re2_fails_the_build(tmp_path: Path) -> None:
    dist_info = fake_dist_info(tmp_path, "cp312-cp312-manylinux_2_28_aarch64")

    with pytest.raises(PackageError, match=r"^pydantic-core is not pure Python"):
        check_wheel("pydantic-core", dist_info, "arm64")


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_a_pure_python_wheel_goes_into_either_architecture(tmp_path: Path, arch: str) -> None:
    check_wheel("idna", fake_dist_info(tmp_path, "py3-none-any", purelib=True), arch)


@pytest.mark.parametrize(
    ("tag", "arch"),
    [
        ("cp312-cp312-manylinux_2_28_x86_64", "arm64"),
        ("cp312-cp312-manylinux_2_28_aarch64", "x86_64"),
        ("cp311-cp311-manylinux_2_28_aarch64", "arm64"),
    ],
    ids=["x86_64-for-arm64", "aarch64-for-x86_64", "other-python"],
)
def test_google_re2_for_another_platform_fails_the_build(
    tmp_path: Path, tag: str, arch: str
) -> None:
    with pytest.raises(PackageError, match=r"^google-re2 was installed as \["):
        check_wheel("google-re2", fake_dist_info(tmp_path, tag), arch)


@pytest.mark.parametrize("runtime", ["python3.13", "python3.14"])
def test_google_re2_must_match_the_runtime_the_package_is_built_for(
    tmp_path: Path, runtime: str
) -> None:
    python = RUNTIMES[runtime]
    tag = f"cp{python.replace('.', '')}-cp{python.replace('.', '')}-manylinux_2_28_aarch64"
    check_wheel("google-re2", fake_dist_info(tmp_path / "match", tag), "arm64", python)
    with pytest.raises(PackageError, match=r"^google-re2 was installed as \["):
        check_wheel("google-re2", fake_dist_info(tmp_path / "default", tag), "arm64")


def test_s3_event_routed_by_a_regex_starts_a_run_through_the_packaged_handler(
    lambda_python: LambdaPython, runtime_site: Path, lambda_package: Path, tmp_path: Path
) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(S3_EVENT))
    runs = f"/api/v1/dags/{DAG_ID}/dagRuns"
    with StubAirflow() as airflow:
        airflow.always("GET", "/api/v2/version", Reply(404, {"detail": "Not Found"}))
        airflow.always("GET", "/api/v1/version", Reply(200, {"version": "2.10.5"}))
        airflow.always("POST", runs, Reply(200, {"dag_id": DAG_ID, "state": "queued"}))
        env = {
            "AIRFLOW_URL": airflow.url,
            "AIRFLOW_AUTH": "basic",
            "AIRFLOW_USERNAME": USERNAME,
            "AIRFLOW_PASSWORD": PASSWORD,
            "DAGTRIGGER_ROUTES": json.dumps(ROUTES),
            "DAGTRIGGER_DEADLINE": "10",
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        outcome, lines, output = run_handler(
            lambda_python, lambda_package, runtime_site, event_file, env
        )
        posts = airflow.received("POST", runs)

    assert outcome["imported"] == [], output
    assert outcome["re2"].startswith(str(lambda_package)), output
    assert len(posts) == 1, output
    credentials = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert posts[0].headers.get("Authorization") == f"Basic {credentials}"
    body = posts[0].json()
    assert body["dag_run_id"].startswith("s3__ObjectCreated"), body
    assert "acme-raw-eu_sales_2024-06-01_orders.csv" in body["dag_run_id"], body
    conf = body["conf"]
    assert conf["provider"] == "s3"
    assert conf["event_type"] == "ObjectCreated:Put"
    assert (conf["bucket"], conf["name"]) == ("acme-raw-eu", "sales/2024-06-01/orders.csv")
    assert conf["uri"] == "s3://acme-raw-eu/sales/2024-06-01/orders.csv"
    assert conf["size"] == 48213
    assert conf["version"] == "Ly8fN9mYkU3zK0b1qP2rS4tU6vW8xY0A"
    assert (conf["partition"], conf["table"]) == ("2024-06-01", "orders")

    # The EMF record CloudWatch turns into metrics: infra/aws's alarms read Failed in this
    # namespace with the dimension service.
    emf = [line for line in lines if "_aws" in line]
    assert emf, output
    directive = emf[-1]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert ["service"] in directive["Dimensions"]
    assert emf[-1]["service"] == SERVICE
    assert emf[-1]["RunsCreated"] in (1, [1], 1.0), emf[-1]


def test_with_the_sdk_the_packaged_handler_starts_an_mwaa_serverless_workflow_run(
    lambda_python: LambdaPython, runtime_site: Path, tmp_path: Path
) -> None:
    """The runtime's botocore (1.40 here) does not know MWAA Serverless; WITH_SDK=1's does."""
    if LAMBDA_ARCH is None or lambda_python.version != "3.12":
        pytest.skip("the package is built for CPython 3.12 on a Lambda architecture")
    assert not (runtime_site / "botocore" / "data" / "mwaa-serverless").exists()
    zip_path = tmp_path / "with-sdk.zip"
    build_zip(zip_path, LAMBDA_ARCH, "--with-sdk")
    package = tmp_path / "with-sdk"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(package)
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(S3_EVENT))
    with MwaaServerlessStandin([Workflow("etl")]) as service:
        env = {
            **service.client_env(),
            "MWAA_SERVERLESS_WORKFLOW": service.arn("etl"),
            "DAGTRIGGER_DEADLINE": "10",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        first, _, output = run_handler(lambda_python, package, runtime_site, event_file, env)
        again, _, _ = run_handler(lambda_python, package, runtime_site, event_file, env)
        runs = service.runs_of("etl")

    assert [r["outcome"] for r in first["result"]["runs"]] == ["created"], output
    # A replay within a second of the run's start is reported as created (README: Idempotency
    # window); what counts is that the token started no second run.
    [replayed] = again["result"]["runs"]
    assert replayed["dag_run_id"] == first["result"]["runs"][0]["dag_run_id"]
    assert len(runs) == 1
