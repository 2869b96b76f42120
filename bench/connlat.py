#!/usr/bin/env python3
"""Median time (microseconds) to connect to 127.0.0.1:PORT and read the server's whole
answer, over N connections: what a client of a published port waits for."""
import socket
import statistics
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
times = []
for _ in range(n):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        while s.recv(4096):
            pass
    times.append(time.perf_counter() - t)
print("%.1f" % (statistics.median(times) * 1e6))
