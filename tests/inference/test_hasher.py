"""The Python API (hashnet.inference.hasher): a checkpoint's codes from Hasher equal scripts/encode.py's bit for bit on the
digits; index -> search -> save -> load round-trips; unreadable files are skipped and reported; bad inputs are
refused with a UserError naming the input and the fix."""
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashnet.data.dataset import ImageDataset
from hashnet.data.images import read_image
from hashnet.retrieval.codes import load_codes
from hashnet.retrieval.index import HammingIndex, SearchError
from hashnet.retrieval.index_file import IndexFileError
from hashnet.tasks.encode import encode
from hashnet.inference.hasher import Hasher, InputError
from hashnet.tasks.serve import decode_upload
from hashnet.utils.errors import UserError

from conftest import compose_config
from small_data import png_16bit

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread


@pytest.fixture(scope="module")
def checkpoint(tiny_csv_run) -> str:
    return tiny_csv_run[1]["checkpoint"]


@pytest.fixture(scope="module")
def hasher(checkpoint) -> Hasher:
    return Hasher.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def encoded(checkpoint, digits_root, tmp_path_factory):
    """scripts/encode.py's code file of the digits database (the task it runs, on a composed config)."""
    out = tmp_path_factory.mktemp("encode")
    path = encode(compose_config("encode", [f"ckpt_path={checkpoint}", f"paths.data_dir={digits_root.parent}",
                                            "dataset.eval_batch_size=750", "device=cpu"], out))
    return load_codes(path)


def test_import_hashnet_stays_light():
    code = "import sys, hashnet; assert 'torch' not in sys.modules and 'hashnet.tasks' not in sys.modules; " \
           "from hashnet import Hasher, HammingIndex; print(Hasher.__module__, HammingIndex.__module__)"
    result = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["hashnet.inference.hasher", "hashnet.retrieval.index"]


@pytest.mark.slow
def test_codes_equal_the_encode_scripts_bit_for_bit(hasher, encoded, checkpoint):
    assert not hasher.model.training and (hasher.resize_size, hasher.crop_size) == (36, 32)
    assert hasher.meta == {"hash_bit": 16, "net": "resnet18", "method": "hashnet", "dataset": "digits",
                           "checkpoint": str(Path(checkpoint).resolve()), "resize_size": 36, "crop_size": 32,
                           "checkpoint_sha256": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()}
    paths = encoded.paths
    codes = hasher.encode(paths, batch_size=100)  # other batches than the task's 750: eval mode, per-image outputs
    assert codes.dtype == np.uint8 and codes.shape == (1497, 2)
    assert np.array_equal(codes, encoded.codes)
    # the same images as PIL images, and as a uint8 tensor batch of their pixels
    some = [0, 5, 700, 1496]
    pictures = [Image.open(paths[i]) for i in some]
    assert np.array_equal(hasher.encode(pictures), encoded.codes[some])
    pixels = torch.stack([read_image(paths[i]) for i in some])
    assert np.array_equal(hasher.encode(pixels, batch_size=3), encoded.codes[some])
    assert np.array_equal(hasher.encode(paths[700]), encoded.codes[[700]])  # one path: N = 1
    assert hasher.encode(pixels.float() / 255).shape == (4, 2)  # float pixels in [0, 1] are taken too
    assert hasher.encode([]).shape == (0, 2)


