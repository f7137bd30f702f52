#!/usr/bin/env python3
"""A minimal HTTP forward proxy for scripts/fresh-machine.sh.

The clean root runs in a network namespace whose only way out is this proxy on the
host end of a veth pair: plain-HTTP GETs (apt and Debian's mirror; `Connection:
close`, so one request per connection) and CONNECT tunnels (HTTPS, e.g. crates.io).
No host routing or NAT changes are needed.

    fresh-machine-proxy.py LISTEN_IP PORT
"""
import socket
import sys
import threading
from urllib.parse import urlsplit

HEADER_MAX_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 30


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk or len(data) > HEADER_MAX_BYTES:
                client.close()
                return
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        method, target, version = lines[0].decode("latin-1").split(" ", 2)
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
        else:
            url = urlsplit(target)
            upstream = socket.create_connection((url.hostname, url.port or 80), timeout=CONNECT_TIMEOUT_S)
            path = (url.path or "/") + ("?" + url.query if url.query else "")
            kept = [l for l in lines[1:] if not l.lower().startswith((b"connection:", b"proxy-connection:", b"keep-alive:"))]
            request = [f"{method} {path} {version}".encode("latin-1")] + kept + [b"Connection: close"]
            upstream.sendall(b"\r\n".join(request) + b"\r\n\r\n" + rest)
        upstream.settimeout(None)
        print(f"{method} {target}", flush=True)
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)
    except Exception as e:  # one bad request must not stop the proxy
        print(f"error: {e!r}", flush=True)
        try:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        client.close()


def main():
    ip, port = sys.argv[1], int(sys.argv[2])
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((ip, port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=handle, args=(client,), daemon=True).start()


if __name__ == "__main__":
    main()
