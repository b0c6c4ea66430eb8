"""Build the AWS Lambda deployment package for one architecture: `make package-aws`.

    build/lambda/                  what Lambda unpacks into /var/task (infra/aws's CodeUri)
      lambda_function.py           the handler: Handler lambda_function.handler
      dagtrigger/                  the core, without tests or bytecode
      re2/, idna/                  the core's dependencies that the runtime lacks
      aws_lambda_powertools/ ...   Powertools and what it needs that the runtime lacks
    dist/dagtrigger-lambda.zip     the same files, zipped deterministically

The package is built for one architecture, which must be the function's (infra/aws/template.yaml's
`Architecture` parameter, arm64 by default, as here): google-re2, which matches route regexes in
linear time, is compiled code, a manylinux wheel for aarch64 or for x86_64 and for one CPython
version, which must be the function's `Runtime` (python3.12 by default, or python3.13,
python3.14). Build with `make package-aws` for arm64 and python3.12, and e.g. `make package-aws
ARCH=x86_64 RUNTIME=python3.13` for others. Every other wheel must be pure Python
(`Root-Is-Purelib`, a `none-any` tag).

Left out because the python3.12 runtime has them: boto3, botocore, s3transfer, jmespath,
urllib3, python-dateutil, six. The runtime's botocore may predate a service dagtrigger calls
(MWAA Serverless, botocore 1.41 and later): `make package-aws WITH_SDK=1` (`--with-sdk`) puts
boto3, botocore and s3transfer at the versions below into the package, where they come first. The rest comes from PyPI at the versions pinned below, which must
satisfy pyproject.toml's `dependencies` and its `aws` extra (uv refuses the install otherwise); a
new dependency of either fails the build until it is pinned here or named as the runtime's.

The zip lists its files in sorted order, with one timestamp (1980-01-01) and one mode (0644):
the same sources and pins give the same bytes, whatever the checkout's mtimes or umask.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
BUILD_DIR = REPO / "build" / "lambda"
ZIP_PATH = REPO / "dist" / "dagtrigger-lambda.zip"

# infra/aws/template.yaml's Runtime parameter → the CPython the package is built for (Amazon
# Linux 2023 under each).
RUNTIMES = {"python3.12": "3.12", "python3.13": "3.13", "python3.14": "3.14"}
DEFAULT_RUNTIME = "python3.12"  # the template's default
PYTHON_VERSION = RUNTIMES[DEFAULT_RUNTIME]
# Lambda's architecture → uv's target platform (Amazon Linux 2023 has glibc 2.34).
PLATFORMS = {"arm64": "aarch64-manylinux_2_34", "x86_64": "x86_64-manylinux_2_34"}
DEFAULT_ARCH = "arm64"  # infra/aws/template.yaml's Architecture default
# What goes into the package, at exactly these versions.
PINS = {
    "aws-lambda-powertools": "3.37.0",
    "typing-extensions": "4.16.0",
    "google-re2": "1.1.20251105",
    "idna": "3.21",  # not in the runtime: nothing there depends on it
}
# The only wheels that may hold compiled code; each must be built for the chosen architecture.
COMPILED = {"google-re2"}
# What the Lambda Python runtime already provides (pinned only so that resolution is repeatable,
# and urllib3 at the runtime's 1.26 so that the core's requirement is checked against it).
RUNTIME_PROVIDED = {
    "boto3": None,
    "botocore": None,
    "s3transfer": None,
    "jmespath": "1.0.1",
    "urllib3": "1.26.20",
    "python-dateutil": None,
    "six": None,
}
# With --with-sdk: the AWS SDK the tests run with, which knows every service dagtrigger calls.
SDK_PINS = {"boto3": "1.44.18", "botocore": "1.44.18", "s3transfer": "0.19.3"}
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
SKIPPED_DIRS = {"__pycache__", "tests", "test"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class PackageError(Exception):
    """The package cannot be built as asked; the message says why."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements() -> list[str]:
    """The core's dependencies and aws-lambda-powertools, as pyproject.toml asks for them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in project["optional-dependencies"]["aws"]:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]
        if canonical(name) == "aws-lambda-powertools":
            return [*project["dependencies"], str(requirement)]
    raise PackageError("pyproject.toml's `aws` extra does not name aws-lambda-powertools")


def install_dependencies(
    target: Path, arch: str, python: str = PYTHON_VERSION, sdk: dict[str, str] | None = None
) -> None:
    """uv installs the core's dependencies and Powertools for the Lambda runtime into `target`
    (and with `sdk`, those pins of the AWS SDK)."""
    constraints = target.parent / "constraints.txt"
    sdk = sdk or {}
    pins = {**PINS, **{name: v for name, v in RUNTIME_PROVIDED.items() if v}, **sdk}
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
    command = [
        sys.executable, "-m", "uv", "pip", "install", "--quiet",
        "--target", str(target),
        "--python-version", python,
        "--python-platform", PLATFORMS[arch],
        "--only-binary", ":all:",
        "--constraints", str(constraints),
        *requirements(),
        *(f"{name}=={version}" for name, version in {**PINS, **sdk}.items()),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(f"uv could not install the dependencies:\n{result.stderr.strip()}")


def iter_distributions(site: Path) -> Iterator[tuple[str, Path]]:
    for dist_info in sorted(site.glob("*.dist-info")):
        metadata = (dist_info / "METADATA").read_text(encoding="utf-8")
        match = re.search(r"^Name: (.+)$", metadata, re.MULTILINE)
        if match is None:
            raise PackageError(f"{dist_info.name} has no Name in its METADATA")
        yield canonical(match.group(1).strip()), dist_info


def check_wheel(
    name: str, dist_info: Path, arch: str, python_version: str = PYTHON_VERSION
) -> None:
    """Pure Python, or (COMPILED only) built for CPython `python_version` on `arch`."""
    wheel = (dist_info / "WHEEL").read_text(encoding="utf-8")
    tags = re.findall(r"^Tag: (.+)$", wheel, re.MULTILINE)
    if "Root-Is-Purelib: true" in wheel and all(tag.endswith("-none-any") for tag in tags):
        return
    if name not in COMPILED:
        raise PackageError(
            f"{name} is not pure Python (tags {tags}): only {', '.join(sorted(COMPILED))} may "
            "hold compiled code; pin a version of it with a py3-none-any wheel"
        )
    python = "cp" + python_version.replace(".", "")
    machine = PLATFORMS[arch].split("-")[0]
    if not tags or not all(
        tag.startswith(f"{python}-") and tag.endswith(f"_{machine}") for tag in tags
    ):
        raise PackageError(
            f"{name} was installed as {tags}, not as a {python} wheel for {machine} ({arch}): "
            "pin a version of it that has one"
        )


def copy_distribution(site: Path, dist_info: Path, destination: Path) -> int:
    """Copy the files one installed distribution's RECORD lists; their number."""
    copied = 0
    for line in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
        relative = line.rsplit(",", 2)[0] if line else ""
        source = (site / relative).resolve()
        if not relative or not source.is_relative_to(site.resolve()):
            continue  # console scripts land in ../bin: Lambda never runs them
        if source.suffix in SKIPPED_SUFFIXES or "__pycache__" in source.parts:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied += 1
    return copied


