"""Control pilot: 1 kHz PWM out (+12/-12 V through the op-amp stage) and burst sampling in.

`read()` samples ADC1 `samples` times back to back (a few PWM periods), then averages the
`top_n` highest and the `top_n` lowest samples: the plateaus of the high and the low half,
whatever the duty, with the edges and spikes left out. The loop runs as viper code on
MicroPython (no allocation, a few us a sample on top of the ADC read), as plain Python
elsewhere. Counts become volts by the two-point calibration in the board description.
"""

from array import array

from machine import ADC, PWM, Pin

try:  # viper helpers where the port has the native emitter (ESP32, unix)
    from hal.esp32.pilot_viper import burst as _burst
    from hal.esp32.pilot_viper import extreme_sum as _extreme_sum

    FAST = True
except (ImportError, SyntaxError):  # CPython host tests, ports without native code
    FAST = False

    def _burst(read, buf, n):
        for i in range(n):
            buf[i] = read()

    def _extreme_sum(buf, n, best, k):
        # Sum of the k largest samples (k > 0) or of the k smallest (k < 0).
        vals = sorted(buf[:n])
        return sum(vals[-k:]) if k > 0 else sum(vals[:-k])


_FREQ = 1000


class Pilot:
    def __init__(self, pwm_pin, adc_pin, adc_p12, adc_m12, invert=False, samples=240, top_n=8):
        self._invert = invert
        self._pwm = PWM(Pin(pwm_pin), freq=_FREQ, duty_u16=0 if invert else 65535)
        self._adc = ADC(Pin(adc_pin), atten=ADC.ATTN_11DB)
        self._buf = array("H", bytes(2 * samples))
        self._best = array("i", bytes(4 * top_n))
        self._n = samples
        self._k = top_n
        self._m12 = adc_m12
        self._span = adc_p12 - adc_m12
        self.permille = 1000  # steady +12 V from the start: state A, no charging offered

    @staticmethod
    def duty_u16(permille):
        """PWM compare value for `permille` of the period high (+12 V)."""
        if permille <= 0:
            return 0
        if permille >= 1000:
            return 65535
        return (permille * 65535 + 500) // 1000

    def set_duty(self, permille):
        if not 0 <= permille <= 1000:
            raise ValueError("duty out of range")
        d = self.duty_u16(permille)
        self._pwm.duty_u16(65535 - d if self._invert else d)
        self.permille = permille

    def set_f(self):
        # Duty 0: the op-amp stage holds the pilot at -12 V (state F).
        self._pwm.duty_u16(65535 if self._invert else 0)
        self.permille = 0

    def volts(self, counts):
        return (counts - self._m12) * 24.0 / self._span - 12.0

    def read(self):
        buf = self._buf
        _burst(self._adc.read_u16, buf, self._n)
        k = self._k
        hi = _extreme_sum(buf, self._n, self._best, k) / k
        lo = _extreme_sum(buf, self._n, self._best, -k) / k
        return self.volts(hi), self.volts(lo)


class Proximity:
    """PP-PE resistance from an ADC1 input with a pull-up `pullup_ohms` to `vref`."""

    def __init__(self, adc_pin, pullup_ohms=1000, vref=3.3):
        self._adc = ADC(Pin(adc_pin), atten=ADC.ATTN_11DB)
        self._r = pullup_ohms
        self._vref_uv = int(vref * 1000000)

    def read_ohms(self):
        uv = self._adc.read_uv()
        if uv >= self._vref_uv * 98 // 100:
            return 100000  # open: no cable in the socket
        return self._r * uv / (self._vref_uv - uv)