@pytest.mark.slow
def test_index_search_save_load_round_trip(hasher, encoded, digits_root, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    index = hasher.index(digits_root / "images", batch_size=256)  # every digit, walked recursively
    assert len(index) == 1797 and index.meta["skipped"] == [] and index.meta["images"] == str(digits_root / "images")
    assert "encoding 1797 images: 1797/1797 (100%" in caplog.text  # no terminal here: progress as log lines
    position = {path: i for i, path in enumerate(index.paths)}
    assert np.array_equal(index.codes[[position[path] for path in encoded.paths]], encoded.codes)

    queries = [encoded.paths[i] for i in (0, 3, 1000)]
    distances, positions, found = index.search(hasher.encode(queries), k=10, return_paths=True)
    assert distances.shape == positions.shape == found.shape == (3, 10) and (distances[:, 0] == 0).all()
    assert all(list(row) == sorted(row) for row in distances)
    everything = index.search(hasher.encode(queries), k=len(index), return_paths=True)
    for query, row_d, row_p in zip(queries, everything[0], everything[2]):
        assert query in set(row_p[row_d == 0])  # each image finds itself at distance 0 (2 steps: among many)

    saved = index.save(tmp_path / "photos.hnx")
    for loaded in (HammingIndex.load(saved, hash_bit=16, net="resnet18", dataset="digits",
                                     checkpoint=hasher.checkpoint), hasher.load_index(saved)):
        assert np.array_equal(loaded.codes, index.codes) and list(loaded.paths) == list(index.paths)
        assert loaded.meta == index.meta
        again = loaded.search(hasher.encode(queries), k=10)
        assert np.array_equal(again[0], distances) and np.array_equal(again[1], positions)
    with pytest.raises(IndexFileError, match="hash_bit=16, expected hash_bit=32"):
        HammingIndex.load(saved, hash_bit=32)
    for k in (0, 2.5, "10"):
        with pytest.raises(SearchError, match="k must be >= 1, a whole number of neighbours.*pass e.g. k=10"):
            index.search(hasher.encode(queries), k=k)


@pytest.mark.slow
def test_unreadable_files_are_skipped_and_reported(hasher, digits_root, tmp_path, caplog):
    folder = tmp_path / "photos"
    for i, name in enumerate(["a/one.png", "a/deeper/two.png", "b/three.png"]):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((digits_root / "images" / f"{i:04d}.png").read_bytes())
    (folder / "b" / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "b" / "half.png").write_bytes((digits_root / "images" / "0003.png").read_bytes()[:60])
    (folder / "notes.txt").write_text("not an image: not walked")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "four.png").write_bytes((digits_root / "images" / "0004.png").read_bytes())
    caplog.set_level(logging.INFO)
    index = hasher.index(folder, batch_size=2, workers=1)
    names = [Path(path).relative_to(folder).as_posix() for path in index.paths]
    assert names == ["a/deeper/two.png", "a/one.png", "b/three.png"]  # sorted walk, hidden folders left out
    skipped = [Path(path).name for path in index.meta["skipped"]]
    assert skipped == ["broken.jpg", "half.png"]
    assert "skipped 2 of 5 images that cannot be read" in caplog.text
    assert str(folder / "b" / "broken.jpg") in caplog.text and str(folder / "b" / "half.png") in caplog.text
    assert np.array_equal(index.codes, hasher.encode([str(folder / name) for name in names]))
    with pytest.raises(InputError, match="image .*broken.jpg cannot be read .*hasher.index\\(\\) skips"):
        hasher.encode([folder / "a" / "one.png", folder / "b" / "broken.jpg"])

    # scripts/encode.py images=<dir>: the same codes and paths as a code file without labels
    path = encode(compose_config("encode", [f"ckpt_path={hasher.checkpoint}", f"images={folder}", "device=cpu",
                                            "num_workers=0"], tmp_path / "run"))
    assert path == tmp_path / "run" / "codes_images.npz"
    written = load_codes(path, hash_bit=16, net="resnet18", dataset="digits")
    assert np.array_equal(written.codes, index.codes) and written.paths == list(index.paths)
    assert written.labels.shape == (3, 0) and written.meta["split"] == "images"
    assert [Path(p).name for p in written.meta["skipped"]] == ["broken.jpg", "half.png"]
    assert written.meta["images"] == str(folder.resolve()) and written.meta["checkpoint"] == hasher.checkpoint


def damaged_pil(folder: Path) -> Image.Image:
    """A PIL image of a PNG cut short: opened from its header, failing when its pixels are decoded."""
    Image.fromarray(np.zeros((32, 32, 3), np.uint8) + 7).save(folder / "whole.png")
    (folder / "cut.png").write_bytes((folder / "whole.png").read_bytes()[:70])
    return Image.open(folder / "cut.png")


@pytest.mark.parametrize("call, message", [
    (lambda h, d: h.index(d / "empty"), "image folder .*empty holds no image files \\(.jpg, .jpeg, .png"),
    (lambda h, d: h.index(d / "nowhere"), "image folder .*nowhere does not exist -- pass an existing folder"),
    (lambda h, d: h.index([]), "empty list of images -- pass a folder, or a list of image files"),
    (lambda h, d: h.index([d / "empty" / "notes.txt"]), "none of the 1 images of the list can be read"),
    (lambda h, d: h.encode([d / "empty" / "notes.txt"]), "image .*notes.txt cannot be read .* pass a readable image"),
    (lambda h, d: h.encode(["missing.png", "other.png"]), "image missing.png does not exist \\(2 of the 2 paths"),
    (lambda h, d: h.encode(d / "empty"), "image .*empty is a folder: hasher.index\\(folder\\) encodes"),
    (lambda h, d: h.encode(torch.zeros(3, 32, 32, dtype=torch.uint8)),
     "must be a batch \\(N, 3, H, W\\) of RGB pixels, got shape \\(3, 32, 32\\) \\(one image: images.unsqueeze"),
    (lambda h, d: h.encode(torch.zeros(2, 1, 32, 32, dtype=torch.uint8)), "got shape \\(2, 1, 32, 32\\)"),
    (lambda h, d: h.encode(torch.randn(2, 3, 32, 32)), "float image tensor must hold pixels in \\[0, 1\\]"),
    (lambda h, d: h.encode(torch.zeros(2, 3, 32, 32, dtype=torch.int32)), "uint8 pixels .* or floats"),
    (lambda h, d: h.encode(np.zeros((2, 32, 32, 5), np.uint8)), "images\\[0\\]: an image array must be \\(H, W\\) "
     "grey or \\(H, W, 3\\) RGB, got shape \\(32, 32, 5\\) -- pass e.g. np.asarray"),
    (lambda h, d: h.encode([1, 2]), "images\\[0\\] is a int: pass image paths, PIL images or numpy arrays"),
    # issue 29: a bytes path, an empty path, a damaged PIL image in a list
    (lambda h, d: Hasher(h.model, 36, 32, device="cuda:99"), "device='cuda:99': \\d+ CUDA GPUs are visible here -- "
     "pass device=cpu, or device=auto"),
    (lambda h, d: h.encode(b"photo.png"), "images is bytes: pass a path as a str \\(os.fsdecode\\(path\\)\\)"),
    (lambda h, d: h.encode(""), "images\\[0\\] is an empty path '' -- pass the path of an image file"),
    (lambda h, d: h.encode([np.zeros((8, 8, 3), np.uint8), damaged_pil(d)]),
     "image images\\[1\\] \\(a PngImageFile\\) cannot be read \\(OSError: "),
    (lambda h, d: h.encode(np.zeros((0, 5, 3), np.uint8)), "images\\[0\\]: an image array must hold at least 1 x 1 "
     "pixels, got shape \\(0, 5, 3\\)"),
    (lambda h, d: h.encode([torch.full((3, 8, 8), 3.0)]), "a float image tensor must hold pixels in \\[0, 1\\], got "
     "values in \\[3, 3\\]"),
    (lambda h, d: h.encode(["a.png"], batch_size=0), "batch_size must be a whole number >= 1, got 0"),
    (lambda h, d: h.index(d, workers=-1), "workers must be a whole number >= 0"),
])
def test_bad_inputs_name_the_input_and_the_fix(hasher, tmp_path, call, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    with pytest.raises(InputError, match=message) as caught:
        call(hasher, tmp_path)
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)