def add_dependencies(
    destination: Path, arch: str, python: str = PYTHON_VERSION, *, with_sdk: bool = False
) -> list[str]:
    """Install into a scratch directory, copy what the runtime lacks (and with `with_sdk`, the
    SDK_PINS); names and versions copied."""
    sdk = SDK_PINS if with_sdk else {}
    with tempfile.TemporaryDirectory(prefix="dagtrigger-lambda-") as scratch:
        site = Path(scratch) / "site"
        install_dependencies(site, arch, python, sdk)
        added = []
        for name, dist_info in iter_distributions(site):
            if name in RUNTIME_PROVIDED and name not in sdk:
                continue
            if name not in PINS and name not in sdk:
                raise PackageError(
                    f"the package now needs {name} (for dagtrigger or aws-lambda-powertools), "
                    "which is neither pinned nor known to be in the Lambda runtime: add it to "
                    "PINS or RUNTIME_PROVIDED in tools/package_aws.py"
                )
            check_wheel(name, dist_info, arch, python)
            copy_distribution(site, dist_info, destination)
            added.append(dist_info.name.removesuffix(".dist-info"))
        missing = {*PINS, *sdk} - {canonical(a.rsplit("-", 1)[0]) for a in added}
        if missing:
            raise PackageError(f"uv did not install {', '.join(sorted(missing))}")
        return added


