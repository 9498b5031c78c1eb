"""The first draws of ``numpy.random.default_rng([seed, i])`` for many i at once: what a random search's configs
are drawn with (:class:`hpt.search.RandomSearch`), without building a generator per config.

A generator's set-up (numpy's ``SeedSequence`` hashing the seed words into a PCG64 state) costs
about 20 us, most of the time a run spends counting a plan of 100,000 trials. Here the hashing is
done for every i in one pass of array arithmetic, and the few draws a config takes step PCG64 in
Python integers: the same arithmetic as numpy's C code, so the same values, bit for bit (the tests
compare them with numpy's over many seeds, indices and ranges).

    SeedSequence([seed, i]).generate_state(4, uint64) -> PCG64 seeded (state, inc)
    -> uniform(low, high): low + (high - low) * (next64 >> 11) * 2**-53
    -> integers(n): Lemire's bounded draw on 32-bit halves of next64, the high half kept for the next one
"""

from __future__ import annotations

import numpy as np

__all__ = ["SPAN", "Pcg64", "seeded"]

SPAN = 1 << 32
"""The widest span of integers drawn here (numpy draws wider ones from 64 bits)."""

_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4
_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_MULT = (2549297995355413924 << 64) + 4865540595714422341  # PCG64's multiplier
_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53


def _hash_consts(start: int, mult: int, count: int) -> list[np.uint32]:
    """The hash constants SeedSequence multiplies in, one per call: they do not depend on the data."""
    out, h = [], start
    for _ in range(count):
        out.append(np.uint32(h))
        h = (h * mult) & _M32
    return out


def _hashmix(value: np.ndarray, const: np.uint32, next_const: np.uint32) -> np.ndarray:
    value = (value ^ const) * next_const
    return value ^ (value >> np.uint32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
    return result ^ (result >> np.uint32(16))


def _seed_words(seed: int, indices: np.ndarray) -> np.ndarray:
    """``SeedSequence(np.array([seed, i], uint32)).generate_state(4, np.uint64)`` for each i: (len(indices), 4)."""
    n = len(indices)
    entropy = [np.full(n, seed, dtype=np.uint32), indices.astype(np.uint32)]
    consts = iter(_hash_consts(_INIT_A, _MULT_A, 2 * (_POOL + _POOL * (_POOL - 1)) + 1))
    const = next(consts)

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal const
        following = next(consts)
        out = _hashmix(value, const, following)
        const = following
        return out

    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as in numpy's C
        pool = [hashmix(entropy[i] if i < len(entropy) else np.zeros(n, dtype=np.uint32)) for i in range(_POOL)]
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    pool[dst] = _mix(pool[dst], hashmix(pool[src]))
        consts_b = _hash_consts(_INIT_B, _MULT_B, 2 * _POOL + 1)
        words = [_hashmix(pool[k % _POOL], consts_b[k], consts_b[k + 1]) for k in range(2 * _POOL)]
    low = np.stack(words[0::2], axis=1).astype(np.uint64)
    high = np.stack(words[1::2], axis=1).astype(np.uint64)
    return low | (high << np.uint64(32))


class Pcg64:
    """numpy's PCG64 (XSL-RR 128/64) with the draws a random search takes, as numpy's ``Generator`` makes them."""

    __slots__ = ("half", "inc", "state")

    def __init__(self, words: list[int]) -> None:
        initstate, initseq = (words[0] << 64) | words[1], (words[2] << 64) | words[3]
        self.inc = ((initseq << 1) | 1) & _M128
        state = (self.inc + initstate) & _M128  # a step from 0, the seed added
        self.state = (state * _MULT + self.inc) & _M128
        self.half: int | None = None  # the high 32 bits of a 64-bit output, for the next 32-bit draw

    def next64(self) -> int:
        s = self.state = (self.state * _MULT + self.inc) & _M128
        rot = s >> 122
        x = ((s >> 64) ^ s) & _M64
        return ((x >> rot) | (x << (-rot & 63))) & _M64

    def next32(self) -> int:
        if self.half is not None:
            half, self.half = self.half, None
            return half
        n = self.next64()
        self.half = n >> 32
        return n & _M32

    def uniform(self, low: float, high: float) -> float:
        """``Generator.uniform(low, high)``."""
        low, high = float(low), float(high)
        return low + (high - low) * ((self.next64() >> 11) * _DOUBLE)

    def integers(self, low: int, high: int | None = None) -> int:
        """``Generator.integers(low, high)`` (``integers(n)``: 0 to n - 1) for spans up to 2**32 (:data:`SPAN`)."""
        low, high = (0, low) if high is None else (low, high)
        return low + self.below(high - low)

    def below(self, span: int) -> int:
        """``Generator.integers(span)`` for 1 <= span <= 2**32: Lemire's method on 32-bit draws."""
        if not 1 <= span <= SPAN:
            raise ValueError(f"a span of {span}: numpy draws it otherwise")
        if span == 1:
            return 0  # numpy draws nothing
        m = self.next32() * span
        leftover = m & _M32
        if leftover < span:
            threshold = (_M32 - (span - 1)) % span
            while leftover < threshold:
                m = self.next32() * span
                leftover = m & _M32
        return m >> 32


def seeded(seed: int, start: int, stop: int) -> list[Pcg64]:
    """The generators ``default_rng(np.array([seed, i], dtype=np.uint32))`` for i in range(start, stop)
    (``0 <= seed < 2**32``, ``stop <= 2**32``)."""
    return [Pcg64(w) for w in _seed_words(seed, np.arange(start, stop, dtype=np.uint64)).tolist()]
