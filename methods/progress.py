"""Progress of long loops (HE Lloyd and descent iterations, federated rounds).

A bar on the terminal (tqdm on stderr, left as one finished line when done; off when stderr is not a
terminal, as in CI) and one line per step on the ``privmark`` logger, which a Hydra job writes to its
log (``run.log``) and, when no bar shows the step, to the console. What the console shows, and the
heartbeat between lines, are :mod:`benchmarks._console`'s.
"""

from __future__ import annotations

import logging

from tqdm.auto import tqdm

from benchmarks._console import BARS, note

log = logging.getLogger("privmark")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """``with Progress("HE K-means: Lloyd", total=None, unit="iter") as p: ... p.step(shift=0.1)``"""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it"):
        self.desc, self.total, self.n = desc, total, 0
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=None, leave=True, dynamic_ncols=True)
        if not self.bar.disable:
            BARS.add(self.bar)

    def step(self, **info) -> None:
        self.n += 1
        self.bar.update(1)
        if info:
            self.bar.set_postfix({k: _fmt(v) for k, v in info.items()}, refresh=False)
        of = f"/{self.total}" if self.total else ""
        # with a bar on the terminal the step is on the bar; the job log gets the line either way
        line = f"{self.desc} {self.n}{of} " + " ".join(f"{k}={_fmt(v)}" for k, v in info.items())
        log.info("%s", line, extra={"file_only": not self.bar.disable})
        if not self.bar.disable:
            note(line)  # the bar said it

    def close(self) -> None:
        BARS.discard(self.bar)
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
