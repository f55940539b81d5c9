import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from companion import plots  # noqa: E402


def test_confusion_writes_every_count_in_its_cell():
    ax = plots.confusion([[50, 3], [7, 1200]], ["negative", "positive"], title="test")
    assert [t.get_text() for t in ax.texts] == ["50", "3", "7", "1,200"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["negative", "positive"]
    plt.close("all")


def test_curves_draw_one_line_per_run_against_epochs():
    histories = {"a": [{"epoch": 0.5, "eval_accuracy": 0.6}, {"epoch": 1.0, "eval_accuracy": 0.7}],
                 "b": [{"epoch": 1.0, "eval_accuracy": 0.8}]}
    ax = plots.curves(histories, "eval_accuracy", "accuracy")
    assert [list(line.get_xdata()) for line in ax.lines] == [[0.5, 1.0], [1.0]]
    plt.close("all")


def test_scores_put_the_top_row_first_and_accept_a_row_without_interval():
    rows = pd.DataFrame({"score": [0.9, 0.7], "interval": [[0.85, 0.94], None]}, index=["best", "lexicon"])
    ax = plots.scores(rows, title="t")
    height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert height["best"] > height["lexicon"]
    assert sorted(t.get_text() for t in ax.texts) == ["0.700", "0.900"]
    plt.close("all")
