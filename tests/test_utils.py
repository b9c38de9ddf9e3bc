import json
import logging
import os
import stat

import pytest

from hashnet.utils.files import atomic_write, atomic_write_json
from hashnet.utils.progress import Progress


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


def test_progress_logs_tenths_without_a_terminal_and_draws_a_bar_on_one(caplog, capsys):
    log = logging.getLogger("progress-test")
    caplog.set_level(logging.INFO, logger="progress-test")
    with Progress(100, "encoding 100 images", log, tty=False) as bar:
        for _ in range(25):
            bar.update(4)
    done = [record.getMessage().split(" (")[0] for record in caplog.records]
    assert done == [f"encoding 100 images: {n}/100" for n in (12, 24, 36, 48, 60, 72, 84, 96, 100)]
    caplog.clear()
    with Progress(10, "drawn", log, tty=True) as bar:
        bar.update(10)
    assert not caplog.records and "drawn: 100%" in capsys.readouterr().err  # tqdm's bar, on stderr
    with Progress(10, "quiet", log, tty=False, enabled=False) as bar:
        bar.update(10)
    assert not caplog.records
