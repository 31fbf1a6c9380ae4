"""What the watermark carries: a 24-bit model-hash prefix, a 16-bit checksum, and the error-correcting code.

The payload is 40 bits: the first 24 bits (6 hex digits) of the model hash and a CRC-16 over them that is
salted with ``pixforge`` (so the checksum doubles as the tag that says the mark is pixforge's: a random
40-bit pattern passes it with probability 2**-16). The 40 bits are protected by the standard rate-1/2,
constraint-length-7 convolutional code (generators 171 and 133 octal, as in 802.11 and CCSDS) and decoded
with a soft-decision Viterbi decoder, which corrects the scattered bit errors that JPEG and resampling leave.
"""

from __future__ import annotations

import binascii
import re
from functools import cache

import numpy as np

HASH_BITS = 24
CRC_BITS = 16
INFO_BITS = HASH_BITS + CRC_BITS
CONSTRAINT = 7
GENERATORS = (0o171, 0o133)
CODED_BITS = len(GENERATORS) * (INFO_BITS + CONSTRAINT - 1)  # the encoder is flushed with K-1 zeros
_SALT = b"pixforge"
_HEX = re.compile(r"[0-9a-fA-F]+")


def hash_prefix(model_hash: str) -> int:
    """The first 24 bits of a hex model hash, as an int; the field is named in the error."""
    if not isinstance(model_hash, str) or len(model_hash) < HASH_BITS // 4 or not _HEX.fullmatch(model_hash):
        raise ValueError(f"model_hash: expected a hex string of at least {HASH_BITS // 4} digits "
                         f"(e.g. a sha256 of the generator's weights), got {model_hash!r}")
    return int(model_hash[: HASH_BITS // 4], 16)


def prefix_hex(prefix: int) -> str:
    return f"{prefix:0{HASH_BITS // 4}x}"


def checksum(prefix: int) -> int:
    return binascii.crc_hqx(_SALT + prefix.to_bytes(HASH_BITS // 8, "big"), 0xFFFF)


def info_bits(prefix: int) -> np.ndarray:
    """The 40 payload bits, most significant first: hash prefix then checksum."""
    word = (prefix << CRC_BITS) | checksum(prefix)
    return np.array([(word >> (INFO_BITS - 1 - i)) & 1 for i in range(INFO_BITS)], np.uint8)


def parse_info(bits: np.ndarray) -> tuple[int, bool]:
    """(hash prefix, checksum ok) from 40 decoded bits."""
    word = int("".join(str(int(b)) for b in bits), 2)
    prefix, crc = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    return prefix, checksum(prefix) == crc


def encode(bits: np.ndarray) -> np.ndarray:
    """Convolutional encoding of ``bits`` (flushed): ``CODED_BITS`` bits for ``INFO_BITS`` in."""
    next_state, output, _ = _trellis()
    state, out = 0, []
    for b in [*bits.tolist(), *[0] * (CONSTRAINT - 1)]:
        out.extend(output[state, b])
        state = next_state[state, b]
    return np.array(out, np.uint8)


def viterbi(soft: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum-likelihood info bits for soft coded values (positive means 1), trellis started and ended in 0,
    and the path metric: the correlation of ``soft`` with the chosen codeword."""
    _, _, (prev_state, prev_bit, prev_sign) = _trellis()
    states = prev_state.shape[0]
    steps = len(soft) // len(GENERATORS)
    metric = np.full(states, -np.inf)
    metric[0] = 0.0
    choice = np.zeros((steps, states), np.intp)
    pairs = np.asarray(soft, np.float64).reshape(steps, len(GENERATORS))
    rows = np.arange(states)
    for t in range(steps):
        candidates = metric[prev_state] + prev_sign @ pairs[t]  # (states, 2 predecessors)
        choice[t] = np.argmax(candidates, axis=1)
        metric = candidates[rows, choice[t]]
    best = float(metric[0])  # the flushed encoder ends in state 0
    state, bits = 0, []
    for t in range(steps - 1, -1, -1):
        c = choice[t, state]
        bits.append(prev_bit[state, c])
        state = prev_state[state, c]
    return np.array(bits[::-1][: steps - (CONSTRAINT - 1)], np.uint8), best


@cache
def _trellis() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Next state and output per (state, bit), and for each state its two predecessors."""
    states = 1 << (CONSTRAINT - 1)
    next_state = np.zeros((states, 2), np.intp)
    output = np.zeros((states, 2, len(GENERATORS)), np.uint8)
    for s in range(states):
        for b in (0, 1):
            register = (s << 1) | b
            next_state[s, b] = register & (states - 1)
            output[s, b] = [bin(register & g).count("1") & 1 for g in GENERATORS]
    prev_state = np.zeros((states, 2), np.intp)
    prev_bit = np.zeros((states, 2), np.intp)
    filled = np.zeros(states, np.intp)
    for s in range(states):
        for b in (0, 1):
            n = next_state[s, b]
            prev_state[n, filled[n]], prev_bit[n, filled[n]] = s, b
            filled[n] += 1
    prev_sign = output[prev_state, prev_bit].astype(np.float64) * 2 - 1  # (states, 2, outputs): +-1
    return next_state, output, (prev_state, prev_bit, prev_sign)
