"""Scraping a model server's Prometheus page and evaluating `service` series selectors on it.

The page is parsed by prometheus_client's own parser (never by hand). Fetching uses one shared httpx
client with no proxy from the environment (a loopback scrape must not go through $http_proxy) and no
redirects; the whole fetch, not only each socket wait, is bounded by the timeout, and the page by size.
Counter rates need the previous scrape, so a small registry here remembers (time, value) per series.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from checks.service import Selector, parse_selector

MAX_PAGE_BYTES = 16 * 1024 * 1024  # Triton's page with many models is a few hundred KB
ACCEPT = "text/plain;version=0.0.4"  # the classic text format, which the parser reads


class ScrapeError(Exception):
    """The page could not be fetched or parsed; the message says why, for the check's reason."""


_client: Any = None
_client_lock = threading.Lock()


def _http() -> Any:
    """One client for all scrapes (keeps connections and TLS setup); httpx is imported on first use."""
    global _client
    with _client_lock:
        if _client is None:
            import httpx

            _client = httpx.Client(trust_env=False, follow_redirects=False, headers={"Accept": ACCEPT})
        return _client


def fetch_page(url: str, timeout: float) -> str:
    """GET the page within `timeout` seconds in all; ScrapeError otherwise."""
    import httpx

    deadline = time.monotonic() + timeout
    try:
        with _http().stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                raise ScrapeError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_PAGE_BYTES:
                    raise ScrapeError(f"page larger than {MAX_PAGE_BYTES // (1024 * 1024)} MiB")
                if time.monotonic() > deadline:
                    raise ScrapeError(f"page not complete within {timeout:g}s")
                chunks.append(chunk)
            return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
    except httpx.TimeoutException:
        raise ScrapeError(f"no answer within {timeout:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ScrapeError(str(exc) or type(exc).__name__) from None


def parse_page(text: str) -> list[Any]:
    """The page's metric families; ScrapeError for a page that is not the Prometheus text format."""
    try:
        return list(text_string_to_metric_families(text))
    except Exception as exc:  # the parser raises several types on garbage; all mean "not a metrics page"
        raise ScrapeError(f"not a Prometheus text page ({exc})") from None


def select(families: Iterable[Any], selector: Selector) -> float | None:
    """Sum of the samples the selector picks (before rate and scale); None when it picks none."""
    total, found = 0.0, False
    for family in families:
        for sample in family.samples:
            if sample.name != selector.name and not (
                family.type == "counter" and sample.name == selector.name + "_total"
            ):
                continue
            if any(sample.labels.get(k) != v for k, v in selector.labels):
                continue
            if math.isnan(sample.value):  # e.g. a summary quantile with no observations yet
                continue
            total += sample.value
            found = True
    return total if found else None


@dataclass
class CounterRates:
    """The previous (monotonic time, value) of each rate series, to turn counters into per-second rates."""

    _last: dict[Hashable, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rate(self, key: Hashable, value: float, now: float) -> float | None:
        """Per-second increase since the previous call for `key`; None on the first. A drop is a reset
        (the server restarted), so the increase is the new value, as Prometheus's rate() counts it."""
        with self._lock:
            previous = self._last.get(key)
            self._last[key] = (now, value)
        if previous is None or now <= previous[0]:
            return None
        increase = value - previous[1] if value >= previous[1] else value
        return increase / (now - previous[0])


RATES = CounterRates()


def scrape(owner: str, url: str, timeout: float, series: Mapping[str, str],
           rates: CounterRates = RATES, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Fetch `url` and evaluate `series` (our name -> selector text) on it: the `service_scrape` input.

    `owner` (the model) keys the counter state, so two models scraping the same server keep their own.
    Never raises for the page: a failure is `ok: False` with the reason in `error`.
    """
    result: dict[str, Any] = {"url": url, "ok": False, "error": None, "values": {}, "missing": []}
    try:
        families = parse_page(fetch_page(url, timeout))
    except ScrapeError as exc:
        result["error"] = str(exc)
        return result
    now = clock()
    result["ok"] = True
    for name, text in series.items():
        try:
            selector = parse_selector(text)
        except ValueError:  # the check reports bad settings itself
            continue
        value = select(families, selector)
        if value is None:
            result["missing"].append(name)
            continue
        if selector.rate:
            value = rates.rate((owner, url, name, text), value, now)
            if value is None:  # first scrape of this counter
                continue
        result["values"][name] = value * selector.scale
    return result
