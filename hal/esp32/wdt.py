"""Hardware watchdog. Armed by the first `feed()` (so a slow boot with WiFi and TLS set-up
cannot reset-loop the board), it cannot be stopped after that."""

from machine import WDT


class Watchdog:
    def __init__(self, timeout_ms=8000):
        self.timeout_ms = timeout_ms
        self._wdt = None
        self.feeds = 0

    def feed(self):
        if self._wdt is None:
            self._wdt = WDT(timeout=self.timeout_ms)
        self._wdt.feed()
        self.feeds += 1
