#!/usr/bin/python3
"""A TLS server for the HTTPS client's fault tests: HTTP/2 when ALPN selects h2,
HTTP/1.1 with keep-alive otherwise, and HTTP/2 faults on cue.

Every answer is 200 with the body {"inserted":1,"duplicates":0,...} plus what
the server saw: "connection" (the number of the TCP connection, from 1),
"request" (the number of the request on that connection, from 1), "open" (the
HTTP/2 streams open on that connection when this request arrived, itself
included) and "resumed" (the TLS session was resumed).

Faults (HTTP/2 unless said otherwise; N counts requests per connection):
  --max-streams N     SETTINGS_MAX_CONCURRENT_STREAMS = N
  --delay MS          answer each request MS milliseconds after it arrived
  --rst-every N       answer every Nth request with RST_STREAM(INTERNAL_ERROR)
  --refuse-every N    answer every Nth request with RST_STREAM(REFUSED_STREAM)
  --goaway-at N       on the first connection, at the Nth request: answer the
                      ones before, send GOAWAY whose last stream id is the one
                      before it, leave it and every later one unanswered, and
                      close the connection 200 ms later
  --close-after N     close the connection after N answers (HTTP/1.1 says
                      Connection: close; HTTP/2 sends GOAWAY first)
  --stall-handshake   accept TCP connections and never start TLS

  --report-writes     after each write that carries answers, print
                      "WROTE <before> <after>": CLOCK_MONOTONIC in ns just
                      before and just after the write (the clock the daemon's
                      SystemClock::Now() reads), so a test can wait for an
                      answer to be on the wire and check how it was dated

Prints "PORT <n>" on stdout once listening on 127.0.0.1 (port 0: a free one).
Loopback only; runs until SIGTERM (the test's Process sends it).
"""
import argparse
import json
import select
import socket
import ssl
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

ARGS = None
counter_lock = threading.Lock()
connections = 0


def send_answers(tls, data):
    """Writes `data`, which carries answers; with --report-writes says when."""
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    tls.sendall(data)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    if ARGS.report_writes:
        with counter_lock:
            print("WROTE", before, after, flush=True)


def body_for(number, request, open_streams, resumed):
    return json.dumps({"inserted": 1, "duplicates": 0, "connection": number,
                       "request": request, "open": open_streams,
                       "resumed": resumed}).encode()


def serve_h2(tls, number, resumed):
    config = h2.config.H2Configuration(client_side=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    if ARGS.max_streams:
        # A second SETTINGS frame in the same first flight, so the client
        # has the limit before it sends anything.
        conn.update_settings(
            {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: ARGS.max_streams})
    tls.sendall(conn.data_to_send())
    requests = 0
    answered = 0
    pending = []  # (due, stream_id, request number)
    open_streams = set()
    request_open = {}  # stream id -> streams open when it arrived
    close_at = None
    flush_all = False
    goaway_last = None
    while True:
        now = time.monotonic()
        if close_at is not None and now >= close_at:
            return
        due = [p for p in pending if p[0] <= now or flush_all]
        pending = [p for p in pending if p[0] > now and not flush_all]
        flush_all = False
        for _, stream_id, request in due:
            if close_at is not None:
                break  # python-h2 sends nothing after its GOAWAY
            body = body_for(number, request, request_open[stream_id], resumed)
            open_streams.discard(stream_id)
            try:
                conn.send_headers(stream_id, [
                    (":status", "200"),
                    ("content-type", "application/json"),
                    ("content-length", str(len(body))),
                ])
                conn.send_data(stream_id, body, end_stream=True)
            except h2.exceptions.StreamClosedError:
                continue  # the client reset it (it gave up waiting)
            answered += 1
            if ARGS.close_after and answered >= ARGS.close_after:
                conn.close_connection(last_stream_id=stream_id)
                close_at = time.monotonic() + 0.05
        if goaway_last is not None and close_at is None and not flush_all:
            conn.close_connection(last_stream_id=goaway_last)
            close_at = time.monotonic() + 0.2
        data = conn.data_to_send()
        if data and due:
            send_answers(tls, data)
        elif data:
            tls.sendall(data)
        wait = 0.5
        if pending:
            wait = max(0.0, min(p[0] for p in pending) - time.monotonic())
        if close_at is not None:
            wait = min(wait, max(0.0, close_at - time.monotonic()))
        if tls.pending() == 0:
            ready, _, _ = select.select([tls], [], [], wait)
            if not ready:
                continue
        try:
            data = tls.recv(65536)
        except ssl.SSLWantReadError:
            continue
        if not data:
            return
        for event in conn.receive_data(data):
            if not isinstance(event, h2.events.StreamEnded):
                continue
            if close_at is not None or goaway_last is not None:
                continue  # at or after GOAWAY: not processed
            requests += 1
            stream_id = event.stream_id
            open_streams.add(stream_id)
            request_open[stream_id] = len(open_streams)
            if ARGS.goaway_at and number == 1 and requests == ARGS.goaway_at:
                # The requests before this one are answered first (nothing
                # can follow a GOAWAY here), then GOAWAY names the last.
                goaway_last = max(0, stream_id - 2)
                flush_all = True
                continue
            if ARGS.rst_every and requests % ARGS.rst_every == 0:
                open_streams.discard(stream_id)
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                continue
            if ARGS.refuse_every and requests % ARGS.refuse_every == 0:
                open_streams.discard(stream_id)
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                continue
            pending.append((time.monotonic() + ARGS.delay / 1000.0, stream_id,
                            requests))
        data = conn.data_to_send()
        if data:
            tls.sendall(data)


def serve_http11(tls, number, resumed):
    buffer = b""
    requests = 0
    while True:
        while b"\r\n\r\n" not in buffer:
            data = tls.recv(65536)
            if not data:
                return
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(buffer) < length:
            data = tls.recv(65536)
            if not data:
                return
            buffer += data
        buffer = buffer[length:]
        requests += 1
        if ARGS.delay:
            time.sleep(ARGS.delay / 1000.0)
        body = body_for(number, requests, 1, resumed)
        closing = ARGS.close_after and requests >= ARGS.close_after
        send_answers(tls, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" +
                     (b"Connection: close\r\n" if closing else b"") +
                     b"Content-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
        if closing:
            return


def handle(raw, context):
    global connections
    with counter_lock:
        connections += 1
        number = connections
    try:
        if ARGS.stall_handshake:
            # Never reads the ClientHello: the handshake cannot progress.
            time.sleep(30)
            return
        with context.wrap_socket(raw, server_side=True) as tls:
            resumed = tls.session_reused
            if tls.selected_alpn_protocol() == "h2":
                serve_h2(tls, number, resumed)
            else:
                serve_http11(tls, number, resumed)
    except (ssl.SSLError, OSError):
        pass  # an untrusting client hangs up mid-handshake: expected
    finally:
        raw.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--alpn", default="h2,http/1.1")
    parser.add_argument("--max-streams", type=int, default=0)
    parser.add_argument("--delay", type=int, default=0)
    parser.add_argument("--rst-every", type=int, default=0)
    parser.add_argument("--refuse-every", type=int, default=0)
    parser.add_argument("--goaway-at", type=int, default=0)
    parser.add_argument("--close-after", type=int, default=0)
    parser.add_argument("--stall-handshake", action="store_true")
    parser.add_argument("--report-writes", action="store_true")
    global ARGS
    ARGS = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ARGS.cert, ARGS.key)
    context.set_alpn_protocols(ARGS.alpn.split(","))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    print("PORT", listener.getsockname()[1], flush=True)

    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(raw, context), daemon=True).start()


if __name__ == "__main__":
    main()
