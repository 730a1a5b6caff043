"""HTTP to upstream servers: what the chat and embeddings backends share to call an OpenAI-compatible
server.

aiohttp rather than httpx, for the relay's sake (BENCHMARKS.md, "The relay's hot path"): against a
local upstream, one streamed request took 0.19 ms of the caller's CPU with aiohttp and 0.7 ms with
httpx, and every chunk read cost in proportion, most of it in h11 and anyio, which aiohttp replaces
with a parser in C and plain asyncio. It is the transport the openai SDK itself offers for speed
(``openai[aiohttp]``).

Timeouts
    ``connect_timeout`` to open a connection; ``timeout`` to get one from the pool, and between two
    reads of an answer, from the moment the request is sent: an upstream that hangs before its status
    line or in the middle of an answer fails with ``TIMEOUT_ERRORS``, while a long answer that keeps
    streaming does not.

Proxies
    ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``NO_PROXY`` (or their lower-case forms) are honoured, as httpx
    did before, but read once per upstream rather than by aiohttp's ``trust_env`` on every request:
    that looks up the environment and ``~/.netrc`` in two trips to a thread each time, 0.1 ms on the
    path of every call. Credentials in ``~/.netrc`` are not used; put them in the API key setting.

Sessions
    An aiohttp session belongs to the event loop it was made in, and backends are made before the
    server's loop runs: the session is made by the first request.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

import aiohttp
from yarl import URL

# Raised while connecting, sending or reading. The first two before the others: each is also a
# ``ClientError``, and a timeout is also an ``OSError``.
CONNECT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
TIMEOUT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ServerTimeoutError,)
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (aiohttp.ClientError, OSError)


def upstream_url(base_url: str, path: str) -> URL:
    """``base_url`` (as the openai SDK takes ``OPENAI_BASE_URL``: usually ending in ``/v1``) joined
    with ``path``; ValueError unless it is http(s) with a host."""
    url = URL(base_url.rstrip("/") + path)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"the upstream base URL must be http(s)://host[:port][/path], not {base_url!r}")
    return url


def split_credentials(url: URL) -> tuple[URL, dict[str, str]]:
    """``url`` without its user and password, and the Basic ``Authorization`` header they stand for
    (none without them). An API key's Bearer header, sent too, replaces it."""
    if url.user is None and url.password is None:
        return url, {}
    basic = aiohttp.BasicAuth(url.user or "", url.password or "")
    return url.with_user(None), {"Authorization": basic.encode()}


def display_url(url: URL) -> str:
    """``url`` as errors and logs show it: without credentials or query."""
    return str(url.with_user(None).with_query(None))


def describe(error: BaseException) -> str:
    """An error as words: some (a bare timeout) have an empty message."""
    return str(error) or type(error).__name__


class UpstreamHttp:
    """One upstream's connection pool and its settings: default ``headers`` on every request."""

    def __init__(self, headers: Mapping[str, str], *, timeout: float, connect_timeout: float) -> None:
        self._headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=connect_timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None
        # By origin: the proxy of its requests and the proxy's credentials, if any.
        self._proxies: dict[URL, tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    async def post(
        self, url: URL, body: bytes, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """The answer to ``POST url``, its status line and headers read and its body not yet: the
        caller reads it and then releases or closes it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        origin = url.origin()
        if origin not in self._proxies:
            self._proxies[origin] = _environment_proxy(url)
        proxy, proxy_auth = self._proxies[origin]
        return await self._session.post(url, data=body, headers=headers, proxy=proxy, proxy_auth=proxy_auth)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _environment_proxy(url: URL) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy that the environment names for ``url`` (``HTTPS_PROXY`` for https, ...), unless
    ``NO_PROXY`` exempts its host, and the credentials in its URL."""
    named = urllib.request.getproxies().get(url.scheme)
    if named is None or url.host is None or urllib.request.proxy_bypass(url.host):
        return None, None
    proxy = URL(named)
    return proxy.with_user(None), aiohttp.BasicAuth.from_url(proxy)
