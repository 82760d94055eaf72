"""The listening socket both Python peers use: `--listen HOST:PORT`, loopback addresses only,
`listening on HOST:PORT` printed on stderr once bound (PORT 0 picks a free port)."""

import argparse
import socket
import sys


def listen(name, description):
    """Parses `--listen`, binds it (loopback only) and returns the listening socket."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", default="127.0.0.1:8888")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "::1"):
        sys.exit(f"{name}: refusing to listen on {host}: loopback only")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(128)
    bound = server.getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
    return server
