#!/usr/bin/python3
"""Contract tests for polar-sim: every route and error case over real HTTP, each
body validated against Polar's OpenAPI document (tests/data/polar/openapi-2026-10.json.gz,
or the file POLAR_OPENAPI names).

Usage: POLAR_SIM_BIN=build/bin/polar-sim /usr/bin/python3 tests/sim/contract_test.py
"""
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from polar_sim_support import OpenApi, Sim, openapi_path, wait_for  # noqa: E402

BIN = os.environ.get("POLAR_SIM_BIN", "build/bin/polar-sim")
API = None


def setUpModule():
    global API
    API = OpenApi(openapi_path())


class SimTestCase(unittest.TestCase):
    ARGS = ()

    def setUp(self):
        self.sim = Sim(BIN, *self.ARGS)
        self.free = self.sim.ready["products"]["free"]["id"]
        self.paid = self.sim.ready["products"]["paid"]["id"]

    def tearDown(self):
        self.sim.close()

    def create(self, product=None, **extra):
        r = self.sim.post("/v1/checkouts/", {"product_id": product or self.free, **extra})
        self.assertEqual(r.status, 201, r.body)
        return r.json()


class ReadyLineAndSeed(unittest.TestCase):
    def test_the_ready_line_keeps_its_keys_and_the_seed_fixes_every_id(self):
        a, b, c = Sim(BIN, "--seed", "7"), Sim(BIN, "--seed", "7"), Sim(BIN, "--seed", "8")
        try:
            for key in ("listen", "base_url", "token", "organization_id",
                        "external_customer_ids", "read_token", "products", "customer_ids"):
                self.assertIn(key, a.ready)
            same = lambda s: (s.ready["token"], s.ready["organization_id"],
                              s.ready["products"], s.ready["customer_ids"])
            self.assertEqual(same(a), same(b))
            self.assertNotEqual(same(a), same(c))
            self.assertEqual(len(a.ready["external_customer_ids"]), 20)
        finally:
            for s in (a, b, c):
                s.close()


