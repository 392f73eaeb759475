#!/usr/bin/env python3
"""Slowloris against a running runtime shim: opens N connections that each send half a
request header and stop, then sends one real scoring request on a fresh connection, then
reads what every stalled connection was answered.

    python3 bench/slowloris.py URL N
    e.g. MODEL_PATH=... HEADER_TIMEOUT_SECS=2 PORT=8080 runtime-shim &
         python3 bench/slowloris.py http://127.0.0.1:8080 1500

With the shim's header clock (HEADER_TIMEOUT_SECS) every stalled connection is answered
408 and closed, and the real request is answered 200 (it waits in the listen backlog
while MAX_CONNECTIONS are held). Needs only the Python standard library; raise
`ulimit -n` above N first.
"""
import json
import socket
import sys
import time
import urllib.parse
import urllib.request


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    url, n = sys.argv[1].rstrip("/"), int(sys.argv[2])
    u = urllib.parse.urlsplit(url)
    addr = (u.hostname, u.port or 80)
    sample = json.load(urllib.request.urlopen(url + "/model/sample_request", timeout=30))

    t0 = time.time()
    stalled = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=60)
        s.sendall(b"POST /model/score HTTP/1.1\r\nHost: x\r\nContent-Le")
        stalled.append(s)
    print(f"{n} stalled connections opened in {time.time() - t0:.2f} s", flush=True)

    t1 = time.time()
    req = urllib.request.Request(
        url + "/model/score",
        data=json.dumps(sample).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        print(f"a real request sent after them: {r.status} in {time.time() - t1:.2f} s")

    answers = {}
    for s in stalled:
        try:
            head = s.recv(64)
            key = head[9:12].decode() if head else "closed without an answer"
        except OSError as e:
            key = type(e).__name__
        answers[key] = answers.get(key, 0) + 1
        s.close()
    print(f"the stalled connections, {time.time() - t0:.2f} s after the first: {answers}")
    if answers != {"408": n}:
        sys.exit(1)


if __name__ == "__main__":
    main()
