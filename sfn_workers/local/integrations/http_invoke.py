"""``arn:aws:states:::http:invoke``: the HTTP Task, as a real HTTP request to ``ApiEndpoint``.

Request: ``Method``, ``ApiEndpoint``, ``Headers``, ``QueryParameters`` and ``RequestBody`` as
written (a JSON ``RequestBody`` is sent as JSON; with ``Transform: {RequestBodyEncoding:
URL_ENCODED}`` as a form, arrays per ``RequestEncodingOptions.ArrayFormat``). Result, as AWS's:
``{"Headers": {name: [values]}, "ResponseBody": <JSON if the answer is JSON, else text>,
"StatusCode": "200", "StatusText": "OK"}``. A status of 400 or more fails the Task with
``States.Http.StatusCode.<code>`` (the cause holds the same fields); no answer at all (refused,
timed out) with ``States.Http.Socket``.

Locally the connection named by ``Authentication.ConnectionArn`` is not read: no credentials are
added to the request (a warning says so once per connection), so point ``ApiEndpoint`` at a local
or test API.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import Any

from sfn_workers.local.asl.integrations import TaskError
from sfn_workers.local.integrations.common import Call, runtime_error

__all__ = ["HttpInvoke"]

_log = logging.getLogger("sfn_workers.local")

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
#: AWS ends an HTTP Task's request after 60 seconds (States.Http.Socket).
TIMEOUT_SECONDS = 60.0


def _form(value: Any, array_format: str) -> str:
    """``RequestBodyEncoding: URL_ENCODED``: a JSON object as a form, arrays as AWS encodes them."""
    pairs: list[tuple[str, str]] = []
    for key, item in (value or {}).items():
        if not isinstance(item, list):
            pairs.append((key, _scalar(item)))
        elif array_format == "COMMAS":
            pairs.append((key, ",".join(_scalar(v) for v in item)))
        elif array_format == "BRACKETS":
            pairs += [(f"{key}[]", _scalar(v)) for v in item]
        elif array_format == "INDICES":
            pairs += [(f"{key}[{i}]", _scalar(v)) for i, v in enumerate(item)]
        else:  # REPEAT, AWS's default
            pairs += [(key, _scalar(v)) for v in item]
    return urllib.parse.urlencode(pairs)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _headers_of(message: Message) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in message.items():
        out.setdefault(name.lower(), []).append(value)
    return out


def _body_of(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class HttpInvoke:
    def __init__(self) -> None:
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> Any:
        request = self._request(call)
        try:
            # The Task's own ApiEndpoint, checked above to be http(s): what the user asked to call.
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # nosec B310
                result = self._result(answer.status, answer.reason, answer.headers, answer.read())
        except urllib.error.HTTPError as failed:
            result = self._result(failed.code, failed.reason, failed.headers, failed.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TaskError("States.Http.Socket", f"{request.get_method()} {request.full_url}: {reason}") from exc
        if int(result["StatusCode"]) >= 400:
            raise TaskError(f"States.Http.StatusCode.{result['StatusCode']}", json.dumps(result, ensure_ascii=False))
        return result

    def _request(self, call: Call) -> urllib.request.Request:
        params = call.parameters
        endpoint, method = params.get("ApiEndpoint"), str(params.get("Method", "")).upper()
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise runtime_error(f"{call.resource}: ApiEndpoint must be an http(s) URL, not {endpoint!r}")
        if method not in METHODS:
            raise runtime_error(f"{call.resource}: Method must be one of {', '.join(METHODS)}, not {method!r}")
        self._warn_about(params.get("Authentication") or params.get("InvocationConfig"))
        query = params.get("QueryParameters")
        if isinstance(query, Mapping) and query:
            sep = "&" if urllib.parse.urlsplit(endpoint).query else "?"
            endpoint += sep + urllib.parse.urlencode({k: _scalar(v) for k, v in query.items()})
        headers = {str(k): _scalar(v) for k, v in dict(params.get("Headers") or {}).items()}
        data = self._body(params, headers)
        return urllib.request.Request(endpoint, data=data, headers=headers, method=method)

    @staticmethod
    def _body(params: Mapping[str, Any], headers: dict[str, str]) -> bytes | None:
        if "RequestBody" not in params:
            return None
        body = params["RequestBody"]
        transform = dict(params.get("Transform") or {})
        lower = {k.lower() for k in headers}
        if transform.get("RequestBodyEncoding") == "URL_ENCODED":
            array_format = str(dict(transform.get("RequestEncodingOptions") or {}).get("ArrayFormat", "REPEAT"))
            if "content-type" not in lower:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            return _form(body, array_format).encode("utf-8")
        if isinstance(body, str):
            return body.encode("utf-8")
        if "content-type" not in lower:
            headers["Content-Type"] = "application/json"
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @staticmethod
    def _result(status: int, reason: str, headers: Message, raw: bytes) -> dict[str, Any]:
        return {
            "Headers": _headers_of(headers),
            "ResponseBody": _body_of(raw, headers.get("Content-Type", "")),
            "StatusCode": str(status),
            "StatusText": reason,
        }

    def _warn_about(self, authentication: Any) -> None:
        connection = dict(authentication or {}).get("ConnectionArn") if isinstance(authentication, Mapping) else None
        if not connection:
            return
        with self._lock:
            if connection in self._warned:
                return
            self._warned.add(connection)
        _log.warning("http:invoke: the local runner does not read connection %s; no credentials are sent", connection)