# ---- the same picture gives the same code every way in ----
def _picture(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    """An image file of a picture in one format, and the uint8 (H, W, 3) pixels it shows (None: as PIL decodes a
    lossy file)."""
    rng = np.random.default_rng(len(name))
    rgb = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (20, 28), dtype=np.uint16)
    path = folder / name
    if name == "rgb.png":
        Image.fromarray(rgb).save(path)
    elif name == "grey.png":
        Image.fromarray(rgb[..., 0]).save(path)
        return path, rgb[..., :1].repeat(3, axis=2)
    elif name in ("grey16.png", "grey16.tif"):
        Image.fromarray(deep).save(path)  # PIL writes 16-bit grey: its high byte is the 8-bit picture
        return path, (deep >> 8).astype(np.uint8)[..., None].repeat(3, axis=2)
    elif name == "rgb16.png":
        return png_16bit(path, 20), None
    elif name == "float.tif":  # PIL mode F, pixels in [0, 1]
        Image.fromarray(rgb[..., 0].astype(np.float32) / 255).save(path)
        return path, rgb[..., :1].repeat(3, axis=2)
    elif name in ("palette.png", "palette.gif"):
        Image.fromarray(rgb).convert("P").save(path)
        return path, np.asarray(Image.fromarray(rgb).convert("P").convert("RGB"))
    elif name == "rgba.png":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(path)
    elif name == "cmyk.jpg":
        Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
        return path, None
    elif name == "exif_rotated.png":
        image = Image.fromarray(rgb)
        exif = image.getexif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
        image.save(path, exif=exif)
        return path, np.rot90(rgb, -1)
    elif name == "animated.gif":
        frames = [Image.fromarray(rgb).convert("P"), Image.fromarray(255 - rgb).convert("P")]
        frames[0].save(path, save_all=True, append_images=frames[1:])
        return path, np.asarray(frames[0].convert("RGB"))  # the first frame
    return path, rgb


@pytest.mark.parametrize("name", ["rgb.png", "grey.png", "grey16.png", "grey16.tif", "float.tif", "rgb16.png",
                                  "palette.png", "palette.gif", "rgba.png", "cmyk.jpg", "exif_rotated.png",
                                  "animated.gif"])
def test_the_same_picture_gives_the_same_code_every_way_in(hasher, tmp_path, name):
    path, pixels = _picture(name, tmp_path)
    if pixels is None:  # a lossy or 16-bit RGB file: the pixels PIL decodes (scaled to 8 bits) are the picture
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    with Image.open(path) as image:
        ways = {"path": path, "str": str(path), "PIL": image, "numpy": pixels,
                "tensor": torch.from_numpy(pixels.copy()).permute(2, 0, 1)}
        seen = [sample[0] for sample in ImageDataset(list(ways.values()), hasher.transform, "error")]
        for way, network_input in zip(ways, seen):  # the very pixels the network gets
            assert torch.equal(network_input, seen[-1]), way
        codes = dict(zip(ways, hasher.encode(list(ways.values()))))
    batch = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None]
    codes["uint8 batch"], codes["float batch"] = hasher.encode(batch)[0], hasher.encode(batch / 255)[0]
    codes["upload"] = hasher.encode(decode_upload(path.read_bytes()))[0]  # a page upload, as serve decodes it
    codes["folder"] = hasher.index(tmp_path, progress=False).codes[0]
    if name.startswith("grey16"):
        with Image.open(path) as image:
            codes["16-bit numpy"] = hasher.encode(np.asarray(image))[0]  # uint16 (H, W)
    for way, code in codes.items():
        assert np.array_equal(code, codes["tensor"]), f"{name} by {way}: {code} != {codes['tensor']}"
