#!/usr/bin/python3
"""polar-sim's fault injection over real HTTP: added latency that holds
connections without tying up threads, error ratios, malformed JSON, stalls,
outages (refused and reset connections) with recovery on the same port, the slow
worker, faults from flags and from a TOML file, and the admin listener.

Usage: POLAR_SIM_BIN=build/bin/polar-sim /usr/bin/python3 tests/sim/faults_test.py
"""
import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from polar_sim_support import Sim, wait_for  # noqa: E402

BIN = os.environ.get("POLAR_SIM_BIN", "build/bin/polar-sim")


class Latency(unittest.TestCase):
    def test_latency_holds_many_requests_at_once_on_a_single_http_thread(self):
        sim = Sim(BIN, "--threads", "1", "--latency", "events:list=fixed:400ms")
        try:
            t0 = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda _: sim.get("/v1/events/").status, range(8)))
            elapsed = time.monotonic() - t0
            self.assertEqual(statuses, [200] * 8)
            self.assertGreaterEqual(elapsed, 0.39)
            # Eight sleeps in a row on one thread would take 3.2 s.
            self.assertLess(elapsed, 1.6, "held responses must not occupy the thread")
            # Other routes are not delayed.
            t0 = time.monotonic()
            sim.get("/healthz", token=None)
            self.assertLess(time.monotonic() - t0, 0.3)
        finally:
            sim.close()

    def test_a_stall_holds_every_response_until_it_ends(self):
        sim = Sim(BIN)
        try:
            r = sim.post("/_sim/faults/stall", {"for": "600ms"}, token=None)
            self.assertEqual(r.status, 200)
            t0 = time.monotonic()
            self.assertEqual(sim.get("/v1/events/").status, 200)
            self.assertGreaterEqual(time.monotonic() - t0, 0.45)
            time.sleep(0.2)
            t0 = time.monotonic()
            sim.get("/v1/events/")
            self.assertLess(time.monotonic() - t0, 0.3)
        finally:
            sim.close()


class Errors(unittest.TestCase):
    def test_error_ratio_and_malformed_json_set_at_run_time(self):
        sim = Sim(BIN)
        try:
            free = sim.ready["products"]["free"]["id"]
            r = sim.request("PUT", "/_sim/faults/routes/checkouts:create",
                            body={"error_ratio": 1, "error_status": 502}, token=None)
            self.assertEqual(r.status, 200, r.body)
            r = sim.post("/v1/checkouts/", {"product_id": free})
            self.assertEqual((r.status, r.body), (502, b"Bad Gateway"))
            self.assertEqual(sim.get("/v1/checkouts/").json()["pagination"]["total_count"], 0)
            sim.request("PUT", "/_sim/faults/routes/checkouts:create",
                        body={"error_ratio": 0.5}, token=None)
            statuses = [sim.post("/v1/checkouts/", {"product_id": free}).status
                        for _ in range(200)]
            self.assertTrue(60 < statuses.count(500) < 140, statuses.count(500))
            sim.request("PUT", "/_sim/faults", token=None,
                        body={"routes": {"events:list": {"malformed_ratio": 1}}})
            body = sim.get("/v1/events/").body
            with self.assertRaises(json.JSONDecodeError):
                json.loads(body)
            self.assertEqual(sim.post("/v1/checkouts/", {"product_id": free}).status, 201)
            sim.request("DELETE", "/_sim/faults", token=None)
            json.loads(sim.get("/v1/events/").body)
            metrics = sim.get("/metrics", token=None).body.decode()
            self.assertIn('polar_sim_faults_injected_total{kind="malformed"} 1', metrics)
        finally:
            sim.close()

    def test_faults_from_flags_and_from_a_toml_file_apply_at_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[faults.routes."events:ingest"]\nerror_ratio = 1.0\nerror_status = 503\n')
            path = f.name
        sim = Sim(BIN, "--config", path, "--error-ratio", "events:list=1:500")
        try:
            self.assertEqual(sim.post("/v1/events/ingest", {"events": []}).status, 503)
            self.assertEqual(sim.get("/v1/events/").status, 500)
            faults = sim.get("/_sim/faults", token=None).json()
            self.assertEqual(faults["routes"]["events:ingest"]["error_status"], 503)
        finally:
            sim.close()
            os.unlink(path)

    def test_bad_fault_settings_are_refused_with_every_problem(self):
        sim = Sim(BIN)
        try:
            r = sim.request("PUT", "/_sim/faults", token=None, body={
                "routes": {"nope:route": {"error_ratio": 0.1},
                           "*": {"latency": "soon", "error_ratio": 7}}})
            self.assertEqual(r.status, 422)
            detail = r.json()["detail"]
            for part in ("nope:route", "latency", "error_ratio"):
                self.assertIn(part, detail)
        finally:
            sim.close()
        p = subprocess.run([BIN, "--latency", "x=bad", "--outage", "sometimes"],
                                         capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 64)
        self.assertIn("--latency", p.stderr)
        self.assertIn("--outage", p.stderr)


