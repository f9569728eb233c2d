"""The benchmark's summary: medians, Labeeb/reference ratios, every run kept, same tokens."""

from benchmarks.__main__ import TARGETS, summarise
from benchmarks.report import markdown, table


def worker_output(ttfts, tokens, peak):
    return {"runs": [{"ttft": t, "total": t + 2.0, "tokens": ids, "decode_tps": 10.0 + t} for t, ids in zip(ttfts, tokens)],
            "peak_rss_mb": peak}


def test_summary_gives_median_ratios_and_keeps_every_run():
    reference = worker_output([14.0, 20.0, 15.0], [[1, 2], [3, 4], [5, 6]], 1400.0)
    labeeb = worker_output([3.0, 2.8, 9.0], [[1, 2], [3, 5], [5, 6]], 1050.0)
    summary = summarise(reference, labeeb)
    assert summary["ttft"]["reference"] == 15.0 and summary["ttft"]["labeeb"] == 3.0
    assert summary["ttft"]["ratio"] == 3.0 / 15.0
    assert summary["ttft"]["runs"] == {"reference": [14.0, 20.0, 15.0], "labeeb": [3.0, 2.8, 9.0]}
    assert summary["decode_tps"]["ratio"] == 13.0 / 25.0
    assert summary["peak_rss_mb"]["ratio"] == 0.75
    assert summary["same_tokens"] == "2/3"

    report = {"machine": {"cores": 2, "platform": "test", "python": "3.11", "cpu": "x86_64"}, "model": "m",
              "tokens": 32, "runs": 3, "interleaved": True, "results": {"changed_window": summary}}
    assert "0.20x" in table(report, TARGETS) and "**0.20x** (target 0.2x)" in markdown(report, TARGETS)
