#!/usr/bin/python3
"""A tiny TLS test server for HttpEngine tests: HTTP/2 when ALPN selects h2,
HTTP/1.1 with keep-alive otherwise. Every answer is 200 (or --status, with an
optional --retry-after header) with a JSON body
naming the protocol and the number of the connection it came over, so a test
can see keep-alive reuse and h2 multiplexing (or --body, fixed). With --stall it accepts
connections and never answers (for timeouts).

Prints "PORT <n>" on stdout once listening on 127.0.0.1 (port 0: a free one).
Loopback only; runs until SIGTERM (the test's Process sends it).
"""
import argparse
import json
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events

counter_lock = threading.Lock()
connections = 0


STATUS = 200
EXTRA_HEADERS = []
BODY = None


def body_for(protocol, number):
    if BODY is not None:
        return BODY
    return json.dumps({"protocol": protocol, "connection": number}).encode()


def serve_h2(tls, number):
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    while True:
        data = tls.recv(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.StreamEnded):
                body = body_for("h2", number)
                conn.send_headers(event.stream_id, [
                    (":status", str(STATUS)),
                    ("content-type", "application/json"),
                    ("content-length", str(len(body))),
                ] + [(k.lower(), v) for k, v in EXTRA_HEADERS])
                conn.send_data(event.stream_id, body, end_stream=True)
        tls.sendall(conn.data_to_send())


def serve_http11(tls, number):
    buffer = b""
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
        body = body_for("http/1.1", number)
        extra = "".join(f"{k}: {v}\r\n" for k, v in EXTRA_HEADERS)
        tls.sendall(f"HTTP/1.1 {STATUS} X\r\n".encode() +
                    b"Content-Type: application/json\r\n" + extra.encode() +
                    b"Content-Length: " + str(len(body)).encode() +
                    b"\r\n\r\n" + body)


def handle(raw, context, stall):
    global connections
    with counter_lock:
        connections += 1
        number = connections
    try:
        with context.wrap_socket(raw, server_side=True) as tls:
            if stall:
                while tls.recv(65536):
                    pass
                return
            if tls.selected_alpn_protocol() == "h2":
                serve_h2(tls, number)
            else:
                serve_http11(tls, number)
    except (ssl.SSLError, OSError):
        pass  # an untrusting client hangs up mid-handshake: expected


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--alpn", default="h2,http/1.1")
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--retry-after", help="a Retry-After header value")
    parser.add_argument("--body", help="the answer's body instead of the protocol JSON")
    args = parser.parse_args()
    global STATUS, BODY
    STATUS = args.status
    if args.body is not None:
        BODY = args.body.encode()
    if args.retry_after is not None:
        EXTRA_HEADERS.append(("Retry-After", args.retry_after))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(args.alpn.split(","))

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
        threading.Thread(target=handle, args=(raw, context, args.stall),
                         daemon=True).start()


if __name__ == "__main__":
    main()
