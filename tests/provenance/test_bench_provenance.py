"""pixforge bench provenance runs and reports honestly (tiny sizes; the real table is in BENCHMARKS.md)."""

from __future__ import annotations

import pytest

from pixforge.bench.provenance import ATTACKS, bench_provenance


@pytest.mark.slow
def test_bench_reports_robustness_false_positives_psnr_and_overhead(facades, shared):
    rows = bench_provenance(facades, shared, count=2, photos=1, false_positive_photos=3)
    modes = [r.mode for r in rows]
    assert modes[:len(ATTACKS)] == [f"generated: {name}" for name in ATTACKS]
    assert modes[len(ATTACKS):2 * len(ATTACKS)] == [f"photos: {name}" for name in ATTACKS]
    by_mode = {r.mode: r for r in rows}
    assert by_mode["generated: resize 0.5× + JPEG 75"].value == 100.0  # 2 of 2 fixture outputs
    assert by_mode["generated: crop 10% + JPEG 75"].extra["bit accuracy"] == "100.0%"
    fp = by_mode["false positives: real photos"]
    assert (fp.value, fp.unit) == (0.0, "of 3")
    assert by_mode["generated: PSNR marked vs unmarked"].value >= 38.0
    overhead = by_mode["mark + filter"]
    assert overhead.unit == "ms/image" and overhead.value > 0 and set(overhead.extra) == {"filter ms", "mark ms"}
