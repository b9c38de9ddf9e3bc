"""A search page and a JSON API over a code file: upload an image or pick an indexed one, see its nearest images.

create_app(model, database) builds the Flask app from loaded objects (tests build it cheaply);
load_app(ckpt_path, index) loads and checks them first, as scripts/search.py does. Only the images
listed in the code file are served, by position: no request names a file. Uploads are read within
max_upload_mb (Flask's MAX_CONTENT_LENGTH -> 413) and PIL's decompression-bomb pixel limit, and
decoded fully by PIL, so that a damaged file is refused (400) before it reaches the network.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import random
import shlex
import socket
import threading
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

try:
    from flask import Flask, abort, jsonify, render_template, request, send_file
    from werkzeug.exceptions import HTTPException
    from werkzeug.serving import BaseWSGIServer, make_server
except ModuleNotFoundError as err:  # an optional extra
    raise ModuleNotFoundError(f"the search server needs Flask ({err}): pip install -e '.[serve]'") from err

from hashnet.data.images import read_image
from hashnet.inference.checkpoint import load_checkpoint
from hashnet.inference.encoding import eval_transform, images_to_codes, pick_device
from hashnet.retrieval.codes import CodeFile, check_codes_checkpoint, check_packable
from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.store import load_database
from hashnet.training.module import HashingModule
from hashnet.utils.errors import ConfigError, UserError

log = logging.getLogger(__name__)


class ServeError(UserError, OSError):
    """The server cannot listen where it was asked to."""

MAX_K = 1000        # most results one request may ask for: a page of 1,000 thumbnails is already slow to draw
MAX_PORT = 65535
SAMPLE = 24         # indexed images offered on the page to search with
THUMBNAIL = 160     # pixels per side of the uploaded query shown on the page


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_settings(port: object, max_upload_mb: object, k: object, max_decoding: object) -> None:
    """ConfigError naming the first of serve.yaml's settings that cannot work, before anything is loaded."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= MAX_PORT:
        raise ConfigError(f"port={port!r}: it must be a TCP port, a whole number in 0..{MAX_PORT} (0: any free one) "
                          "-- pass e.g. port=8000")
    if not _number(max_upload_mb) or not max_upload_mb > 0:
        raise ConfigError(f"max_upload_mb={max_upload_mb!r}: it must be a positive number of megabytes -- pass e.g. "
                          "max_upload_mb=8")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k={k!r}: the default number of results must be a whole number >= 1 -- pass e.g. k=20")
    if not isinstance(max_decoding, int) or isinstance(max_decoding, bool) or max_decoding < 1:
        raise ConfigError(f"max_decoding={max_decoding!r}: it must be a whole number >= 1, the uploads decoded at "
                          "once -- pass e.g. max_decoding=2")


def whole_number(value: str) -> bool:
    """Whether a request value is a whole number in ASCII digits (str.isdigit also takes '²' or '٣')."""
    return value.isascii() and value.isdigit()


def labels_of(row: np.ndarray) -> list[int]:
    """A 0/1 label row (C,) -> the indices of its classes."""
    return np.flatnonzero(row).tolist()


