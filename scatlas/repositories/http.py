"""The one HTTP session every remote client uses: retries with backoff that honour Retry-After."""

from __future__ import annotations

import os
import shutil

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scatlas import __version__
from scatlas.io import atomic_output

USER_AGENT = f"scatlas/{__version__} (single-cell atlas workflow)"


def session(retries: int = 5, backoff: float = 1.0) -> requests.Session:
    """A requests session retrying connection errors, timeouts, 429 and 5xx with exponential backoff."""
    retry = Retry(
        total=retries, backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"), respect_retry_after_header=True, raise_on_status=False,
    )  # fmt: skip
    http = requests.Session()
    http.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(max_retries=retry)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http


def download(url: str, dest: str | os.PathLike, http: requests.Session | None = None, timeout: float = 60) -> None:
    """Stream ``url`` to ``dest``; ``dest`` appears only once the whole body has arrived."""
    http = http or session()
    with http.get(url, stream=True, timeout=timeout) as response:
        response.raise_for_status()
        with atomic_output(dest) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(response.raw, out, 1 << 20)
