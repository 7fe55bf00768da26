# SPDX-License-Identifier: Apache-2.0
"""free_ports.py N: prints N distinct free loopback TCP ports, for servers
that ops/kafka.sh and ops/registry.sh start (their configuration must name
the port before the server binds it).

DESIGN: the ports are drawn at random below the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range), not asked of the kernel with
bind(0). A port the kernel hands out is an ephemeral one: between our check
and the server's bind (a JVM's start, seconds on a loaded machine) any
outgoing connection or `--http-port auto` listener of a test running beside
it may be given the same port (0711 saw "Address already in use" for a
broker of a 3-node cluster). Nothing is given a port below the range
unless it asks for that number, so only another caller of this script can
collide, at a rate of about N / 20,000. Each port is checked free by
binding it (no SO_REUSEADDR, so a port in TIME_WAIT counts as taken).
"""
import random
import socket
import sys

LOWEST = 10000  # well above the registered services a machine may run


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    high = ephemeral_low() - 1
    ports = []
    if high - LOWEST < 1000:  # an unusual range: ask the kernel instead
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
    else:
        while len(ports) < n:
            p = random.randint(LOWEST, high)
            if p not in ports and free(p):
                ports.append(p)
    print(" ".join(map(str, ports)))


if __name__ == "__main__":
    main()
