"""Support for polar-sim's process-level tests: start polar-sim, talk HTTP to it,
validate bodies against Polar's OpenAPI document, receive webhooks.

Runs with Debian's /usr/bin/python3 and python3-jsonschema (scripts/deps test).
"""
import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
# Polar's OpenAPI document for API version 2026-10, kept in the tree as test data (its
# README says where it comes from and how to refresh it). POLAR_OPENAPI overrides it, e.g. to
# try a newer copy before committing it.
DEFAULT_OPENAPI = REPO_ROOT / "tests" / "data" / "polar" / "openapi-2026-10.json.gz"


def openapi_path():
    path = pathlib.Path(os.environ.get("POLAR_OPENAPI", DEFAULT_OPENAPI))
    if not path.is_file():
        sys.stderr.write(
            f"polar-sim contract tests: Polar's OpenAPI document is missing at {path}.\n"
            "The repository carries it as tests/data/polar/openapi-2026-10.json.gz; if\n"
            "POLAR_OPENAPI is set, it must name an existing file (see\n"
            "tests/data/polar/README.md for where the document comes from).\n")
        sys.exit(1)
    return path


class OpenApi:
    """Validates JSON bodies against schemas of Polar's OpenAPI 3.1 document."""

    def __init__(self, path):
        import jsonschema

        self.jsonschema = jsonschema
        # The tree keeps it gzip-compressed (2.7 MB -> 190 KB); a copy named by
        # POLAR_OPENAPI may be plain JSON.
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            self.doc = json.load(f)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        checker = jsonschema.FormatChecker()

        @checker.checks("uuid4", raises=ValueError)
        def _uuid4(value):
            return not isinstance(value, str) or uuid.UUID(value).version == 4

        @checker.checks("date-time", raises=ValueError)
        def _date_time(value):
            if not isinstance(value, str):
                return True
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.tzinfo is not None

        self.checker = checker

    def _validate(self, schema, instance, what):
        validator = self.jsonschema.Draft202012Validator(
            schema, resolver=self.resolver, format_checker=self.checker)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            raise AssertionError(
                f"{what}: {len(errors)} schema error(s); first at "
                f"{'/'.join(map(str, first.absolute_path))}: {first.message[:400]}")

    def schema(self, name, instance):
        self._validate({"$ref": f"#/components/schemas/{name}"}, instance, name)

    def response(self, path, method, status, instance):
        """Validates against the documented response of an operation."""
        op = self.doc["paths"][path][method.lower()]
        response = op["responses"][str(status)]
        schema = response["content"]["application/json"]["schema"]
        self._validate(schema, instance, f"{method} {path} -> {status}")

    def webhook(self, event_type, instance):
        op = self.doc["webhooks"][event_type]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        self._validate(schema, instance, f"webhook {event_type}")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)


class Sim:
    """A polar-sim process on a free loopback port, stopped on close()."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("polar-sim did not start: " + self.proc.stderr.read())
        self.ready = json.loads(line)
        host, port = self.ready["listen"].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.token = self.ready["token"]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.stderr

    def request(self, method, path, body=None, token=True, headers=None,
                timeout=10, content_length=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if token is True:
                h["Authorization"] = "Bearer " + self.token
            elif token:
                h["Authorization"] = "Bearer " + token
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                if isinstance(data, str):
                    data = data.encode()
                h["Content-Type"] = "application/json"
            if content_length:
                conn.request(method, path, body=data if data is not None else (
                    b"" if method in ("POST", "PATCH", "PUT") else None), headers=h)
            else:
                conn.putrequest(method, path)
                for k, v in h.items():
                    conn.putheader(k, v)
                conn.endheaders()
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body, **kw):
        return self.request("PATCH", path, body=body, **kw)


def wait_for(condition, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def verify_standard_webhook(secret, headers, body):
    """The Standard Webhooks check, written here independently of polar-sim:
    Polar hands base64(utf8(secret)) to the library, which base64-decodes it, so
    the HMAC key is the UTF-8 bytes of the whole whsec_... string."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    key = base64.b64decode(base64.b64encode(secret.encode("utf-8")))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # The header may carry several space-separated "v1,<sig>" entries.
    candidates = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")
                  if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise AssertionError(f"bad webhook signature for {msg_id}")
    if abs(time.time() - int(timestamp)) > 300:
        raise AssertionError("webhook timestamp outside the 5 minute tolerance")


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every POST. Paths choose the answer:
    /ok -> 200, /fail -> 500, /redirect -> 302, /flaky/N -> 500 for the first N
    attempts of each webhook-id, then 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = []
        self.attempts = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.received.append(
                        {"path": self.path, "headers": headers, "body": body,
                         "at": time.monotonic()})
                    n = receiver.attempts.get(headers.get("webhook-id"), 0) + 1
                    receiver.attempts[headers.get("webhook-id")] = n
                status = 200
                if self.path == "/fail":
                    status = 500
                elif self.path == "/redirect":
                    status = 302
                elif self.path.startswith("/flaky/"):
                    status = 500 if n <= int(self.path.split("/")[2]) else 200
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path):
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
