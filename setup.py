"""Builds mobilestatus._core; all metadata lives in pyproject.toml.

Environment toggles:
  MOBILESTATUS_CURL_CONFIG  path to curl-config (default: pkg-config, then curl-config)
  MOBILESTATUS_DEBUG=1      -O0 -g3 with asserts on
  MOBILESTATUS_SANITIZE=1   AddressSanitizer + UndefinedBehaviorSanitizer
  MOBILESTATUS_WERROR=1     warnings are errors (CI)
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup

SOURCES = [
    "csrc/module.c",
    "csrc/session.c",
    "csrc/batch.c",
    "csrc/pool.c",
    "csrc/aio.c",
    "csrc/transfer.c",
    "csrc/json.c",
    "csrc/convert.c",
    "csrc/errors.c",
]
HEADERS = ["csrc/mobilestatus.h", "csrc/json.h", "csrc/transfer.h", "csrc/pool.h"]

MISSING_CURL = (
    "mobilestatus: libcurl's development headers were not found; "
    "install them with `apt-get install libcurl4-openssl-dev` (Debian/Ubuntu) "
    "or `dnf install libcurl-devel`, or run `make deps`."
)


def _run(argv: list[str]) -> str | None:
    try:
        return subprocess.run(
            argv, check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def curl_flags() -> tuple[list[str], list[str]]:
    """(compile flags, link flags) for libcurl, or exit with one clear line."""
    curl_config = os.environ.get("MOBILESTATUS_CURL_CONFIG")
    if not curl_config and shutil.which("pkg-config"):
        cflags = _run(["pkg-config", "--cflags", "libcurl"])
        libs = _run(["pkg-config", "--libs", "libcurl"])
        if cflags is not None and libs is not None:
            return shlex.split(cflags), shlex.split(libs)
    curl_config = curl_config or shutil.which("curl-config")
    if curl_config:
        cflags = _run([curl_config, "--cflags"])
        libs = _run([curl_config, "--libs"])
        if cflags is not None and libs is not None:
            return shlex.split(cflags), shlex.split(libs)
    sys.exit(MISSING_CURL)


def extension() -> Extension:
    cflags, ldflags = curl_flags()
    compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                    "-Wno-missing-field-initializers", "-fvisibility=hidden"]
    link_args: list[str] = []
    if os.environ.get("MOBILESTATUS_DEBUG") == "1":
        compile_args += ["-O0", "-g3", "-UNDEBUG"]
    else:
        compile_args += ["-O2"]
    if os.environ.get("MOBILESTATUS_SANITIZE") == "1":
        sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                    "-fno-sanitize-recover=undefined"]
        compile_args += sanitize + ["-g", "-UNDEBUG"]
        link_args += sanitize
    if os.environ.get("MOBILESTATUS_WERROR") == "1":
        compile_args.append("-Werror")
    return Extension(
        "mobilestatus._core",
        sources=SOURCES,
        depends=HEADERS,
        include_dirs=["csrc"],
        extra_compile_args=cflags + compile_args,
        extra_link_args=ldflags + link_args,
    )


setup(ext_modules=[extension()])
