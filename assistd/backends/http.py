"""HTTP to upstream servers: what the chat and embeddings backends share to call an OpenAI-compatible
server.

aiohttp rather than httpx, for the relay's sake (BENCHMARKS.md, "The relay's hot path"): against a
local upstream, one streamed request took 0.19 ms of the caller's CPU with aiohttp and 0.7 ms with
httpx, and every chunk read cost in proportion, most of it in h11 and anyio, which aiohttp replaces
with a parser in C and plain asyncio. It is the transport the openai SDK itself offers for speed
(``openai[aiohttp]``).

Timeouts
    ``connect_timeout`` to open a connection (name lookup, proxy tunnel and TLS included); ``timeout``
    between two reads of an answer, from the moment the request is sent: an upstream that hangs
    before its status line or in the middle of an answer fails with ``TIMEOUT_ERRORS``, while a long
    answer that keeps streaming does not. The pool has no limit: a streamed answer holds its
    connection for as long as it streams, and a limit would queue the next answers behind it.

Redirects
    Not followed, as with httpx before: a 301 from an http:// base URL to https:// would turn the
    POST into a GET. The status is reported as the upstream's answer.

Proxies
    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` (or their lower-case forms) are
    honoured, as httpx did, but read once per upstream rather than by aiohttp's ``trust_env`` on every
    request: that looks up the environment and ``~/.netrc`` in two trips to a thread each time, 0.9 ms
    on the path of every call. A proxy without a scheme is taken as http://. Credentials in
    ``~/.netrc`` are not used; put them in the API key setting or the base URL.

TLS
    Certificates are checked against the system's store (Python's default context), which
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` can point elsewhere; httpx used the certifi bundle.

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


def display_url(url: URL) -> str:
    """``url`` as errors and logs show it: without credentials or query."""
    return str(url.with_user(None).with_query(None))


def describe(error: BaseException) -> str:
    """An error as words: some (a bare timeout) have an empty message."""
    return str(error) or type(error).__name__


class UpstreamHttp:
    """HTTP to one upstream endpoint, ``url``: its connection pool, its default ``headers``, its proxy.

    Credentials in ``url`` go as a Basic ``Authorization`` header, which one in ``headers`` (an API
    key's Bearer) replaces. ValueError for a proxy setting that is not an http(s) URL.
    """

    def __init__(
        self, url: URL, headers: Mapping[str, str], *, timeout: float, connect_timeout: float
    ) -> None:
        self.url = url.with_user(None)
        basic = {}
        if url.user is not None or url.password is not None:
            basic["Authorization"] = aiohttp.BasicAuth(url.user or "", url.password or "").encode()
        self._headers = {"Content-Type": "application/json", **basic, **headers}
        self._proxy, credentials = _environment_proxy(self.url)
        self._proxy_headers: dict[str, str] | None = None
        if credentials is not None and self.url.scheme == "https":
            self._proxy_headers = {"Proxy-Authorization": credentials}  # on the tunnel's CONNECT
        elif credentials is not None:
            # Plain HTTP goes to the proxy as it is: the header is the request's own. (aiohttp puts
            # ``proxy_headers`` only on a tunnel's CONNECT, and its ``proxy_auth`` is deprecated.)
            self._headers["Proxy-Authorization"] = credentials
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, body: bytes) -> aiohttp.ClientResponse:
        """The answer to a POST of ``body``, JSON already encoded, its status line and headers read and
        its body not yet: the caller reads it and then releases or closes it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0)
            )
        return await self._session.post(
            self.url,
            data=body,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
            allow_redirects=False,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _environment_proxy(url: URL) -> tuple[URL | None, str | None]:
    """The proxy that the environment names for ``url`` (``HTTPS_PROXY`` for https, ..., else
    ``ALL_PROXY``), unless ``NO_PROXY`` exempts its host, and the Basic credentials in it."""
    proxies = urllib.request.getproxies()
    named = proxies.get(url.scheme) or proxies.get("all")
    if not named or url.host is None or urllib.request.proxy_bypass(url.host):
        return None, None
    proxy = URL(named if "://" in named else f"http://{named}")
    if proxy.scheme not in {"http", "https"} or not proxy.host:
        # Not the value itself: it may hold credentials.
        raise ValueError(
            f"the proxy that the environment names for {url.scheme}:// URLs is not an http(s) URL with a "
            f"host (its scheme: {proxy.scheme!r})"
        )
    if proxy.user is None and proxy.password is None:
        return proxy, None
    return proxy.with_user(None), aiohttp.BasicAuth(proxy.user or "", proxy.password or "").encode()
