import json
import os
import stat

import pytest

from hashnet.utils.files import atomic_write, atomic_write_json


def test_json_written_with_usual_permissions(tmp_path):
    path = atomic_write_json(tmp_path / "sub" / "metrics.json", {"mAP": 0.5})
    assert json.loads(path.read_text()) == {"mAP": 0.5}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "codes.bin"
    path.write_bytes(b"old")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["codes.bin"]
