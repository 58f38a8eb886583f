"""Running the external command-line tools (hisat2, samtools, featureCounts) without a shell."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)


class ToolError(RuntimeError):
    """An external tool failed; the message names it and ends with its last error line."""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolError(f"{tool} is not installed or not on PATH (run `make env`)")
    return path


def run(cmd: Sequence, stdout: str | os.PathLike | None = None) -> str:
    """Run ``cmd`` (an argument list, never a shell string); return its stdout, or write it to ``stdout``."""
    require(str(cmd[0]))
    log.info("running: %s", " ".join(map(str, cmd)))
    with open(stdout, "w") if stdout else contextlib.nullcontext(subprocess.PIPE) as out:
        done = subprocess.run(list(map(str, cmd)), stdout=out, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise ToolError(f"{cmd[0]} failed (exit {done.returncode}): {last_line(done.stderr)}")
    return done.stdout or ""


def version(tool: str, flag: str = "--version") -> str:
    """First non-empty line of ``tool --version``, recorded with every output for provenance."""
    done = subprocess.run([require(tool), flag], capture_output=True, text=True)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return lines[0] if lines else tool


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
