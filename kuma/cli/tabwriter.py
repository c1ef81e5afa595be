"""Elastic tabstops, the way Go's `text/tabwriter` lays out kumactl's tables.

kumactl writes every table through `tabwriter.NewWriter(out, 1, 0, 3, ' ', 0)`: minimum cell
width 1, padding 3, padded with spaces, no flags. The rules this module reproduces:

* a cell is text terminated by a tab; the text after a line's last tab is *not* a cell of any
  column, so it is written as it is and never widens a column (the last column of a table is
  never padded, and lines without tabs, such as the pagination footer, are left alone);
* a column block is a run of consecutive lines that all have a cell in that column; each
  block gets its own width: `max(minwidth, widest cell + padding)`;
* blocks nest: a column's block is laid out, then the next column inside each block;
* widths count characters (Go counts UTF-8 runes), not display cells;
* empty cells are padded like any other.

`format_table` is what kumactl's table printer needs; `TabWriter` takes arbitrary text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["TabWriter", "format_table"]


class TabWriter:
    """Collects text, lays it out on `getvalue()` (Go's Writer + Flush)."""

    def __init__(self, *, minwidth: int = 1, padding: int = 3, padchar: str = " ") -> None:
        if len(padchar) != 1:
            raise ValueError("padchar must be one character")
        self.minwidth = minwidth
        self.padding = padding
        self.padchar = padchar
        self._parts: list[str] = []

    def write(self, text: str) -> None:
        self._parts.append(text)

    def getvalue(self) -> str:
        text = "".join(self._parts)
        # Every line is a list of cells; the last element is the trailing text after the last
        # tab (possibly empty). A final line without a newline is kept as it is.
        raw_lines = text.split("\n")
        lines = [line.split("\t") for line in raw_lines]
        out: list[str] = []
        self._format(out, lines, [], 0, len(lines))
        return "".join(out)

    def _format(
        self, out: list[str], lines: list[list[str]], widths: list[int], line0: int, line1: int
    ) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # lines[this] has a cell in `column`: a block starts here.
            self._write_lines(out, lines, widths, line0, this)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            self._format(out, lines, [*widths, width], line0, this)
            line0 = this
        self._write_lines(out, lines, widths, line0, line1)

    def _write_lines(
        self, out: list[str], lines: list[list[str]], widths: list[int], line0: int, line1: int
    ) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            for j, cell in enumerate(cells):
                out.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    out.append(self.padchar * (widths[j] - len(cell)))
            if i + 1 < len(lines):
                out.append("\n")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], footer: str = "") -> str:
    """kumactl's table: header, rows, then a blank line and the footer when there is one."""
    writer = TabWriter()
    if headers:
        writer.write("\t".join(headers) + "\n")
    for row in rows:
        writer.write("\t".join(row) + "\n")
    if footer:
        writer.write(f"\n{footer}\n")
    return writer.getvalue()