def add_sources(destination: Path) -> None:
    handler = FUNCTIONS / "lambda_function.py"
    if not handler.is_file():
        raise PackageError(
            f"{handler.relative_to(REPO)} is missing: it is the Lambda handler "
            "(Handler: lambda_function.handler)"
        )
    shutil.copyfile(handler, destination / handler.name)
    core = FUNCTIONS / "dagtrigger"
    for source in sorted(core.rglob("*")):
        relative = source.relative_to(FUNCTIONS)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not source.is_file():
            continue
        if source.suffix in SKIPPED_SUFFIXES or source.name.startswith("test_"):
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def write_zip(source: Path, zip_path: Path) -> int:
    """Zip `source` deterministically into `zip_path`; the number of files."""
    files = sorted(
        (path for path in source.rglob("*") if path.is_file()),
        key=lambda path: path.relative_to(source).as_posix(),
    )
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=ZIP_TIMESTAMP)
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            info.create_system = 3  # Unix, so that the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(zip_path)
    return len(files)


def build(
    build_dir: Path,
    zip_path: Path,
    arch: str,
    runtime: str = DEFAULT_RUNTIME,
    *,
    with_sdk: bool = False,
) -> str:
    """Build the directory and the zip; a one-line summary."""
    started = time.monotonic()
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    add_sources(build_dir)
    added = add_dependencies(build_dir, arch, RUNTIMES[runtime], with_sdk=with_sdk)
    count = write_zip(build_dir, zip_path)
    size = zip_path.stat().st_size
    unpacked = sum(p.stat().st_size for p in build_dir.rglob("*") if p.is_file())
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return (
        f"package-aws: {_show(zip_path)} for {runtime} on {arch}: {size:,} bytes ({size / 2**20:.2f} MiB; "
        f"{count} files, {unpacked / 2**20:.2f} MiB unpacked in {_show(build_dir)}), "
        f"sha256 {digest[:16]}…, with {', '.join(added)}, in {time.monotonic() - started:.1f} s"
    )


def _show(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.package_aws", description=__doc__)
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    parser.add_argument("--zip", type=Path, default=ZIP_PATH, dest="zip_path")
    parser.add_argument(
        "--arch",
        choices=sorted(PLATFORMS),
        default=DEFAULT_ARCH,
        help=(
            "the function's Architecture (infra/aws/template.yaml; default %(default)s): "
            "google-re2 is compiled, so the package runs on this architecture only"
        ),
    )
    parser.add_argument(
        "--runtime",
        choices=sorted(RUNTIMES),
        default=DEFAULT_RUNTIME,
        help=(
            "the function's Runtime (infra/aws/template.yaml; default %(default)s): "
            "google-re2 is compiled for one CPython version"
        ),
    )
    parser.add_argument(
        "--with-sdk",
        action="store_true",
        help=(
            "put boto3 and botocore into the package: for MWAA Serverless, which a runtime's "
            "older botocore does not know"
        ),
    )
    args = parser.parse_args(argv)
    try:
        summary = build(
            args.build_dir.resolve(),
            args.zip_path.resolve(),
            args.arch,
            args.runtime,
            with_sdk=args.with_sdk,
        )
        print(summary)
    except PackageError as exc:
        print(f"package-aws: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
