"""The service check in the real daemon: logged errors and latency become a status, a scrape becomes metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import BASE_CONFIG, prediction, wait_for

PAGE = b"""\
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="churn",version="1"} 2500
nv_inference_queue_duration_us{model="other",version="1"} 900
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """A model server's Prometheus page on loopback."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
    httpd.shutdown()
    httpd.server_close()


def test_logged_errors_make_the_service_check_crit_and_the_scrape_is_recorded(daemon_handle, metrics_url):
    daemon_handle.write_config(BASE_CONFIG + f"""
[models.checks.service]
interval = "300ms"
prometheus_url = "{metrics_url}"
prometheus_series = {{ queue_ms = 'nv_inference_queue_duration_us{{model="churn"}} / 1000' }}
""")
    daemon = daemon_handle.start()
    records = [{**prediction(f"r{i}", age_s=i), "latency_ms": 10.0 + i % 10,
                "error": "CUDA out of memory" if i % 10 == 0 else None} for i in range(100)]
    daemon.write_predictions("churn", records)  # 10 errors in 100 requests: above the 5% crit

    def service_check():
        with daemon.client() as client:
            churn = next(m for m in client.status()["models"] if m["name"] == "churn")
        return next((c for c in churn["checks"] if c["check"] == "service" and c["status"] == "crit"), None)

    wait_for(service_check, message="service check crit")
    out = daemon.cli("status", "--json")
    status = json.loads(out.stdout)
    churn = next(m for m in status["models"] if m["name"] == "churn")
    service = next(c for c in churn["checks"] if c["check"] == "service")
    assert service["status"] == "crit" and out.returncode == 2
    assert service["reason"] == "error rate 10.0% (10/100, at least 5.5% at 95% confidence; crit at 5.0%)"

    with daemon.client() as client:
        rows = client.sql("""SELECT metric, dims, value FROM metrics WHERE "check" = 'service'
                             AND metric IN ('queue_ms', 'scrape_success', 'error_rate')
                             QUALIFY row_number() OVER (PARTITION BY metric ORDER BY ts DESC) = 1""")
    latest = {(r[0], r[1]): r[2] for r in rows["rows"]}
    assert latest == {("queue_ms", '{"source":"prometheus"}'): 2.5, ("scrape_success", '{"source":"prometheus"}'): 1.0,
                      ("error_rate", "{}"): 0.1}
