import math

import pytest

from companion import results, settings


def test_results_round_trip():
    path = results.write("demo", {"accuracy": 0.9})
    assert path.name == "demo.smoke.json"
    record = results.read("demo")
    assert record["accuracy"] == 0.9 and record["source"] == settings.source() and record["profile"] == "smoke"
    with pytest.raises(FileNotFoundError, match="run the chapter"):
        results.read("missing")


def test_wilson_interval_matches_the_formula_and_stays_inside_zero_one():
    low, high = results.wilson_interval(85, 100)
    # Wilson (1927): (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), p = 0.85, n = 100, z = 1.96
    assert low == pytest.approx(0.7672, abs=1e-4) and high == pytest.approx(0.9069, abs=1e-4)
    assert results.wilson_interval(0, 10)[0] == 0.0 and results.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    wide, narrow = results.wilson_interval(50, 100), results.wilson_interval(200, 400)
    assert math.isclose(narrow[1] - narrow[0], (wide[1] - wide[0]) / 2, rel_tol=0.02)
    with pytest.raises(ValueError, match="at least one trial"):
        results.wilson_interval(0, 0)


def test_score_rows_carry_an_interval_for_accuracy_only_and_refuse_impossible_values():
    row = results.score("movie sentiment", "m", "fine-tuned", 0.85, 100, train_seconds=3.5, train_rows=10)
    assert row["interval"] == pytest.approx(list(results.wilson_interval(85, 100)))
    assert row["train_rows"] == 10 and row["metric"] == "accuracy"
    assert results.score("qa", "m", "span head", 0.4, 50, metric="exact match")["interval"] is None
    with pytest.raises(ValueError, match="share in"):
        results.score("t", "m", "x", 42.0, 100)
    with pytest.raises(ValueError, match="at least one test row"):
        results.score("t", "m", "x", 0.5, 0)


def test_entry_reads_a_named_row_and_says_which_is_missing(capsys):
    key = results.Key("demo_chapter", "the row")
    assert results.entry(key) is None
    assert "'demo_chapter' has not been run in the 'smoke' profile" in capsys.readouterr().out
    results.write("demo_chapter", {results.SCORES: {"the row": results.score("t", "m", "x", 0.5, 10)}})
    row = results.entry(key)
    assert row["score"] == 0.5 and row["source"] == settings.source() and row["profile"] == "smoke"
    assert results.entry(results.Key("demo_chapter", "another row")) is None
    assert "wrote none" in capsys.readouterr().out
    table = results.table()
    assert ("demo_chapter", "the row") in table.index and table.loc[("demo_chapter", "the row"), "score"] == 0.5
