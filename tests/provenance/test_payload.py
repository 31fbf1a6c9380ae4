"""The payload: 24-bit model-hash prefix + salted CRC-16, convolutionally coded, Viterbi-decoded."""

from __future__ import annotations

import numpy as np
import pytest

from pixforge.provenance import payload


def test_hash_prefix_is_the_first_six_hex_digits():
    assert payload.hash_prefix("a1b2c3d4e5") == 0xA1B2C3
    assert payload.prefix_hex(0x00ABCD) == "00abcd"


@pytest.mark.parametrize("bad", ["", "a1b2c", "a1b2cz", "sha256:ab", None])
def test_a_model_hash_that_is_not_hex_is_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match="model_hash: expected a hex string"):
        payload.hash_prefix(bad)


def test_clean_soft_values_decode_to_the_payload_and_pass_the_checksum():
    bits = payload.info_bits(0x9F2C01)
    coded = payload.encode(bits)
    assert len(bits) == payload.INFO_BITS == 40 and len(coded) == payload.CODED_BITS == 92
    decoded, metric = payload.viterbi(coded * 2.0 - 1.0)
    assert decoded.tolist() == bits.tolist() and metric == pytest.approx(92.0)
    assert payload.parse_info(decoded) == (0x9F2C01, True)


def test_scattered_bit_errors_and_noise_are_corrected():
    rng = np.random.default_rng(0)
    bits = payload.info_bits(0x123456)
    soft = payload.encode(bits) * 2.0 - 1.0 + rng.normal(0, 0.6, payload.CODED_BITS)
    soft[[3, 20, 41, 63, 80]] *= -1  # hard errors on top of the noise
    decoded, _ = payload.viterbi(soft)
    assert payload.parse_info(decoded) == (0x123456, True)


def test_checksum_rejects_a_changed_prefix():
    bits = payload.info_bits(0x123456)
    bits[5] ^= 1
    assert payload.parse_info(bits)[1] is False
