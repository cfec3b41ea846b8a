//! Aligned text tables for people (`search`, `calls`): columns sized to their content, and when the
//! terminal is narrower, the widest shrinkable columns cut first, with `…` marking each cut.
//! Cells are plain text already sanitised by the caller; colour is applied after padding so that
//! escape sequences never count toward a width. Widths are display columns (`console`'s measure).

use std::io::{self, Write};

use console::{measure_text_width, truncate_str};

/// Horizontal alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column: its header, how narrow it may get when the table does not fit, and its alignment.
#[derive(Clone, Debug)]
pub struct Column {
    pub header: &'static str,
    /// Never cut below this many display columns (a column at `usize::MAX` is never cut).
    pub min: usize,
    /// Never wider than this, even when there is room (call-ids and user agents run long).
    pub max: usize,
    pub align: Align,
}

impl Column {
    /// A left-aligned column that may be cut down to `min` and is never wider than `max`.
    pub const fn left(header: &'static str, min: usize, max: usize) -> Self {
        Column {
            header,
            min,
            max,
            align: Align::Left,
        }
    }

    /// A right-aligned column kept whole (numbers, times).
    pub const fn fixed_right(header: &'static str) -> Self {
        Column {
            header,
            min: usize::MAX,
            max: usize::MAX,
            align: Align::Right,
        }
    }

    /// A left-aligned column kept whole.
    pub const fn fixed(header: &'static str) -> Self {
        Column {
            header,
            min: usize::MAX,
            max: usize::MAX,
            align: Align::Left,
        }
    }
}

/// A cell: its text and an ANSI style wrapped around it (empty for none).
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub text: String,
    pub style: &'static str,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, style: "" }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell {
            text: text.to_owned(),
            style: "",
        }
    }
}

/// Gap between columns.
const GAP: usize = 2;

/// Column widths for `natural` content widths within `limit` display columns (None: no limit).
/// Cuts the widest shrinkable column one step at a time, so long columns give way before short
/// ones and no column drops below its minimum; a table that cannot fit stays at the minimums.
pub fn fit_widths(columns: &[Column], natural: &[usize], limit: Option<usize>) -> Vec<usize> {
    let mut w: Vec<usize> = columns
        .iter()
        .zip(natural)
        .map(|(c, &n)| n.min(c.max))
        .collect();
    let Some(limit) = limit else { return w };
    let gaps = GAP * columns.len().saturating_sub(1);
    let mut total: usize = w.iter().sum::<usize>() + gaps;
    while total > limit {
        // The column with the most room above its minimum gives one column.
        let pick = w
            .iter()
            .zip(columns)
            .enumerate()
            .filter(|(_, (&wi, c))| c.min != usize::MAX && wi > c.min.max(c.header.len()))
            .max_by_key(|(i, (&wi, _))| (wi, usize::MAX - i))
            .map(|(i, _)| i);
        let Some(i) = pick else { break };
        w[i] -= 1;
        total -= 1;
    }
    w
}

/// Writes `rows` under a header line, aligned; `width` is the terminal width, if any.
pub fn write_table(
    out: &mut dyn Write,
    columns: &[Column],
    rows: &[Vec<Cell>],
    width: Option<usize>,
    header_style: &str,
    reset: &str,
) -> io::Result<()> {
    let mut natural: Vec<usize> = columns.iter().map(|c| c.header.len()).collect();
    for row in rows {
        for (n, cell) in natural.iter_mut().zip(row) {
            *n = (*n).max(measure_text_width(&cell.text));
        }
    }
    let widths = fit_widths(columns, &natural, width);
    let header: Vec<Cell> = columns
        .iter()
        .map(|c| Cell {
            text: c.header.to_owned(),
            style: "",
        })
        .collect();
    write_row(out, columns, &widths, &header, header_style, reset)?;
    for row in rows {
        write_row(out, columns, &widths, row, "", reset)?;
    }
    Ok(())
}

fn write_row(
    out: &mut dyn Write,
    columns: &[Column],
    widths: &[usize],
    row: &[Cell],
    row_style: &str,
    reset: &str,
) -> io::Result<()> {
    let mut line = String::new();
    let last = columns.len().saturating_sub(1);
    line.push_str(row_style);
    for (i, ((col, &w), cell)) in columns.iter().zip(widths).zip(row).enumerate() {
        let text = truncate_str(&cell.text, w, "…");
        let pad = w.saturating_sub(measure_text_width(&text));
        let styled = !cell.style.is_empty();
        if col.align == Align::Right {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        if styled {
            line.push_str(cell.style);
        }
        line.push_str(&text);
        if styled {
            line.push_str(reset);
            line.push_str(row_style);
        }
        // No trailing blanks after the last column.
        if col.align == Align::Left && i != last {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        if i != last {
            line.push_str("  ");
        }
    }
    if !row_style.is_empty() {
        line.push_str(reset);
    }
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// The width of the terminal on stdout, when stdout is one.
pub fn terminal_width() -> Option<usize> {
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| cols as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 3] = [
        Column::fixed_right("N"),
        Column::left("NAME", 4, 30),
        Column::left("UA", 2, 10),
    ];

    fn render(rows: &[[&str; 3]], width: Option<usize>) -> String {
        let rows: Vec<Vec<Cell>> = rows
            .iter()
            .map(|r| r.iter().map(|s| Cell::from(*s)).collect())
            .collect();
        let mut out = Vec::new();
        write_table(&mut out, &COLS, &rows, width, "", "").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_align_to_the_widest_cell_and_numbers_align_right() {
        let t = render(&[["7", "alice", "x"], ["123", "bo", "Zoiper"]], None);
        assert_eq!(t, "  N  NAME   UA\n  7  alice  x\n123  bo     Zoiper\n");
    }

    #[test]
    fn long_cells_stop_at_the_column_maximum() {
        let t = render(&[["1", "n", "a-very-long-user-agent"]], None);
        assert_eq!(t.lines().nth(1).unwrap(), "1  n     a-very-lo…");
    }

    #[test]
    fn a_narrow_terminal_cuts_the_widest_column_first_down_to_its_minimum() {
        let rows = [["1", "abcdefghijklmnop", "Zoiper"]];
        // natural: 1 + 2 + 16 + 2 + 6 = 27
        let t = render(&rows, Some(20));
        let line = t.lines().nth(1).unwrap();
        assert_eq!(measure_text_width(line), 20, "{line:?}");
        assert_eq!(line, "1  abcdefgh…  Zoiper");
        // Far too narrow: every shrinkable column at its minimum (never under its header).
        let t = render(&rows, Some(5));
        assert_eq!(t.lines().nth(1).unwrap(), "1  abc…  Z…");
    }

    #[test]
    fn colour_codes_do_not_count_toward_widths() {
        let rows = vec![
            vec![
                Cell {
                    text: "200".into(),
                    style: "\x1b[32m",
                },
                Cell::from("bob"),
                Cell::from("u"),
            ],
            vec![Cell::from("1"), Cell::from("alice"), Cell::from("u")],
        ];
        let mut out = Vec::new();
        write_table(&mut out, &COLS, &rows, None, "", "\x1b[0m").unwrap();
        let t = String::from_utf8(out).unwrap();
        assert_eq!(t.lines().nth(1).unwrap(), "\x1b[32m200\x1b[0m  bob    u");
        assert_eq!(t.lines().nth(2).unwrap(), "  1  alice  u");
    }
}
