//! Plain-text tables whose columns are as wide as their widest cell, so a
//! long node id or shop name never pushes the columns after it out of line.
//! Widths are display widths: a Chinese character takes two columns.

use unicode_width::UnicodeWidthStr;

/// Which side of its column a cell keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// The space between two columns.
const GAP: &str = "  ";

/// Rows of cells under a header, each row optionally followed by note lines
/// (an error, a hint) that sit under it and take no part in the widths.
#[derive(Debug, Clone)]
pub struct Table {
    header: Option<Vec<String>>,
    aligns: Vec<Align>,
    rows: Vec<(Vec<String>, Vec<String>)>,
}

impl Table {
    /// A table with a header line naming its `columns`.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Self {
            header: Some(columns.iter().map(|(name, _)| (*name).to_owned()).collect()),
            aligns: columns.iter().map(|(_, align)| *align).collect(),
            rows: Vec::new(),
        }
    }

    /// A table with no header line, its columns aligned as `aligns`.
    pub fn headless(aligns: &[Align]) -> Self {
        Self { header: None, aligns: aligns.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are empty, extra cells are kept as left-aligned columns.
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push((cells.into_iter().map(|cell| cell.to_string()).collect(), Vec::new()));
    }

    /// Adds a line under the last row, indented, outside the columns.
    pub fn note(&mut self, line: impl Into<String>) {
        if let Some((_, notes)) = self.rows.last_mut() {
            notes.push(line.into());
        }
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each starting with `indent` and without trailing
    /// spaces; notes start two spaces further in.
    pub fn render(&self, indent: &str) -> String {
        let columns = self.rows.iter().map(|(cells, _)| cells.len()).chain(self.header.iter().map(Vec::len)).max();
        let mut widths = vec![0; columns.unwrap_or(0)];
        for cells in self.header.iter().chain(self.rows.iter().map(|(cells, _)| cells)) {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.width());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::from(indent);
            for (index, width) in widths.iter().enumerate() {
                let cell = cells.get(index).map_or("", String::as_str);
                let pad = " ".repeat(width - cell.width());
                if index > 0 {
                    text.push_str(GAP);
                }
                match self.aligns.get(index).copied().unwrap_or(Align::Left) {
                    Align::Left => text.extend([cell, pad.as_str()]),
                    Align::Right => text.extend([pad.as_str(), cell]),
                }
            }
            text.truncate(text.trim_end().len());
            text.push('\n');
            text
        };
        let mut out = self.header.as_deref().map(line).unwrap_or_default();
        for (cells, notes) in &self.rows {
            out.push_str(&line(cells));
            for note in notes {
                out.extend([indent, GAP, note.as_str(), "\n"]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The display columns at which each cell of `line` starts.
    fn starts(line: &str) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut previous = ' ';
        let mut column = 0;
        for c in line.chars() {
            if c != ' ' && previous == ' ' {
                starts.push(column);
            }
            column += c.to_string().width();
            previous = c;
        }
        starts
    }

    #[test]
    fn a_long_id_widens_its_column_and_every_other_column_stays_in_line() {
        let mut table = Table::new(&[("node", Align::Left), ("type", Align::Left), ("in", Align::Right)]);
        table.row(["changed", "fetch_increment", "1200"]);
        table.row(["a_node_id_longer_than_twenty_characters", "store_orders", "7"]);
        table.note("error: the database refused a row");
        table.row(["天猫店", "log", "35"]);
        let text = table.render("  ");
        let lines: Vec<&str> = text.lines().filter(|line| !line.contains("error:")).collect();
        assert_eq!(lines.len(), 4, "{text}");
        // Left-aligned columns start together; right-aligned ones end together.
        let type_column = starts(lines[0])[1];
        assert!(type_column > "  a_node_id_longer_than_twenty_characters".len(), "{text}");
        for line in &lines {
            assert_eq!(starts(line)[1], type_column, "{text}");
            assert_eq!(line.width(), lines[0].width(), "numbers end in one column:\n{text}");
        }
        assert!(text.contains("\n    error: the database refused a row\n"), "a note sits under its row:\n{text}");
    }

    #[test]
    fn a_headless_table_aligns_its_rows_without_trailing_spaces() {
        let mut table = Table::headless(&[Align::Left, Align::Right, Align::Left]);
        table.row(["taobao", "3", ""]);
        table.row(["douyin-main-shop", "12", "x"]);
        assert_eq!(table.render(""), "taobao             3\ndouyin-main-shop  12  x\n");
        assert!(Table::headless(&[Align::Left]).is_empty());
    }
}
