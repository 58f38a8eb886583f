"""Where reference files come from: a local path, or a URL downloaded once into the workflow."""

from __future__ import annotations

import re
from urllib.parse import urlparse

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def download_name(url: str) -> str:
    """The file name a reference URL is saved under; refused unless it is a plain, safe file name."""
    name = urlparse(url).path.rsplit("/", 1)[-1]
    if not _SAFE_NAME.match(name):
        raise ValueError(f"reference URL {url!r} does not end in a plain file name")
    return name