class Checkouts(SimTestCase):
    def test_create_in_both_forms_validates_as_checkout(self):
        r = self.sim.post("/v1/checkouts/", {"products": [self.free, self.paid],
                                             "customer_email": "buyer@polar.sh",
                                             "metadata": {"k": "v", "n": 1}})
        self.assertEqual(r.status, 201)
        API.response("/v1/checkouts/", "post", 201, r.json())
        self.assertEqual(len(r.json()["products"]), 2)
        r = self.sim.post("/v1/checkouts/", {"product_id": self.paid})
        self.assertEqual(r.status, 201)
        API.response("/v1/checkouts/", "post", 201, r.json())
        self.assertEqual(r.headers["polar-version"], "2026-04")
        self.assertEqual(r.headers["cache-control"], "private, no-store")

    def test_get_list_client_get_patch_and_confirm_validate(self):
        c = self.create()
        r = self.sim.get(f"/v1/checkouts/{c['id']}")
        API.response("/v1/checkouts/{id}", "get", 200, r.json())
        r = self.sim.get("/v1/checkouts/?limit=5")
        API.response("/v1/checkouts/", "get", 200, r.json())
        secret = c["client_secret"]
        r = self.sim.get(f"/v1/checkouts/client/{secret}", token=None)
        API.response("/v1/checkouts/client/{client_secret}", "get", 200, r.json())
        r = self.sim.patch(f"/v1/checkouts/client/{secret}",
                           {"customer": {"email": "x@polar.sh"}}, token=None)
        self.assertEqual(r.status, 200)
        API.response("/v1/checkouts/client/{client_secret}", "patch", 200, r.json())
        r = self.sim.patch(f"/v1/checkouts/{c['id']}", {"metadata": {"a": "b"}})
        API.response("/v1/checkouts/{id}", "patch", 200, r.json())
        r = self.sim.post(f"/v1/checkouts/client/{secret}/confirm",
                          {"customer_email": "buyer@polar.sh", "customer_name": "B"},
                          token=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "confirmed")
        API.response("/v1/checkouts/client/{client_secret}/confirm", "post", 200, r.json())
        API.schema("CheckoutPublicConfirmed", r.json())
        wait_for(lambda: self.sim.get(f"/v1/checkouts/client/{secret}", token=None)
                 .json()["status"] == "succeeded", what="succeeded")

    def test_a_paid_checkout_succeeds_after_the_simulated_stripe_delay(self):
        sim = Sim(BIN, "--stripe-delay", "300ms")
        try:
            r = sim.post("/v1/checkouts/", {"product_id": self.paid})
            secret = r.json()["client_secret"]
            body = {"customer_email": "p@polar.sh", "confirmation_token_id": "ctoken_x",
                    "customer_billing_address": {"country": "SE"}}
            # A token Stripe did not make is refused as Stripe would: 400 PaymentError.
            r = sim.post(f"/v1/checkouts/client/{secret}/confirm", body, token=None)
            self.assertEqual(r.status, 400, r.body)
            self.assertEqual(r.json()["error"], "PaymentError")
            # polar-sim's stand-in for Stripe's test helpers makes one that works.
            body["confirmation_token_id"] = sim.post("/_sim/stripe/confirmation_tokens", {},
                                                     token=None).json()["id"]
            t0 = time.monotonic()
            r = sim.post(f"/v1/checkouts/client/{secret}/confirm", body, token=None)
            self.assertEqual(r.status, 200, r.body)
            API.schema("CheckoutPublicConfirmed", r.json())
            wait_for(lambda: sim.get(f"/v1/checkouts/client/{secret}", token=None)
                     .json()["status"] == "succeeded", what="paid succeeded")
            self.assertGreaterEqual(time.monotonic() - t0, 0.28)
        finally:
            sim.close()

    def test_error_bodies_have_polars_shapes(self):
        r = self.sim.post("/v1/checkouts/", {"product_id": "not-a-uuid"})
        self.assertEqual(r.status, 422)
        API.response("/v1/checkouts/", "post", 422, r.json())
        r = self.sim.get("/v1/checkouts/8d1c1a7e-4c4b-4b8e-9a7e-2f1d1c2b3a4f")
        self.assertEqual(r.status, 404)
        API.response("/v1/checkouts/{id}", "get", 404, r.json())
        c = self.create()
        secret = c["client_secret"]
        self.sim.post(f"/v1/checkouts/client/{secret}/confirm",
                      {"customer_email": "e@polar.sh"}, token=None)
        r = self.sim.patch(f"/v1/checkouts/client/{secret}", {"customer_name": "x"}, token=None)
        self.assertEqual(r.status, 403)
        API.response("/v1/checkouts/client/{client_secret}", "patch", 403, r.json())
        r = self.sim.post(f"/v1/checkouts/client/{secret}/confirm", {}, token=None)
        self.assertEqual(r.status, 403)
        r = self.sim.post(f"/v1/checkouts/client/{self.create(self.paid)['client_secret']}/confirm",
                          {}, token=None)
        self.assertEqual(r.status, 422)
        API.response("/v1/checkouts/client/{client_secret}/confirm", "post", 422, r.json())

    def test_expired_checkouts_answer_410_on_client_routes(self):
        sim = Sim(BIN, "--checkout-ttl", "200ms")
        try:
            c = sim.post("/v1/checkouts/", {"product_id": self.free}).json()
            time.sleep(0.3)
            for r in (sim.get(f"/v1/checkouts/client/{c['client_secret']}", token=None),
                      sim.patch(f"/v1/checkouts/client/{c['client_secret']}", {}, token=None),
                      sim.get(f"/v1/checkouts/client/{c['client_secret']}/stream", token=None)):
                self.assertEqual(r.status, 410)
                API.response("/v1/checkouts/client/{client_secret}", "get", 410, r.json())
        finally:
            sim.close()

    def test_the_sweep_expires_open_checkouts_on_its_time_scaled_schedule(self):
        # 15 min × 0.001 = 0.9 s between sweeps.
        sim = Sim(BIN, "--checkout-ttl", "100ms", "--time-scale", "0.001")
        try:
            c = sim.post("/v1/checkouts/", {"product_id": self.free}).json()
            wait_for(lambda: sim.get(f"/v1/checkouts/{c['id']}").json()["status"] == "expired",
                     timeout=5, what="the sweep")
        finally:
            sim.close()

    def test_a_concurrent_update_during_confirm_is_409_then_403(self):
        sim = Sim(BIN, "--confirm-time", "1500ms")
        try:
            c = sim.post("/v1/checkouts/", {"product_id": self.free}).json()
            secret = c["client_secret"]
            result = {}
            t = threading.Thread(target=lambda: result.update(r=sim.post(
                f"/v1/checkouts/client/{secret}/confirm", {"customer_email": "l@polar.sh"},
                token=None)))
            t.start()
            statuses = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                s = sim.patch(f"/v1/checkouts/client/{secret}", {"locale": "en"}, token=None).status
                if not statuses or statuses[-1] != s:
                    statuses.append(s)
                if s == 403:
                    break
                time.sleep(0.02)
            t.join()
            self.assertEqual(result["r"].status, 200)
            # Open (200) until the confirm arrives, locked (409) while it is
            # processed, then not open (403).
            self.assertEqual([s for s in statuses if s != 200], [409, 403], statuses)
            r = sim.patch(f"/v1/checkouts/client/{secret}", {"locale": "en"}, token=None)
            self.assertEqual(r.json()["error"], "NotOpenCheckout")
        finally:
            sim.close()

    def test_the_checkout_stream_reports_confirm_order_and_success(self):
        c = self.create()
        secret = c["client_secret"]
        import http.client
        conn = http.client.HTTPConnection(self.sim.host, self.sim.port, timeout=10)
        conn.request("GET", f"/v1/checkouts/client/{secret}/stream")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.getheader("content-type").startswith("text/event-stream"))
        events = []

        def read():
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.decode().strip()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["key"] == "checkout.updated" and \
                            events[-1]["payload"]["status"] == "succeeded":
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.1)
        self.sim.post(f"/v1/checkouts/client/{secret}/confirm",
                      {"customer_email": "s@polar.sh"}, token=None)
        reader.join(timeout=10)
        conn.close()
        keys = [(e["key"], e["payload"].get("status")) for e in events]
        self.assertEqual(keys[0], ("checkout.updated", "confirmed"))
        self.assertIn(("checkout.order_created", None), keys)
        self.assertLess(keys.index(("checkout.order_created", None)),
                        keys.index(("checkout.updated", "succeeded")))
        # No endpoint: "delivered" is published right away.
        self.assertIn(("checkout.webhook_event_delivered", "confirmed"), keys)
        self.assertTrue(all("id" in e for e in events))
        self.assertEqual(self.sim.get("/v1/checkouts/client/polar_c_nope/stream",
                                      token=None).status, 404)


