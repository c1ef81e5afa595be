"""The table layout is Go's text/tabwriter(minwidth 1, tabwidth 0, padding 3, ' ', 0)."""

from __future__ import annotations

from kuma.cli.tabwriter import TabWriter, format_table


def test_kumas_meshes_golden_table() -> None:
    # app/kumactl/cmd/get/testdata/get-meshes.golden.txt at Kuma 0.7.3
    out = format_table(
        ["NAME", "mTLS", "METRICS", "LOGGING", "TRACING", "AGE"],
        [
            [
                "mesh1",
                "builtin/builtin-1",
                "prometheus/prometheus-1",
                "logstash, file",
                "zipkin-us, zipkin-eu",
                "292y",
            ],
            ["mesh2", "off", "off", "off", "off", "292y"],
        ],
    )
    assert out == (
        "NAME    mTLS                METRICS                   LOGGING          TRACING                AGE\n"
        "mesh1   builtin/builtin-1   prometheus/prometheus-1   logstash, file   zipkin-us, zipkin-eu   292y\n"
        "mesh2   off                 off                       off              off                    292y\n"
    )


def test_footer_is_not_part_of_any_column() -> None:
    # get-meshes.pagination.golden.txt: the footer line is longer than the first column but
    # does not widen it.
    out = format_table(
        ["MESH", "NAME", "AGE"],
        [["default", "r1", "1d"]],
        "Rerun command with --offset=1 argument to retrieve more resources",
    )
    assert out == (
        "MESH      NAME   AGE\n"
        "default   r1     1d\n"
        "\n"
        "Rerun command with --offset=1 argument to retrieve more resources\n"
    )


def test_empty_cells_are_padded_and_the_last_column_never_is() -> None:
    # config-control-planes-list.golden.txt
    out = format_table(
        ["ACTIVE", "NAME", "ADDRESS"],
        [
            ["*", "test1", "https://test1.internal:5681"],
            ["", "test2", "https://test2.internal:5681"],
        ],
    )
    assert out == (
        "ACTIVE   NAME    ADDRESS\n"
        "*        test1   https://test1.internal:5681\n"
        "         test2   https://test2.internal:5681\n"
    )


def test_a_line_without_tabs_ends_every_column_block() -> None:
    w = TabWriter()
    w.write("a\tbbbb\tc\nx\nlong-cell\ty\tz\n")
    assert w.getvalue() == "a   bbbb   c\nx\nlong-cell   y   z\n"


def test_blocks_nest_per_column() -> None:
    # Column 0 spans all three lines; column 1 only the first line, then only the last, because
    # the middle line has no cell in column 1 (its last text is not a cell).
    w = TabWriter()
    w.write("aaa\tb\tc\na\tbbbbbb\naa\tbb\tc\n")
    assert w.getvalue() == "aaa   b   c\na     bbbbbb\naa    bb   c\n"


def test_widths_count_characters_not_bytes() -> None:
    out = format_table(["NAME", "X"], [["żółw", "1"], ["ab", "2"]])
    assert out == "NAME   X\nżółw   1\nab     2\n"


def test_text_without_final_newline_is_kept() -> None:
    w = TabWriter()
    w.write("a\tb\nccc\td")
    assert w.getvalue() == "a     b\nccc   d"
