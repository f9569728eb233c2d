"""The desktop-session benchmark's pure parts: question times and report rows."""

from benchmarks.desktop import rows, schedule


def test_questions_come_after_the_first_minute_at_least_20_seconds_apart():
    times = schedule(4.0, 8, seed=1)
    assert len(times) == 8 and times[0] >= 60
    assert all(b - a >= 20 for a, b in zip(times, times[1:]))
    assert times == schedule(4.0, 8, seed=1)  # both arms get the same moments


def test_rows_give_median_and_p90_of_typed_and_spoken_questions():
    arms = {"reference": {"ttft": [4.0, 2.0, 3.0], "first_audio": [9.0, 7.0]},
            "labeeb": {"ttft": [1.0, 1.5, 0.5], "first_audio": [2.0, 3.0]}}
    assert rows(arms) == [("median ttft, typed (s)", 3.0, 1.0), ("p90 ttft, typed (s)", 4.0, 1.5),
                          ("median first audio, spoken (s)", 8.0, 2.5), ("p90 first audio, spoken (s)", 9.0, 3.0)]


def test_rows_leave_out_a_kind_nobody_was_asked():
    arms = {"reference": {"ttft": [2.0], "first_audio": []}, "labeeb": {"ttft": [1.0], "first_audio": []}}
    assert [name for name, _, _ in rows(arms)] == ["median ttft, typed (s)", "p90 ttft, typed (s)"]
