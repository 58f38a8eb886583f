"""Running the external command-line tools (hisat2, samtools, featureCounts) without a shell."""

from __future__ import annotations

import logging
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


def run(cmd: Sequence[str]) -> str:
    """Run ``cmd`` (an argument list, never a shell string) and return its stderr."""
    require(cmd[0])
    log.info("running: %s", " ".join(map(str, cmd)))
    done = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolError(f"{cmd[0]} failed (exit {done.returncode}): {last_line(done.stderr)}")
    return done.stderr


def version(tool: str, flag: str = "--version") -> str:
    """First non-empty line of ``tool --version``, recorded with every output for provenance."""
    done = subprocess.run([require(tool), flag], capture_output=True, text=True)
    return last_line((done.stdout + done.stderr).strip().split("\n\n")[0].split("\n")[0]) or tool


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
