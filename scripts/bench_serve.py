"""Benchmark the search server: requests per second and latency of GET /api/search?item=<position>&k=<k>.

The index holds random codes (200,000 x 64 bits by default) with random one-hot labels over 10
classes and made-up paths; search by position reads the stored code, so no image is encoded and the
network (an untrained ResNet-18) is only built. Requests go through Flask's test client (in process:
routing, the search, JSON; no sockets) or, with --server local, over HTTP to the threaded server of
scripts/serve.py on a free 127.0.0.1 port, one keep-alive-less request after another. Positions are
drawn at random; each request's latency is timed, the first --warmup are left out.

    python scripts/bench_serve.py                     # test client, 200,000 x 64 bits, k=20, 500 requests
    python scripts/bench_serve.py --server local --requests 300
"""
from __future__ import annotations

import argparse
import http.client
import logging
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from hashnet.retrieval.codes import CodeFile
from hashnet.tasks.serve import create_app, start_server
from hashnet.tasks.setup import build_model
from hashnet.training.module import HashingModule

CLASSES = 10


def random_database(size: int, bits: int, seed: int) -> CodeFile:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, size=(size, bits // 8), dtype=np.uint8)
    labels = np.eye(CLASSES, dtype=np.uint8)[rng.integers(0, CLASSES, size)]
    meta = {"hash_bit": bits, "net": "resnet18", "dataset": "random", "split": "database", "checkpoint": None,
            "resize_size": 36, "crop_size": 32}
    return CodeFile(codes, labels, [f"images/{i:06d}.png" for i in range(size)], meta)


def untrained_model(bits: int) -> HashingModule:
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "configs"), version_base="1.3"):
        return build_model(compose("train", overrides=[f"hash_bit={bits}", "method.class_num=10"]))


def time_requests(get: Callable[[str], bytes], urls: list[str], warmup: int) -> list[float]:
    """Seconds of each request after the first warmup ones."""
    times = []
    for url in urls:
        start = time.perf_counter()
        get(url)
        times.append(time.perf_counter() - start)
    return times[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000, help="indexed codes")
    parser.add_argument("--bits", type=int, default=64, help="code length (a multiple of 8)")
    parser.add_argument("--k", type=int, default=20, help="results per request")
    parser.add_argument("--requests", type=int, default=500, help="requests timed (after --warmup)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--server", choices=("client", "local"), default="client",
                        help="client: Flask's test client in this process; local: HTTP to a server on 127.0.0.1")
    parser.add_argument("--backend", default="auto", help="auto / faiss / exact")
    args = parser.parse_args()

    app = create_app(untrained_model(args.bits), random_database(args.size, args.bits, seed=0), k=args.k,
                     backend=args.backend)
    rng = np.random.default_rng(1)
    urls = [f"/api/search?item={i}&k={args.k}" for i in rng.integers(0, args.size, args.requests + args.warmup)]
    if args.server == "client":
        client = app.test_client()
        how = "Flask test client, in process (no sockets)"

        def get(url: str) -> bytes:
            response = client.get(url)
            assert response.status_code == 200, response.data
            return response.data
        times = time_requests(get, urls, args.warmup)
    else:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        server = start_server(app, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        how = f"HTTP to the threaded local server on 127.0.0.1:{server.port}, one request at a time"

        def get(url: str) -> bytes:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            connection.request("GET", url)
            response = connection.getresponse()
            assert response.status == 200, response.read()
            data = response.read()
            connection.close()
            return data
        try:
            times = time_requests(get, urls, args.warmup)
        finally:
            server.shutdown()
    backend = app.test_client().get("/api/info").get_json()["backend"]
    print(f"search by position: {args.size:,} random {args.bits}-bit codes, k={args.k}, {backend} backend; {how}")
    print(f"  {len(times)} requests: {len(times) / sum(times):.1f} requests/s, median latency "
          f"{statistics.median(times) * 1e3:.2f} ms, p90 {np.percentile(times, 90) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
