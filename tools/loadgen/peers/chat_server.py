#!/usr/bin/env python3
"""A threaded chat room: the Python peer `tools/loadgen/bench/run.sh` compares
`tcpchat --serve` with.

Written for this project from the description of the article's threaded server (one thread per
client, `recv(1024)` in a loop, `send` back, close on `exit`), made a room: each line a client
sends goes to every client, the sender included, as `<user-N> line`. The article's own server
accepts one client per thread it starts and answers only its own client; this one keeps
accepting and shares a client list under one lock.

Protocol:
  on connect   `* welcome, you are user-N` once the client is in the room;
  each line    `<user-N> line` to everyone (the sender included), one `sendall` per client;
  `exit`       closes that connection.
A broadcast holds the lock while it writes, so every client sees the lines in one order; a
client that stops reading therefore stalls the room, as in any naive threaded server.

Usage: chat_server.py [--listen 127.0.0.1:PORT]   (PORT 0 picks a free port)
Prints `listening on HOST:PORT` on stderr once bound. Loopback addresses only.
"""

import socket
import threading

import loopback

clients = {}  # socket -> name
lock = threading.Lock()


def broadcast(message):
    with lock:
        for conn in list(clients):
            try:
                conn.sendall(message)
            except OSError:
                clients.pop(conn, None)


def handle_client(conn, name):
    with lock:
        clients[conn] = name
    prefix = b"<" + name.encode() + b"> "
    pending = b""
    try:
        conn.sendall(f"* welcome, you are {name}\n".encode())
        while True:
            data = conn.recv(1024)
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                line = line.rstrip(b"\r")
                if line == b"exit":
                    return
                broadcast(prefix + line + b"\n")
    except OSError:
        pass
    finally:
        with lock:
            clients.pop(conn, None)
        conn.close()


def main():
    server = loopback.listen("chat_server.py", __doc__.splitlines()[0])
    number = 0
    while True:
        conn, _ = server.accept()
        # As tcpchat does: a line is sent when it is written, not held back by Nagle.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        number += 1
        thread = threading.Thread(target=handle_client, args=(conn, f"user-{number}"))
        thread.daemon = True
        thread.start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