class Events(SimTestCase):
    ARGS = ("--event-lag", "200ms")

    def test_ingest_then_list_with_the_probe_filters(self):
        probe = "probe-" + str(time.time())
        t0 = "2020-01-01T00:00:00Z"
        body = {"events": [
            {"name": "generate.text", "external_customer_id": "loadtest-customer-0",
             "external_id": "e1", "metadata": {"probe_id": probe, "totalPrice": 0.5}},
            {"name": "generate.image", "external_customer_id": "loadtest-customer-0",
             "external_id": "e2", "metadata": {"probe_id": "other"}}]}
        r = self.sim.post("/v1/events/ingest", body)
        self.assertEqual(r.status, 200)
        API.response("/v1/events/ingest", "post", 200, r.json())
        self.assertEqual(r.json(), {"inserted": 2, "duplicates": 0})
        self.assertEqual(self.sim.post("/v1/events/ingest", body).json(),
                         {"inserted": 0, "duplicates": 2})
        q = "/v1/events/?" + urllib.parse.urlencode({
            "external_customer_id": "loadtest-customer-0", "metadata[probe_id]": probe,
            "start_timestamp": t0, "limit": 1})
        self.assertEqual(self.sim.get(q).json()["pagination"]["total_count"], 0)
        body = wait_for(lambda: (lambda j: j if j["pagination"]["total_count"] == 1 else None)(
            self.sim.get(q).json()), what="event visible")
        API.response("/v1/events/", "get", 200, body)
        API.schema("ListResource_Event_", body)
        self.assertEqual(body["items"][0]["name"], "generate.text")
        self.assertEqual(body["items"][0]["customer"]["external_id"], "loadtest-customer-0")

    def test_ingest_errors_are_422_with_polars_shape(self):
        cases = [
            {"events": [{"name": "a", "external_customer_id": "c",
                         "timestamp": "2999-01-01T00:00:00Z"}]},
            {"events": [{"name": "a", "external_customer_id": "c",
                         "organization_id": self.sim.ready["organization_id"]}]},
            {"events": [{"external_customer_id": "c"}]},
            {"nope": []},
        ]
        for body in cases:
            r = self.sim.post("/v1/events/ingest", body)
            self.assertEqual(r.status, 422, body)
            API.response("/v1/events/ingest", "post", 422, r.json())
        r = self.sim.get("/v1/events/?page=0")
        self.assertEqual(r.status, 422)
        API.response("/v1/events/", "get", 422, r.json())


