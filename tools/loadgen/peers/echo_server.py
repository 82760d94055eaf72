#!/usr/bin/env python3
"""The article's echo server (`server.py`), threaded: the Python peer for the echo benchmark.

Byte for byte what `tcpchat --serve --mode echo` speaks: `连接成功!` (no newline) on accept, then
for each `recv(1024)` the reply `第N条信息:` + the bytes as received; `exit` (with or without a
line ending) closes. Like tcpchat's echo mode, and unlike the article's server, it serves many
clients at once (one thread each) and never decodes what it echoes. Written for this project.

Usage: echo_server.py [--listen 127.0.0.1:PORT]   (PORT 0 picks a free port)
Prints `listening on HOST:PORT` on stderr once bound. Loopback addresses only.
"""

import socket
import threading

import loopback

EXIT = (b"exit", b"exit\n", b"exit\r\n")


def handle_client(conn):
    try:
        conn.sendall("连接成功!".encode())
        count = 0
        while True:
            data = conn.recv(1024)
            if not data or data in EXIT:
                break
            count += 1
            conn.sendall(f"第{count}条信息:".encode() + data)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    server = loopback.listen("echo_server.py", __doc__.splitlines()[0])
    while True:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle_client, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
