"""Viper helpers of hal/esp32/pilot.py (MicroPython only; pilot.py falls back to Python).

Kept in their own module so that a port without the native emitter, and CPython, fail the
import cleanly instead of the whole pilot driver.
"""
# mypy: ignore-errors
# ruff: noqa: F821  (ptr16/ptr32/int casts are viper builtins)

import micropython


@micropython.viper
def burst(read, buf, n: int):
    """n ADC samples back to back into the array("H") `buf`: no allocation."""
    p = ptr16(buf)
    for i in range(n):
        p[i] = int(read())


@micropython.viper
def extreme_sum(buf, n: int, best, k: int) -> int:
    """Sum of the k largest samples (k > 0) or of the k smallest (k < 0), by insertion into
    the sorted array("i") scratch `best` of k entries; bottom-k is top-k of 65535 - v.
    Scratch entries hold v + 1 so that 0 means empty (viper pointer loads are unsigned)."""
    s = ptr16(buf)
    t = ptr32(best)
    inv = 0
    if k < 0:
        k = 0 - k
        inv = 65535
    for j in range(k):
        t[j] = 0
    for i in range(n):
        v = int(s[i])
        if inv:
            v = inv - v
        v += 1
        j = k - 1
        if v > int(t[j]):
            while j > 0 and int(t[j - 1]) < v:
                t[j] = t[j - 1]
                j -= 1
            t[j] = v
    total = 0
    for j in range(k):
        total += int(t[j]) - 1
    if inv:
        total = inv * k - total
    return total
