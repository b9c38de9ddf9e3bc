"""Progress over a long loop: a tqdm bar on a terminal, log lines elsewhere (CI, SLURM logs, a service's log).

A non-TTY stream would otherwise receive a redraw of the bar for every update (as training's ProgressBar avoids).
"""
from __future__ import annotations

import logging
import sys
import time

LOG_EVERY = 0.1  # without a terminal: a line every tenth of the work...
LOG_SECONDS = 30.0  # ...or every 30 s, whichever comes first, and one at the end


class Progress:
    """Counts units of work (images) done out of total; `with Progress(total, "encoding") as bar: bar.update(n)`.

    tty: draw a tqdm bar (None: when stderr is a terminal, or in a Jupyter kernel, where tqdm draws a widget);
    otherwise log to `logger` at INFO. enabled=False: silent.
    """

    def __init__(self, total: int, desc: str, logger: logging.Logger, tty: bool | None = None,
                 enabled: bool = True) -> None:
        self.total, self.desc, self.log, self.enabled = total, desc, logger, enabled
        self.tty = (sys.stderr.isatty() or "ipykernel" in sys.modules) if tty is None else tty
        self.done, self._logged, self._start = 0, 0, time.perf_counter()
        self._last = self._start
        self._bar = None
        if enabled and self.tty:
            from tqdm.auto import tqdm  # a dependency of pytorch-lightning
            self._bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if self.enabled and self.done < self.total and (
                self.done - self._logged >= LOG_EVERY * self.total or now - self._last >= LOG_SECONDS):
            self._line(now)

    def _line(self, now: float) -> None:
        self._logged, self._last = self.done, now
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        self.log.info("%s: %d/%d (%.0f%%, %.0f s, %.1f/s)", self.desc, self.done, self.total,
                      100.0 * self.done / max(self.total, 1), elapsed, rate)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            self._line(time.perf_counter())

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