def decode_upload(data: bytes) -> Image.Image:
    """Uploaded bytes -> an RGB PIL image of the pixels read_image decodes from them (so the same code as the file
    encoded any other way); ValueError saying why the bytes are not a usable image."""
    if not data:
        raise ValueError("the uploaded file is empty")
    try:  # as training reads a file (read_image): over Image.MAX_IMAGE_PIXELS refused from the header
        pixels = read_image(data)
    except (OSError, SyntaxError, ValueError, RuntimeError) as err:
        raise ValueError(f"the uploaded file is not a readable image ({err})") from err
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def thumbnail_uri(image: Image.Image) -> str:
    """A small PNG copy of image as a data: URI, to show an uploaded query without storing it."""
    small = image.copy()
    small.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class Searcher:
    """The model, the code file and its index; searches by an indexed position or by an image.

    Each search returns {"query", "results": [{rank, position, path, distance, labels, relevant}],
    "k", "encode_ms", "search_ms"}; relevant (shares a label with the query) is None for unlabeled queries.
    """

    def __init__(self, model: HashingModule, database: CodeFile, backend: str = "auto",
                 device: torch.device | None = None) -> None:
        check_packable(model.hash_bit)
        if model.hash_bit != database.hash_bit:
            raise ValueError(f"the model gives {model.hash_bit}-bit codes, the code file holds {database.hash_bit}-bit codes")
        self.model, self.database, self.device = model, database, device or torch.device("cpu")
        self.index = HammingIndex(database.codes, backend)
        self.transform = eval_transform(database.meta["resize_size"], database.meta["crop_size"])
        self.max_k = min(MAX_K, len(database))
        self._lock = threading.Lock()  # one forward pass at a time: the server answers requests in threads
        model.eval().to(self.device)

    def by_position(self, position: int, k: int) -> dict[str, Any]:
        """The k nearest of the indexed image at position (its stored code, so no encoding)."""
        labels = self.database.labels[position]
        query = {"position": position, "path": self.database.paths[position], "labels": labels_of(labels)}
        return self._search(self.database.codes[position:position + 1], labels, query, k, encode_ms=0.0)

    def by_image(self, image: Image.Image, k: int, name: str = "") -> dict[str, Any]:
        """The k nearest of an RGB image, encoded by the model with the code file's eval transform."""
        start = time.perf_counter()
        with self._lock:
            packed = images_to_codes(self.model, image, self.transform, self.device)
        encode_ms = (time.perf_counter() - start) * 1e3
        return self._search(packed, None, {"filename": name, "labels": None}, k, encode_ms)

    def _search(self, packed: np.ndarray, labels: np.ndarray | None, query: dict, k: int,
                encode_ms: float) -> dict[str, Any]:
        if self.index.backend == "faiss":  # one query a request: OpenMP threads only contend; set in each server thread
            import faiss  # measured on 200,000 64-bit codes, 2 busy cores: 22 ms a search with them, 0.6 ms with one
            faiss.omp_set_num_threads(1)
        start = time.perf_counter()
        distances, indices = self.index.search(packed, k)
        search_ms = (time.perf_counter() - start) * 1e3
        db_labels = self.database.labels[indices[0]]
        relevant = (db_labels.astype(np.int64) @ labels > 0).tolist() if labels is not None and labels.any() else [None] * k
        results = [{"rank": rank, "position": int(i), "path": self.database.paths[i], "distance": int(d),
                    "labels": labels_of(row), "relevant": rel}
                   for rank, (d, i, row, rel) in enumerate(zip(distances[0], indices[0], db_labels, relevant), 1)]
        return {"query": query, "results": results, "k": k, "encode_ms": encode_ms, "search_ms": search_ms}


