"""NTC thermistors on ADC1 inputs (NTC to GND, series resistor to the 3.3 V reference).

The charger reads them once a second (the float math of the beta formula allocates); the
answer is one list, updated in place."""

import math

from machine import ADC, Pin


class Temp:
    def __init__(self, adc_pins, r_series=10000, r0=10000, t0_c=25, beta=3950):
        self._adcs = [ADC(Pin(p), atten=ADC.ATTN_11DB) for p in adc_pins]
        self._rs = r_series
        self._r0 = r0
        self._inv_t0 = 1.0 / (t0_c + 273.15)
        self._beta = beta
        self._out = [0.0] * len(self._adcs)

    def celsius(self, ratio):
        """Temperature from the divider ratio v/vref (0..1); None when open or shorted."""
        if not 0.01 < ratio < 0.99:
            return None
        r = self._rs * ratio / (1 - ratio)
        return 1.0 / (self._inv_t0 + math.log(r / self._r0) / self._beta) - 273.15

    def read_c(self):
        out = self._out
        k = 0
        for adc in self._adcs:
            c = self.celsius(adc.read_u16() / 65535)
            if c is None:
                return None  # a failed sensor is a fault, not a reading
            out[k] = round(c, 1)
            k += 1
        return out
