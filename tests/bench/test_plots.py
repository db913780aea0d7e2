"""bench.plots: the report's PNGs are written where asked, at 900 x 500 pixels."""

import struct

from bench.plots import bar_plot, line_plot


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_line_plot_writes_a_png_with_spans_and_log_axes(tmp_path):
    path = line_plot(
        tmp_path / "img" / "lines.png",
        {"API": [(1, 3.0), (8, 4.0), (32, 9.0)], "bare view": [(1, 0.5), (32, 2.0)]},
        "p99 by clients", "clients", "ms", log_x=True, log_y=True, spans=[(2, 8, "fault")],
    )  # fmt: skip

    assert path == tmp_path / "img" / "lines.png"
    assert png_size(path) == (900, 500)


def test_bar_plot_writes_a_png(tmp_path):
    path = bar_plot(tmp_path / "bars.png", {"1": 450.0, "10": 3900.0, "100": 14000.0},
                    "events/s by batch size", "events/s")  # fmt: skip

    assert png_size(path) == (900, 500)


def test_an_empty_series_still_writes_a_plot(tmp_path):
    assert png_size(line_plot(tmp_path / "empty.png", {}, "nothing", "x", "y")) == (900, 500)
