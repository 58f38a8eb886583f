"""The one HTTP session every remote client uses.

Configurable base URLs per service, polite per-service rate limits, retries with exponential
backoff on 429/5xx/connection errors/timeouts/truncated or malformed bodies (honouring
``Retry-After``), the E-utilities ``tool``/``email``/``api_key`` parameters, a User-Agent, an
on-disk cache of parsed-OK responses, and resumable, md5-checked, atomically renamed downloads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from tqdm import tqdm
from urllib3.util.retry import Retry

from scatlas import __version__
from scatlas.config import default
from scatlas.io import atomic_output

log = logging.getLogger(__name__)

USER_AGENT = f"scatlas/{__version__} (single-cell atlas workflow; +https://github.com/scatlas)"
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CREDENTIALS = ("api_key", "email", "tool")  # never part of a cache key
CHUNK = 1 << 16  # what an interrupted download can lose, at most

DEFAULT_SERVICES = {
    "eutils": ("https://eutils.ncbi.nlm.nih.gov/entrez/eutils", 3.0),
    "geo": ("https://ftp.ncbi.nlm.nih.gov/geo", 3.0),
    "ena": ("https://www.ebi.ac.uk/ena/portal/api", 5.0),
    "biostudies": ("https://www.ebi.ac.uk/biostudies", 5.0),
}


class RemoteError(RuntimeError):
    """A remote request that failed for good; the message names what was asked for and why."""


class MalformedResponse(ValueError):
    """A response body that does not parse as the format it should have."""


class _Transient(Exception):
    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.retry_after = retry_after


@dataclass
class Service:
    base_url: str
    requests_per_second: float


class Remote:
    """One ``requests`` session shared by the GEO, SRA/ENA and ArrayExpress clients.

    Parameters
    ----------
    services
        Service name → :class:`Service` (base URL, rate limit). Tests and the demo point the base
        URLs at a local replay server; nothing else differs from production.
    cache_dir
        Where parsed-OK responses are kept, keyed by URL and parameters (credentials excluded);
        ``None`` (here, unlike the workflow's config) disables the cache. Entries older than
        ``cache_max_age_days`` are refetched.
    retries, backoff, backoff_max
        Attempts after the first, and the exponential backoff ``backoff · 2^attempt`` (capped)
        used when the server gives no ``Retry-After``.

    The other defaults are the config's (section ``repositories``).
    """

    def __init__(
        self,
        services: Mapping[str, Service] | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        cache_max_age_days: float = default("repositories.cache_max_age_days"),
        retries: int = default("repositories.retries"),
        backoff: float = default("repositories.backoff"),
        backoff_max: float = default("repositories.backoff_max"),
        timeout: float = default("repositories.timeout"),
        tool: str = default("repositories.tool"),
        email: str = default("repositories.email"),
        api_key: str = default("repositories.api_key"),
    ):
        self.services = dict(services or {name: Service(*spec) for name, spec in DEFAULT_SERVICES.items()})
        if api_key and "eutils" in self.services:  # NCBI allows 10 requests/s with a key
            self.services["eutils"].requests_per_second = max(self.services["eutils"].requests_per_second, 10.0)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_max_age = cache_max_age_days * 86400
        self.retries, self.backoff, self.backoff_max, self.timeout = retries, backoff, backoff_max, timeout
        self.eutils_params = {
            "tool": tool,
            **({"email": email} if email else {}),
            **({"api_key": api_key} if api_key else {}),
        }
        self.http = requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self._lock = threading.Lock()
        self._next_slot: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Remote:
        """Build from the workflow's ``repositories`` config section (see the config schema)."""
        services = {
            name: Service(spec["base_url"], float(spec["requests_per_second"]))
            for name, spec in config.get("services", {}).items()
        }
        defaults = {name: Service(*spec) for name, spec in DEFAULT_SERVICES.items()}
        keys = (
            "cache_dir",
            "cache_max_age_days",
            "retries",
            "backoff",
            "backoff_max",
            "timeout",
            "tool",
            "email",
            "api_key",
        )
        return cls({**defaults, **services}, **{key: config[key] for key in keys if key in config})

    def url(self, service: str, path: str) -> str:
        return f"{self.services[service].base_url.rstrip('/')}/{path.lstrip('/')}"

    def _throttle(self, service: str) -> None:
        """Space requests to one service at least 1/rate seconds apart, across threads."""
        interval = 1.0 / self.services[service].requests_per_second
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(service, 0.0))
            self._next_slot[service] = slot + interval
        if slot > now:
            time.sleep(slot - now)

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        delay = retry_after if retry_after is not None else self.backoff * 2**attempt
        return min(max(delay, 0.0), self.backoff_max)

    def _cache_path(self, service: str, path: str, params: Mapping[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        query = urlencode(sorted((k, str(v)) for k, v in params.items() if k not in CREDENTIALS))
        key = hashlib.sha256(f"{self.url(service, path)}\n{query}".encode()).hexdigest()
        return self.cache_dir / service / key[:2] / key

    def get(
        self,
        service: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        parse: Callable[[bytes], Any] = bytes,
        what: str = "",
        cache: bool = True,
    ) -> Any:
        """GET ``path`` of ``service`` and return ``parse(body)``.

        ``parse`` raises :class:`MalformedResponse` (or ``ValueError``) on a body that does not
        parse; that, like a truncated body, a reset connection, a timeout, 429 or 5xx, is retried.
        Only a body that parsed is cached. ``what`` (e.g. the accession) names the request in errors.
        """
        params = dict(params or {})
        if service == "eutils":
            params.update(self.eutils_params)
        url = self.url(service, path)
        cached = self._cache_path(service, path, params) if cache else None
        if cached is not None and cached.exists() and time.time() - cached.stat().st_mtime < self.cache_max_age:
            try:
                return parse(cached.read_bytes())
            except ValueError:
                log.warning("discarding unreadable cache entry %s for %s", cached, what or url)
        last = None
        for attempt in range(self.retries + 1):
            self._throttle(service)
            try:
                response = self.http.get(url, params=params, timeout=self.timeout)
                if response.status_code in TRANSIENT_STATUS:
                    raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
                if response.status_code >= 400:
                    raise RemoteError(
                        f"{what or url}: HTTP {response.status_code} from {service} ({_excerpt(response)})"
                    )
                body = response.content
                value = parse(body)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                _Transient,
                ValueError,
            ) as err:
                last = err
                if attempt == self.retries:
                    break
                delay = self._wait(attempt, getattr(err, "retry_after", None))
                log.info(
                    "%s: %s (%s); retry %d/%d in %.1f s",
                    what or url,
                    type(err).__name__,
                    err,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                time.sleep(delay)
                continue
            if cached is not None:
                with atomic_output(cached) as tmp:
                    tmp.write_bytes(body)
            return value
        raise RemoteError(f"{what or url}: {service} failed after {self.retries + 1} attempts ({_describe(last)})")

    def download(
        self,
        url: str,
        dest: str | os.PathLike,
        *,
        md5: str = "",
        size: int | None = None,
        what: str = "",
        progress: bool = True,
    ) -> Path:
        """Stream ``url`` to ``dest``, resuming a partial download, checking ``md5``; atomic.

        The bytes collect in ``dest.part`` (kept across interruptions, resumed with an HTTP Range
        request) and are renamed onto ``dest`` only when complete and, if ``md5`` is given, matching.
        A wrong md5 discards the partial file and downloads again; repeated failure raises
        :class:`RemoteError` naming ``what``.
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")
        what = what or url
        last = None
        for attempt in range(self.retries + 1):
            try:
                self._fetch_into(url, part, size, what, progress)
                if size is not None and part.stat().st_size != size:
                    raise _Transient(f"got {part.stat().st_size} bytes, expected {size}")
                if md5 and _md5(part) != md5.lower():
                    part.unlink()
                    raise _Transient("md5 mismatch")
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                _Transient,
            ) as err:
                last = err
                if attempt == self.retries:
                    break
                delay = self._wait(attempt, getattr(err, "retry_after", None))
                log.info("%s: %s; retry %d/%d in %.1f s", what, err, attempt + 1, self.retries, delay)
                time.sleep(delay)
                continue
            os.replace(part, dest)
            return dest
        raise RemoteError(f"{what}: download of {url} failed after {self.retries + 1} attempts ({_describe(last)})")

    def _fetch_into(self, url: str, part: Path, size: int | None, what: str, progress: bool) -> None:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:  # a stale partial file from another version
            part.unlink()
            have = 0
        if size is not None and have == size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.http.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
            if response.status_code == 416:  # asked past the end: the partial file is complete
                return
            if response.status_code >= 400:
                raise RemoteError(f"{what}: HTTP {response.status_code} for {url}")
            resumed = response.status_code == 206
            if not resumed:
                have = 0
            total = size or (have + int(response.headers.get("Content-Length", 0))) or None
            with (
                open(part, "ab" if resumed else "wb") as out,
                tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=what, disable=not progress, leave=False
                ) as bar,
            ):
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))


def parse_json_object(body: bytes) -> dict:
    """A JSON object response; anything else is :class:`MalformedResponse` (and so retried)."""
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MalformedResponse(f"malformed JSON ({err})") from None
    if not isinstance(value, dict):
        raise MalformedResponse("JSON is not an object")
    return value


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return Retry().parse_retry_after(value)
    except Exception:  # an unparsable header: fall back to exponential backoff
        return None


def _excerpt(response: requests.Response) -> str:
    text = " ".join(response.text.split())
    return text[:120] or "empty body"


def _describe(err: Exception | None) -> str:
    if err is None:
        return "no response"
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:160]}" if not isinstance(err, _Transient) else text


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, remote: Remote | None = None) -> Path:
    """Download one file (e.g. a reference genome) through the shared session; atomic and resumable."""
    return (remote or Remote()).download(url, dest)