class CrossCutting(SimTestCase):
    def test_auth_length_and_routing_errors(self):
        r = self.sim.get("/v1/events/", token=None)
        self.assertEqual((r.status, r.json()), (401, {"error": "Unauthorized",
                                                      "detail": "Unauthorized"}))
        self.assertEqual(r.headers["www-authenticate"], 'Bearer realm="polar"')
        r = self.sim.get("/v1/events/", token="polar_oat_bogus")
        self.assertEqual((r.status, r.json()["error"]), (401, "invalid_token"))
        r = self.sim.post("/v1/checkouts/", {"product_id": self.free},
                          token=self.sim.ready["read_token"])
        self.assertEqual((r.status, r.json()["error"]), (403, "insufficient_scope"))
        r = self.sim.request("POST", "/v1/events/ingest", content_length=False)
        self.assertEqual(r.status, 411)
        self.assertEqual(r.json()["error"], "LengthRequired")
        big = b'{"events":[' + b" " * (10 * 1024 * 1024) + b"]}"
        r = self.sim.post("/v1/events/ingest", big)
        self.assertEqual((r.status, r.json()["error"]), (413, "RequestBodyTooLarge"))
        self.assertEqual(self.sim.get("/v1/nowhere").body, b'{"detail":"Not Found"}')
        self.assertEqual(self.sim.get("/v1/events/ingest").status, 405)
        r = self.sim.get("/v1/events/", headers={"Polar-Version": "1999-01"})
        self.assertEqual((r.status, r.body), (404, b'{"detail":"Not Found"}'))
        r = self.sim.get("/v1/events/", headers={"Polar-Version": "2026-10"})
        self.assertEqual(r.headers["polar-version"], "2026-10")


class RateLimits(unittest.TestCase):
    def test_sandbox_mode_answers_429_with_an_empty_body_and_retry_after(self):
        sim = Sim(BIN, "--rate-limit", "sandbox")
        try:
            statuses = [sim.get("/v1/events/").status for _ in range(103)]
            self.assertEqual(statuses.count(200), 101)
            r = sim.get("/v1/events/")
            self.assertEqual((r.status, r.body), (429, b""))
            self.assertGreater(int(r.headers["retry-after"]), 0)
            self.assertNotIn("cache-control", r.headers)
            self.assertEqual(sim.get("/healthz").status, 200)  # outside ^/v1
        finally:
            sim.close()

    def test_the_confirm_zone_blocks_after_six_a_minute(self):
        sim = Sim(BIN, "--rate-limit", "production")
        try:
            product = sim.ready["products"]["free"]["id"]
            statuses = []
            for _ in range(7):
                c = sim.post("/v1/checkouts/", {"product_id": product}).json()
                statuses.append(sim.post(f"/v1/checkouts/client/{c['client_secret']}/confirm",
                                         {"customer_email": "r@polar.sh"}, token=None))
            self.assertEqual([r.status for r in statuses[:6]], [200] * 6)
            self.assertEqual(statuses[6].status, 429)
            self.assertEqual(statuses[6].headers["retry-after"], "1800")
        finally:
            sim.close()


class Metrics(unittest.TestCase):
    def test_metrics_show_queue_size_and_oldest_message_age_per_queue(self):
        sim = Sim(BIN, "--job-time", "checkout.handle_free_success=fixed:400ms")
        try:
            product = sim.ready["products"]["free"]["id"]
            for _ in range(3):
                c = sim.post("/v1/checkouts/", {"product_id": product}).json()
                sim.post(f"/v1/checkouts/client/{c['client_secret']}/confirm",
                         {"customer_email": "m@polar.sh"}, token=None)
            time.sleep(0.2)
            text = sim.get("/metrics", token=None).body.decode()
            for queue in ("high_priority", "medium_priority", "low_priority", "webhooks",
                          "tinybird"):
                self.assertIn(f'polar_queue_size{{queue="{queue}"}}', text)
                self.assertIn(f'polar_queue_oldest_message_age_seconds{{queue="{queue}"}}', text)
            self.assertIn('polar_queue_size{queue="high_priority"} 2', text)
            age = float(text.split('polar_queue_oldest_message_age_seconds{queue="high_priority"} ')[1]
                        .split("\n")[0])
            self.assertGreater(age, 0.1)
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
