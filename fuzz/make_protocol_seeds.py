#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_protocol (fuzz/corpus/fuzz_protocol/).

Record format (see fuzz_protocol.cc): [client u8][length u16 LE][payload].
Layouts follow common/include/vgpu/protocol.h (host order, x86-64 padding).
Rerun after a protocol change; the seeds are small and checked in.
"""
import os
import struct
import sys

MAGIC, VERSION = 0x55504756, 1
HELLO, LEASE_REQUEST, LEASE_RETURN = 1, 5, 7
TOKENS = {0: b"fuzz-token-a", 1: b"fuzz-token-a", 2: b"fuzz-token-b"}


def header(type_, size):
    return struct.pack("<IHHII", MAGIC, VERSION, type_, size, 0)


def hello(token, reconnect=0, devices=2):
    body = struct.pack("<iI", os.getpid() & 0x7FFFFFFF, devices)
    body += bytes(range(16)) + bytes(range(16, 32)) + bytes(16 * 6)
    body += token.ljust(128, b"\0")
    body += struct.pack("<II", reconnect, 0)
    return header(HELLO, 16 + len(body)) + body


def lease_request(device):
    return header(LEASE_REQUEST, 24) + struct.pack("<II", device, 0)


def lease_return(device, epoch, idle=0, busy_ns=1000):
    return header(LEASE_RETURN, 40) + struct.pack("<IIQQ", device, idle, epoch, busy_ns)


def record(client, payload):
    return struct.pack("<BH", client, len(payload)) + payload


SEEDS = {
    "hello": [(0, hello(TOKENS[0]))],
    "hello_bad_token": [(0, hello(b"nope-nope"))],
    "hello_no_token": [(0, hello(b""))],
    "request_before_hello": [(0, lease_request(0))],
    "lease_cycle": [(0, hello(TOKENS[0])), (0, lease_request(0)), (0, lease_return(0, 1)),
                    (0, lease_request(1)), (0, lease_return(1, 1, idle=1))],
    "two_tenants_contend": [(0, hello(TOKENS[0])), (2, hello(TOKENS[2])), (0, lease_request(1)),
                            (2, lease_request(1)), (0, lease_return(1, 1, idle=1)), (2, lease_return(1, 1))],
    "second_hello": [(1, hello(TOKENS[1])), (1, hello(TOKENS[1], reconnect=1))],
    "bad_device": [(0, hello(TOKENS[0])), (0, lease_request(7)), (1, hello(TOKENS[1])),
                   (1, lease_return(0xFFFFFFFF, 0))],
    "bad_version": [(0, header(HELLO, 184)[:4] + struct.pack("<H", 2) + header(HELLO, 184)[6:])],
    "short": [(0, header(HELLO, 184)[:10])],
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_protocol")
    os.makedirs(out, exist_ok=True)
    for name, recs in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"".join(record(c, p) for c, p in recs))


if __name__ == "__main__":
    main()