class Outage(unittest.TestCase):
    def test_refuse_closes_the_port_then_the_same_port_serves_again(self):
        sim = Sim(BIN)
        try:
            r = sim.post("/_sim/faults/outage", {"mode": "refuse", "for": "1s"}, token=None)
            self.assertEqual(r.status, 200, r.body)
            time.sleep(0.3)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((sim.host, sim.port), timeout=2).close()
            wait_for(lambda: self._serves(sim), timeout=5, what="the port to come back")
        finally:
            sim.close()

    def test_reset_answers_every_request_with_a_tcp_reset_until_it_ends(self):
        sim = Sim(BIN, "--admin-listen", "127.0.0.1:0")
        try:
            admin_host, admin_port = sim.ready["admin_url"][len("http://"):].rsplit(":", 1)
            conn = http.client.HTTPConnection(admin_host, int(admin_port), timeout=5)
            conn.request("POST", "/_sim/faults/outage", body=json.dumps({"mode": "reset"}),
                         headers={"Content-Type": "application/json"})
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            time.sleep(0.1)
            with self.assertRaises((ConnectionResetError, ConnectionAbortedError,
                                    http.client.RemoteDisconnected)):
                sim.get("/v1/events/")
            # The admin listener is not affected and ends the outage.
            conn = http.client.HTTPConnection(admin_host, int(admin_port), timeout=5)
            conn.request("DELETE", "/_sim/faults/outage")
            self.assertEqual(conn.getresponse().status, 200)
            conn.close()
            wait_for(lambda: self._serves(sim), timeout=5, what="service after the reset outage")
        finally:
            sim.close()

    def test_an_outage_set_at_start_ends_by_itself(self):
        sim = Sim(BIN, "--outage", "refuse:700ms")
        try:
            time.sleep(0.1)
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection((sim.host, sim.port), timeout=2).close()
            wait_for(lambda: self._serves(sim), timeout=5, what="the start-up outage to end")
        finally:
            sim.close()

    @staticmethod
    def _serves(sim):
        try:
            return sim.get("/healthz", token=None, timeout=2).status == 200
        except OSError:
            return False


class SlowWorker(unittest.TestCase):
    def test_a_slow_worker_delays_checkout_success(self):
        sim = Sim(BIN, "--job-time", "checkout.handle_free_success=fixed:20ms")
        try:
            r = sim.request("PUT", "/_sim/faults/worker/high_priority",
                            body={"factor": 25}, token=None)  # 500 ms
            self.assertEqual(r.status, 200, r.body)
            c = sim.post("/v1/checkouts/", {"product_id": sim.ready["products"]["free"]["id"]})
            secret = c.json()["client_secret"]
            t0 = time.monotonic()
            sim.post(f"/v1/checkouts/client/{secret}/confirm", {"customer_email": "w@polar.sh"},
                     token=None)
            wait_for(lambda: sim.get(f"/v1/checkouts/client/{secret}", token=None)
                     .json()["status"] == "succeeded", what="succeeded")
            self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        finally:
            sim.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
