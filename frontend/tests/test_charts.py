"""The SVG chart geometry: scales, gaps, bands and the threshold line."""
from datetime import date, datetime

from frontend.charts import BAR_LABELS, BAR_VALUES, BAR_WIDTH, HEIGHT, LEFT, Bars, Series, bar_chart, line_chart


def at(hour):
    return datetime(2026, 11, 25, hour)


def test_values_map_onto_the_plot_area_and_a_missing_value_breaks_the_line():
    chart = line_chart([Series("v1", [(at(0), 0.0), (at(1), None), (at(2), 1.0), (at(3), 0.5)])], title="t", y_min=0, y_max=1)
    (series,) = chart["series"]
    assert len(series["segments"]) == 2  # the gap at 01:00 is not bridged
    first, *_ = series["segments"][0].split(" ")
    assert first == f"{LEFT}.0,{HEIGHT - 26}.0"  # 0 at the bottom left
    assert [d["y"] for d in series["dots"]] == [chart["bottom"], chart["top"], (chart["top"] + chart["bottom"]) / 2]
    assert [t["label"] for t in chart["y_ticks"]] == ["0", "0.25", "0.5", "0.75", "1"]


def test_the_axis_rounds_up_and_includes_the_threshold():
    chart = line_chart([Series("a", [(at(0), 0.02), (at(1), 0.03)])], title="t", threshold=0.1)
    assert chart["y_ticks"][-1]["label"] == "0.1" and chart["threshold"]["y"] == chart["top"]


def test_bands_days_and_empty_charts():
    chart = line_chart([Series("v1", [(date(2026, 11, 24), 0.6)], band=[(date(2026, 11, 24), 0.4, 0.8)])],
                       title="t", y_min=0, y_max=1)
    assert chart["series"][0]["band"].count(",") == 2 and len(chart["x_ticks"]) == 1
    assert line_chart([Series("v1", [(at(0), None)])], title="t")["empty"]


def test_a_numeric_x_axis_starts_at_zero_with_round_ticks():
    chart = line_chart([Series("head", [(40, 0.5), (120, 0.8)])], title="t", y_min=0, y_max=1, x_label="training labels")
    assert [t["label"] for t in chart["x_ticks"]] == ["0", "50", "100", "150", "200"]  # 120 rounds up to 200
    assert chart["series"][0]["dots"][0]["title"] == "head · 40 · 0.500" and chart["x_label"] == "training labels"
def test_bars_are_as_long_as_their_share_of_the_axis_and_a_missing_value_says_so():
    chart = bar_chart(["ann", "bo"], [Bars("agree", [1.0, 0.5]), Bars("accept", [None, 0.25])], title="t", x_max=1)
    plot = BAR_WIDTH - BAR_VALUES - BAR_LABELS
    (ann_agree, ann_accept), (bo_agree, bo_accept) = [r["bars"] for r in chart["rows"]]
    assert [ann_agree["width"], bo_agree["width"], bo_accept["width"]] == [plot, plot / 2, plot / 4]
    assert ann_accept["missing"] and ann_accept["width"] == 0 and ann_accept["text"] == "no data"
    assert [b["text"] for b in (ann_agree, bo_agree, bo_accept)] == ["100%", "50%", "25%"]
    assert [t["label"] for t in chart["x_ticks"]] == ["0%", "25%", "50%", "75%", "100%"]
    assert bo_agree["y"] > ann_accept["y"] > ann_agree["y"]  # rows top to bottom, series within a row


def test_a_bar_chart_without_an_upper_bound_rounds_up_and_one_without_values_is_empty():
    chart = bar_chart(["a"], [Bars("seconds", [7.3])], title="t", value_format="{:.1f}")
    assert chart["x_ticks"][-1]["label"] == "10.0"
    assert bar_chart(["a"], [Bars("seconds", [None])], title="t")["empty"]
