#!/usr/bin/env python3
"""A taskmesh watcher in Python, written from docs/protocol.md alone (standard library plus
Debian's python3-websockets). It watches one task on one worker and prints each event as one
JSON line, until the attempt's final state event (or `watch_end`). It asks for batched delivery
(`"batch": true`), so events come many to an `events` frame; `--no-batch` asks for one `event`
frame per event instead.

usage: watch.py --host H --port P --ca CA --cert CERT --key KEY --share-key K --id ID --task T
                [--since ATTEMPT:SEQ] [--no-batch] [--raw]
--raw also prints every frame received to stderr.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys

import websockets


def proof(share_key, text):
    return hmac.new(share_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def frames_of(raw):
    """One WebSocket message holds one frame, or a `batch` of frames to handle in order."""
    msg = json.loads(raw)
    if msg.get("type") == "batch":
        return msg["frames"]
    return [msg]


async def main():
    ap = argparse.ArgumentParser()
    for a in ("host", "port", "ca", "cert", "key", "share-key", "id", "task"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--since")
    ap.add_argument("--no-batch", action="store_true")
    ap.add_argument("--raw", action="store_true")
    args = ap.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    async with websockets.connect(
        "wss://%s:%s/" % (args.host, args.port), ssl=ctx, compression=None, max_size=1048576, ping_interval=None
    ) as ws:
        pending = []

        async def recv():
            while not pending:
                raw = await ws.recv()
                if args.raw:
                    print("<- " + raw, file=sys.stderr)
                pending.extend(frames_of(raw))
            return pending.pop(0)

        async def send(msg):
            text = json.dumps(msg, separators=(",", ":"))
            if args.raw:
                print("-> " + text, file=sys.stderr)
            await ws.send(text)

        hello = await recv()
        assert hello["type"] == "hello", hello
        nonce = base64.urlsafe_b64encode(os.urandom(24)).rstrip(b"=").decode()
        mac = proof(args.share_key, "taskmesh/1 client watcher %s %s %s" % (args.id, hello["nonce"], nonce))
        await send({"type": "auth", "v": 1, "role": "watcher", "id": args.id, "nonce": nonce, "mac": mac})
        welcome = await recv()
        assert welcome["type"] == "welcome", welcome
        expected = proof(args.share_key, "taskmesh/1 server %s %s %s" % (welcome["id"], nonce, hello["nonce"]))
        if not hmac.compare_digest(expected, welcome["mac"]):
            sys.exit("server failed the share_key proof")

        watch = {"type": "watch", "sub": "py1", "task": args.task}
        if not args.no_batch:
            watch["batch"] = True
        if args.since:
            attempt, seq = args.since.split(":")
            watch["since"] = {"attempt": int(attempt), "seq": int(seq)}
        await send(watch)
        while True:
            f = await recv()
            t = f["type"]
            if t == "ping":
                await send({"type": "pong", "ts": f["ts"]})
            elif t in ("event", "events") and f["sub"] == "py1":
                # `events` carries a list of events in (attempt, seq) order; `event` carries one.
                final = False
                for ev in f["events"] if t == "events" else [f["event"]]:
                    print(json.dumps(ev, separators=(",", ":")), flush=True)
                    if ev["type"] == "state" and ev["state"] != "RUNNING":
                        final = True
                        break
                if final:
                    break
            elif t == "watch_end" and f["sub"] == "py1":
                print(json.dumps({"watch_end": f["reason"]}), flush=True)
                break
            elif t == "error":
                print("worker error: %s %s" % (f["code"], f["message"]), file=sys.stderr)
        await send({"type": "unwatch", "sub": "py1"})


asyncio.run(main())
