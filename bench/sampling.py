"""What a server process costs: CPU seconds so far, resident memory now and at its peak."""

import threading
from types import TracebackType

import psutil

SAMPLE_INTERVAL = 0.005
# While one request at a time is in flight: a single W3 request may last only tens of ms.
FINE_SAMPLE_INTERVAL = 0.002


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user) + float(times.system)


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


class PeakRss:
    """Sample the process's RSS every `interval` (~5 ms) in a thread while in the `with` block."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self.peak = 0
        self.samples = 0

    def _read(self) -> None:
        try:
            rss = int(self._process.memory_info().rss)
        except psutil.Error:
            return
        self.peak = max(self.peak, rss)
        self.samples += 1

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._read()
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakRss":
        self._read()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
