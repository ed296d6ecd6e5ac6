#!/usr/bin/python3
"""polar-sim's webhook delivery over real HTTP to a receiver in this process:
Standard Webhooks signatures checked by an independent implementation (Python
hmac/base64, not polar-sim's code), payloads validated against the OpenAPI
document's webhook schemas, per-endpoint FIFO, retries with a stable webhook-id,
3xx as failure, auto-disable after 10 failed events, and the loopback flag.

Usage: POLAR_SIM_BIN=build/bin/polar-sim /usr/bin/python3 tests/sim/webhooks_test.py
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from polar_sim_support import (OpenApi, Sim, WebhookReceiver, openapi_path,  # noqa: E402
                               verify_standard_webhook, wait_for)

BIN = os.environ.get("POLAR_SIM_BIN", "build/bin/polar-sim")
API = None
FLOW_EVENTS = ["checkout.created", "checkout.updated", "customer.created",
               "order.created", "order.updated", "order.paid"]


def setUpModule():
    global API
    API = OpenApi(openapi_path())


class WebhookTestCase(unittest.TestCase):
    ARGS = ("--allow-loopback-webhooks", "--time-scale", "0.0005")

    def setUp(self):
        self.receiver = WebhookReceiver()
        self.sim = Sim(BIN, *self.ARGS)
        self.free = self.sim.ready["products"]["free"]["id"]

    def tearDown(self):
        self.sim.close()
        self.receiver.close()

    def endpoint(self, path, events=FLOW_EVENTS, **extra):
        r = self.sim.post("/v1/webhooks/endpoints",
                          {"url": self.receiver.url(path), "format": "raw",
                           "events": events, **extra})
        self.assertEqual(r.status, 201, r.body)
        API.response("/v1/webhooks/endpoints", "post", 201, r.json())
        return r.json()


class Delivery(WebhookTestCase):
    def test_a_free_checkout_flow_delivers_signed_valid_payloads_in_order(self):
        ep = self.endpoint("/ok")
        c = self.sim.post("/v1/checkouts/", {"product_id": self.free}).json()
        secret = c["client_secret"]
        self.sim.patch(f"/v1/checkouts/client/{secret}", {"customer_name": "Ada"}, token=None)
        self.sim.post(f"/v1/checkouts/client/{secret}/confirm",
                      {"customer_email": "ada@polar.sh"}, token=None)

        def done():
            got = self.receiver.on("/ok")
            last = json.loads(got[-1]["body"]) if got else None
            return got if len(got) >= 8 and last["type"] == "checkout.updated" and \
                last["data"]["status"] == "succeeded" else None

        got = wait_for(done, what="the whole flow's webhooks")
        types = [json.loads(r["body"])["type"] for r in got]
        self.assertEqual(types, ["checkout.created", "checkout.updated", "customer.created",
                                 "checkout.updated", "order.created", "order.updated",
                                 "order.paid", "checkout.updated"])
        statuses = [json.loads(r["body"])["data"].get("status") for r in got
                    if json.loads(r["body"])["type"] == "checkout.updated"]
        self.assertEqual(statuses, ["open", "confirmed", "succeeded"])
        ids = set()
        for r in got:
            h = r["headers"]
            self.assertEqual(h["user-agent"], "polar.sh webhooks")
            self.assertEqual(h["content-type"], "application/json")
            self.assertTrue(h["webhook-signature"].startswith("v1,"))
            verify_standard_webhook(ep["secret"], h, r["body"])
            payload = json.loads(r["body"])
            self.assertEqual(list(payload), ["type", "timestamp", "data"])
            API.webhook(payload["type"], payload)
            ids.add(h["webhook-id"])
        self.assertEqual(len(ids), len(got))
        # The deliveries API lists them (each is recorded once the receiver
        # has answered), and validates.
        path = f"/v1/webhooks/deliveries?endpoint_id={ep['id']}&limit=100"
        wait_for(lambda: self.sim.get(path).json()["pagination"]["total_count"] == 8,
                 what="eight recorded deliveries")
        API.response("/v1/webhooks/deliveries", "get", 200, self.sim.get(path).json())

    def test_a_tampered_body_or_a_wrong_secret_fails_the_independent_check(self):
        ep = self.endpoint("/ok", events=["checkout.created"])
        self.sim.post("/v1/checkouts/", {"product_id": self.free})
        got = wait_for(lambda: self.receiver.on("/ok"), what="a delivery")[0]
        verify_standard_webhook(ep["secret"], got["headers"], got["body"])
        with self.assertRaises(AssertionError):
            verify_standard_webhook(ep["secret"], got["headers"], got["body"] + b" ")
        with self.assertRaises(AssertionError):
            wrong = ep["secret"][:-1] + ("y" if ep["secret"].endswith("x") else "x")
            verify_standard_webhook(wrong, got["headers"], got["body"])

    def test_a_failed_attempt_is_retried_with_the_same_id_and_identical_bytes(self):
        self.endpoint("/flaky/2", events=["checkout.created"])
        self.sim.post("/v1/checkouts/", {"product_id": self.free})
        got = wait_for(lambda: (lambda g: g if len(g) == 3 else None)(
            self.receiver.on("/flaky/2")), what="three attempts")
        self.assertEqual(len({r["headers"]["webhook-id"] for r in got}), 1)
        self.assertEqual(len({r["body"] for r in got}), 1)
        # Backoff: 2-4 s then 4-8 s in Polar time, × 0.0005.
        self.assertGreaterEqual(got[1]["at"] - got[0]["at"], 0.0009)
        time.sleep(0.2)
        self.assertEqual(len(self.receiver.on("/flaky/2")), 3)

    def test_a_redirect_counts_as_a_failure(self):
        self.endpoint("/redirect", events=["checkout.created"])
        self.sim.post("/v1/checkouts/", {"product_id": self.free})
        wait_for(lambda: len(self.receiver.on("/redirect")) >= 2, what="a retry after a 302")

    def test_later_events_wait_for_earlier_unattempted_ones(self):
        # One slow endpoint, four webhook threads: first attempts stay in order.
        sim = Sim(BIN, "--allow-loopback-webhooks", "--time-scale", "0.01",
                  "--job-time", "webhook_event.send=uniform:0ms,30ms", "--queue", "webhooks=4")
        try:
            r = sim.post("/v1/webhooks/endpoints",
                         {"url": self.receiver.url("/ok"), "format": "raw",
                          "events": ["checkout.created"]})
            self.assertEqual(r.status, 201)
            created = [sim.post("/v1/checkouts/", {"product_id": self.free}).json()["id"]
                       for _ in range(8)]
            got = wait_for(lambda: (lambda g: g if len(g) == 8 else None)(self.receiver.on("/ok")),
                           what="eight deliveries")
            self.assertEqual([json.loads(r["body"])["data"]["id"] for r in got], created)
        finally:
            sim.close()


class Failure(WebhookTestCase):
    ARGS = ("--allow-loopback-webhooks", "--time-scale", "0.0001", "--queue", "webhooks=8")

    def test_ten_failed_attempts_per_event_and_ten_failed_events_disable_the_endpoint(self):
        ep = self.endpoint("/fail", events=["checkout.created"])
        for _ in range(10):
            self.sim.post("/v1/checkouts/", {"product_id": self.free})
        wait_for(lambda: not self.sim.get(f"/v1/webhooks/endpoints/{ep['id']}").json()["enabled"],
                 timeout=20, what="the endpoint to be disabled")
        got = self.receiver.on("/fail")
        per_event = {}
        for r in got:
            per_event[r["headers"]["webhook-id"]] = per_event.get(r["headers"]["webhook-id"], 0) + 1
        self.assertEqual(sorted(per_event.values()), [10] * 10)
        # Disabled: nothing more is sent.
        self.sim.post("/v1/checkouts/", {"product_id": self.free})
        time.sleep(0.3)
        self.assertEqual(len(self.receiver.on("/fail")), 100)
        r = self.sim.get(f"/v1/webhooks/deliveries?endpoint_id={ep['id']}&succeeded=false")
        self.assertEqual(r.json()["pagination"]["total_count"], 100)
        metrics = self.sim.get("/metrics", token=None).body.decode()
        self.assertIn("polar_sim_webhook_endpoints_disabled_total 1", metrics)

    def test_fewer_than_ten_failed_events_keep_the_endpoint_enabled(self):
        ep = self.endpoint("/fail", events=["checkout.created"])
        for _ in range(9):
            self.sim.post("/v1/checkouts/", {"product_id": self.free})
        wait_for(lambda: len(self.receiver.on("/fail")) == 90, timeout=20, what="90 attempts")
        time.sleep(0.2)
        self.assertTrue(self.sim.get(f"/v1/webhooks/endpoints/{ep['id']}").json()["enabled"])


class Loopback(unittest.TestCase):
    def test_loopback_urls_are_refused_without_the_flag_and_it_is_announced_with_it(self):
        strict = Sim(BIN)
        loose = Sim(BIN, "--allow-loopback-webhooks")
        try:
            body = {"url": "http://127.0.0.1:9/x", "format": "raw", "events": ["order.paid"]}
            r = strict.post("/v1/webhooks/endpoints", body)
            self.assertEqual(r.status, 422)
            API.response("/v1/webhooks/endpoints", "post", 422, r.json())
            self.assertEqual(loose.post("/v1/webhooks/endpoints", body).status, 201)
            self.assertTrue(loose.ready["allow_loopback_webhooks"])
            self.assertFalse(strict.ready["allow_loopback_webhooks"])
        finally:
            strict.close()
            said = loose.close()
        self.assertIn("accepting loopback webhook URLs", said)

    def test_endpoint_routes_validate_and_delete_is_204(self):
        sim = Sim(BIN)
        try:
            r = sim.post("/v1/webhooks/endpoints", {"url": "https://hooks.polar.sh/a",
                                                    "format": "raw", "events": ["order.paid"]})
            ep = r.json()
            for method, path, status in (("get", "/v1/webhooks/endpoints", 200),
                                         ("get", f"/v1/webhooks/endpoints/{ep['id']}", 200)):
                r = sim.request(method.upper(), path)
                API.response(path.replace(ep["id"], "{id}"), method, status, r.json())
            r = sim.patch(f"/v1/webhooks/endpoints/{ep['id']}", {"events": ["order.created"]})
            API.response("/v1/webhooks/endpoints/{id}", "patch", 200, r.json())
            r = sim.patch(f"/v1/webhooks/endpoints/{ep['id']}/secret", {})
            API.response("/v1/webhooks/endpoints/{id}/secret", "patch", 200, r.json())
            r = sim.request("DELETE", f"/v1/webhooks/endpoints/{ep['id']}")
            self.assertEqual((r.status, r.body), (204, b""))
            r = sim.get(f"/v1/webhooks/endpoints/{ep['id']}")
            API.response("/v1/webhooks/endpoints/{id}", "get", 404, r.json())
            # A non-loopback endpoint is never called: recorded as 200, as Polar
            # does in development.
            r = sim.post("/v1/webhooks/endpoints", {"url": "https://hooks.polar.sh/b",
                                                    "format": "raw",
                                                    "events": ["checkout.created"]})
            sim.post("/v1/checkouts/", {"product_id": sim.ready["products"]["free"]["id"]})
            wait_for(lambda: sim.get("/v1/webhooks/deliveries").json()["pagination"]
                     ["total_count"] == 1, what="a recorded delivery")
            self.assertEqual(sim.get("/v1/webhooks/deliveries").json()["items"][0]["http_code"],
                             200)
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
