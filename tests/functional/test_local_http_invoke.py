"""``http:invoke`` on a local http.server: form bodies, text answers, and parameters refused in one line."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sfn_workers.local.asl import TaskError
from sfn_workers.local.integrations.common import Call
from sfn_workers.local.integrations.http_invoke import HttpInvoke

RESOURCE = "arn:aws:states:::http:invoke"


class Echo(BaseHTTPRequestHandler):
    """Answers with the request's method, path, content type and body, as plain text."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        text = f"{self.command} {self.path} {self.headers.get('Content-Type')} {body}".encode()
        self.send_response(201)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Seen", "yes")
        self.end_headers()
        self.wfile.write(text)

    do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def invoke(parameters: dict[str, Any]) -> Any:
    return HttpInvoke()(Call(RESOURCE, "http", "invoke", "", parameters))


@pytest.mark.parametrize(
    ("array_format", "form"),
    [
        ("BRACKETS", "sku%5B%5D=a&sku%5B%5D=b&note=hi"),
        ("COMMAS", "sku=a%2Cb&note=hi"),
        ("INDICES", "sku%5B0%5D=a&sku%5B1%5D=b&note=hi"),
        ("REPEAT", "sku=a&sku=b&note=hi"),
    ],
)
def test_a_url_encoded_body_encodes_arrays_as_asked(url: str, array_format: str, form: str) -> None:
    result = invoke(
        {
            "ApiEndpoint": f"{url}/orders",
            "Method": "PUT",
            "RequestBody": {"sku": ["a", "b"], "note": "hi"},
            "Transform": {
                "RequestBodyEncoding": "URL_ENCODED",
                "RequestEncodingOptions": {"ArrayFormat": array_format},
            },
        }
    )

    assert result["StatusCode"] == "201"
    assert result["StatusText"] == "Created"
    assert result["Headers"]["x-seen"] == ["yes"]
    assert result["ResponseBody"] == f"PUT /orders application/x-www-form-urlencoded {form}"


def test_a_text_body_is_sent_as_written(url: str) -> None:
    result = invoke(
        {"ApiEndpoint": url, "Method": "DELETE", "RequestBody": "raw text", "Headers": {"Content-Type": "text/plain"}}
    )

    assert result["ResponseBody"] == "DELETE / text/plain raw text"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"ApiEndpoint": "ftp://example.com", "Method": "GET"}, "ApiEndpoint must be an http(s) URL"),
        ({"ApiEndpoint": "http://127.0.0.1:9", "Method": "FETCH"}, "Method must be one of GET, POST"),
    ],
)
def test_parameters_the_task_cannot_send_fail_with_states_runtime(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError) as raised:
        invoke(parameters)

    assert raised.value.error == "States.Runtime"
    assert message in str(raised.value.cause)