def create_app(model: HashingModule, database: CodeFile, checkpoint: str | None = None, k: int = 20,
               max_upload_mb: float = 8, backend: str = "auto", device: torch.device | None = None,
               max_decoding: int = 2) -> Flask:
    """The Flask app serving the page (/), the API (/api/search, /api/info) and the indexed images (/image/<position>).

    At most max_decoding uploads are decoded at once (the others wait): a decoded image takes 3 bytes a pixel, up to
    PIL's pixel limit (about 270 MB), whatever its file size."""
    check_settings(0, max_upload_mb, k, max_decoding)
    searcher = Searcher(model, database, backend, device)
    if k > searcher.max_k:
        log.warning("k=%d is more than a request may ask for (%d); the page shows %d", k, searcher.max_k, searcher.max_k)
        k = searcher.max_k
    app = Flask(__name__, static_folder=None)  # nothing but the routes below: no folder of files to reach into
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 2 ** 20)
    decoding = threading.BoundedSemaphore(max_decoding)
    info = {key: database.meta.get(key) for key in ("hash_bit", "net", "dataset", "split")}
    info.update(size=len(database), checkpoint=checkpoint, encoded_with=database.meta.get("checkpoint"),
                backend=searcher.index.backend, max_k=searcher.max_k, max_upload_mb=max_upload_mb)

    pixelated = int(database.meta.get("crop_size", THUMBNAIL)) < THUMBNAIL  # small images: crisp when enlarged

    def wants_json() -> bool:
        return request.path.startswith("/api/")

    def read_k() -> int:
        value = request.values.get("k", "") or str(k)
        if not whole_number(value) or not 1 <= int(value) <= searcher.max_k:
            abort(400, f"k={value!r}: give a whole number of results in 1..{searcher.max_k}")
        return int(value)

    def read_position() -> int:
        value = request.values.get("item", "")
        if not whole_number(value):
            abort(400, f"item={value!r}: give the position of an indexed image, a whole number in 0..{len(database) - 1}")
        if int(value) >= len(database):
            abort(404, f"item={value}: the index holds positions 0..{len(database) - 1}")
        return int(value)

    def read_upload() -> tuple[Image.Image, str]:
        upload = request.files.get("image")
        if upload is None:
            abort(400, "no file in the form field 'image'")
        try:
            data = upload.read()
            with decoding:  # max_decoding at once: each holds a whole decoded image
                return decode_upload(data), upload.filename or ""
        except ValueError as err:
            abort(400, f"{upload.filename or 'upload'}: {err}")

    def page(status: int = 200, **context: Any) -> tuple[str, int]:
        sample = sorted(random.sample(range(len(database)), min(SAMPLE, len(database))))
        return render_template("search.html", info=info, k=context.pop("k", k), sample=sample,
                               pixelated=pixelated, **context), status

    @app.errorhandler(HTTPException)
    def refuse(err: HTTPException):
        if err.code == 413:
            err.description = f"the upload is over the {max_upload_mb:g} MB limit (max_upload_mb)"
        if wants_json():
            return jsonify(error=err.description, status=err.code), err.code
        return page(err.code, error=err.description)

    @app.get("/api/info")
    def api_info():
        return jsonify(info)

    @app.route("/api/search", methods=["GET", "POST"])
    def api_search():
        if request.method == "POST":
            k_ = read_k()
            image, name = read_upload()
            return jsonify(searcher.by_image(image, k_, name))
        return jsonify(searcher.by_position(read_position(), read_k()))

    @app.route("/", methods=["GET", "POST"])
    def index():
        if request.method == "POST":
            k_ = read_k()
            image, name = read_upload()
            return page(found=searcher.by_image(image, k_, name), query_src=thumbnail_uri(image), k=k_)
        if "item" not in request.args:
            return page()
        position, k_ = read_position(), read_k()
        return page(found=searcher.by_position(position, k_), query_src=f"/image/{position}", k=k_)

    @app.get("/image/<int:position>")
    def image(position: int):
        if position >= len(database):
            abort(404, f"no indexed image at position {position} (0..{len(database) - 1})")
        path = os.path.abspath(database.paths[position])
        if not os.path.isfile(path):
            abort(404, f"indexed image {position} is missing on disk: {path}")
        return send_file(path, max_age=3600)

    return app


def load_app(ckpt_path: str, index: str, backend: str = "auto", device: str = "auto", **options: Any) -> Flask:
    """create_app on the checkpoint at ckpt_path and the code file at index, refusing a code file of
    another code length, network or dataset (CodeFileError) and a missing file (FileNotFoundError)."""
    check_settings(0, options.get("max_upload_mb", 8), options.get("k", 20), options.get("max_decoding", 2))
    model = load_checkpoint(ckpt_path)
    database = load_database(index, hash_bit=model.hash_bit, net=model.hparams.net["backbone"], dataset=model.hparams.dataset)
    check_codes_checkpoint(database.meta, ckpt_path, index)
    return create_app(model, database, checkpoint=str(ckpt_path), backend=backend, device=pick_device(device), **options)


def expose_command(script: str, overrides: list[str]) -> str:
    """The command line that serves the same app to other machines: the user's overrides with host=0.0.0.0."""
    kept = [o for o in overrides if not o.lstrip("+~").startswith("host=")]
    return shlex.join(["python", script, *kept, "host=0.0.0.0"])


def start_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded WSGI server for app bound to host:port (port 0: a free one); call serve_forever().

    OSError naming the address and the fix when it cannot listen there (the port is taken, the host is not this machine's).
    """
    check_settings(port, 8, 20, 1)
    try:  # bound here, not by werkzeug, which would print its own message and exit
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.create_server((host, port), family=family)
    except OSError as err:
        raise ServeError(f"cannot listen on {host}:{port} ({err.strerror or err}): pass another port (port=0 picks a "
                         f"free one) or host=127.0.0.1") from err
    with listener:  # the server keeps a duplicate of the socket
        return make_server(host, port, app, threaded=True, fd=listener.fileno())
