"""recs.experiments.charts: well-formed, accessible SVG with every label escaped."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from recs.experiments import charts

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def hours(*values):
    return [(START + timedelta(hours=i), value) for i, value in enumerate(values)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def test_chart_draws_one_line_and_one_marker_per_point_for_each_variant():
    svg = charts.line_chart(
        {"control": hours(1, 2, 3), "ease": hours(2, 4)}, "Exposures", "shoppers"
    )
    root = parse(svg)

    lines = root.findall(f".//{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [3, 2]
    assert len(root.findall(f".//{SVG}circle")) == 5
    assert len({line.get("stroke") for line in lines}) == 2  # distinct colours


def test_chart_is_an_accessible_image_with_a_title_axes_ticks_and_a_legend():
    root = parse(charts.line_chart({"control": hours(0.1, 0.2)}, "Conversion", "conversion"))

    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Conversion"
    assert root.find(f"{SVG}desc").text.startswith("control: 2 points")
    assert len(root.findall(f".//{SVG}line[@class='axis']")) == 2
    assert len(root.findall(f".//{SVG}text[@class='tick']")) >= 4
    legend = root.findall(f".//{SVG}g[@class='legend-item']")
    assert [item.find(f"{SVG}text").text for item in legend] == ["control"]


def test_every_label_is_escaped():
    hostile = '<script>alert("x")</script>'
    svg = charts.line_chart({hostile: hours(1, 2)}, "Rock & <roll>", 'y "label"')

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "Rock &amp; &lt;roll&gt;" in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == "Rock & <roll>"
    assert root.find(f".//{SVG}g[@class='series']").get("data-variant") == hostile


def test_empty_chart_says_no_data_yet():
    for series in ({}, {"control": []}, {"control": hours(None, None)}):
        root = parse(charts.line_chart(series, "CTR", "CTR"))
        assert root.get("role") == "img"
        assert root.findall(f".//{SVG}polyline") == []
        assert "No data yet" in [text.text for text in root.iter(f"{SVG}text")]


def test_points_without_a_value_are_left_out():
    root = parse(charts.line_chart({"control": hours(None, 0.5, 0.7)}, "CTR", "CTR"))
    assert len(root.find(f".//{SVG}polyline").get("points").split()) == 2


def test_a_single_point_or_all_zero_values_still_draw():
    for series in ({"control": hours(5)}, {"control": hours(0, 0, 0)}):
        root = parse(charts.line_chart(series, "One", "y"))
        assert len(root.findall(f".//{SVG}circle")) == len(series["control"])


def test_many_variants_wrap_the_legend_and_grow_the_chart():
    many = {f"variant-with-a-long-name-{i}": hours(i, i + 1) for i in range(8)}
    root = parse(charts.line_chart(many, "Many", "y"))

    height = float(root.get("viewBox").split()[3])
    assert height > charts.HEIGHT
    rows = {item.find(f"{SVG}text").get("y") for item in root.iter(f"{SVG}g")
            if item.get("class") == "legend-item"}  # fmt: skip
    assert len(rows) > 1


def test_percent_ticks_are_labelled_as_percentages():
    svg = charts.line_chart(
        {"control": hours(0.02, 0.04)}, "CTR", "CTR", y_format=charts.percent_format
    )
    assert "4 %" in svg


def test_nice_steps_are_one_two_or_five_times_a_power_of_ten():
    assert charts.nice_step(10) == 2
    assert charts.nice_step(0.07) == 0.02
    assert charts.nice_step(900) == 200
    assert charts.nice_step(0) == 1
