//! Tables as text, alike for every format that has them (HTML, Word,
//! Writer, slides, sheets): one line per row that names each value's column
//! (`Vendor: Elbe Reifen KG; Service: Truck tyres`), so that a chunk cut
//! from the middle of a table, and a sentence the answerer quotes from it,
//! still says which column is which and keeps a row's values together.

/// Tables nested deeper than this are read as the text of the cell that
/// holds them: each level re-renders what it holds, and hostile markup can
/// nest thousands (every reader with tables keeps to it).
pub(crate) const MAX_TABLE_DEPTH: usize = 8;

/// A table being read: the rows so far, the open row and the open cell.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: String,
}

impl Table {
    /// Adds text to the open cell (whitespace is collapsed when it ends).
    pub fn push(&mut self, s: &str) {
        self.cell.push_str(s);
    }

    /// Separates what follows in the cell from what came before (a
    /// paragraph or line ends inside it).
    pub fn space(&mut self) {
        if !self.cell.is_empty() && !self.cell.ends_with(' ') {
            self.cell.push(' ');
        }
    }

    /// Ends the open cell (an empty one too: later cells stay under their
    /// headers).
    pub fn end_cell(&mut self) {
        let c = std::mem::take(&mut self.cell);
        self.row.push(collapse(&c));
    }

    /// Adds `n` empty cells (the grid columns a merged cell spans past its
    /// first).
    pub fn empty_cells(&mut self, n: usize) {
        for _ in 0..n.min(1024) {
            self.row.push(String::new());
        }
    }

    /// Ends the open row (text after its last cell ends that cell first).
    pub fn close_row(&mut self) {
        if !self.cell.trim().is_empty() {
            let c = std::mem::take(&mut self.cell);
            self.row.push(collapse(&c));
        }
        self.cell.clear();
        self.rows.push(std::mem::take(&mut self.row));
    }

    /// Takes the open cell's text, whitespace collapsed (an HTML table's
    /// `<caption>`, read before its first row).
    pub fn take_cell(&mut self) -> String {
        collapse(&std::mem::take(&mut self.cell))
    }

    /// A table closed inside this one's open cell: its rows joined by `; `.
    pub fn nested(&mut self, text: &str) {
        self.cell.push(' ');
        self.cell.push_str(&text.replace('\n', "; "));
    }

    /// The table as text, closing whatever is open.
    pub fn finish(mut self) -> String {
        if !self.row.is_empty() || !self.cell.trim().is_empty() {
            self.close_row();
        }
        render_table(&self.rows)
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table as text: with a header row, one line per row naming each value's
/// column (`Name: Anna; Room: 4.12`); without one, values joined by ` | `.
/// (Callers put each line in a paragraph of its own.)
pub(crate) fn render_table(rows: &[Vec<String>]) -> String {
    let rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r.iter().any(|c| !c.is_empty()))
        .collect();
    let Some(first) = rows.first() else {
        return String::new();
    };
    let filled = first.iter().filter(|c| !c.is_empty()).count();
    let header = rows.len() >= 2 && filled >= 2 && first.iter().all(|c| !is_number(c));
    let mut out = String::new();
    let line = |r: &Vec<String>| {
        let mut l = String::new();
        for c in r.iter().filter(|c| !c.is_empty()) {
            if !l.is_empty() {
                l.push_str(" | ");
            }
            l.push_str(c);
        }
        l
    };
    if !header {
        for r in &rows {
            push_line(&mut out, &line(r));
        }
        return out;
    }
    push_line(&mut out, &line(first));
    for r in &rows[1..] {
        let mut l = String::new();
        for (i, c) in r.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
            if !l.is_empty() {
                l.push_str("; ");
            }
            match first.get(i).filter(|h| !h.is_empty()) {
                Some(h) => {
                    l.push_str(h);
                    l.push_str(": ");
                    l.push_str(c);
                }
                None => l.push_str(c),
            }
        }
        push_line(&mut out, &l);
    }
    out
}

fn push_line(out: &mut String, l: &str) {
    if l.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(l);
}

fn is_number(s: &str) -> bool {
    let t: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | ',' | '%' | '€' | '$'))
        .collect();
    !t.is_empty() && t.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_name_their_columns() {
        let rows = vec![
            vec!["Name".to_string(), "Room".into(), "Phone".into()],
            vec!["Anna Berg".into(), "4.12".into(), "".into()],
            vec!["".into(), "".into(), "".into()],
            vec!["Jonas".into(), "2.01".into(), "-231".into()],
        ];
        assert_eq!(
            render_table(&rows),
            "Name | Room | Phone\nName: Anna Berg; Room: 4.12\nName: Jonas; Room: 2.01; Phone: -231"
        );
        // A first row of numbers is data, not a header.
        let rows = vec![
            vec!["1".to_string(), "2".into()],
            vec!["3".into(), "4".into()],
        ];
        assert_eq!(render_table(&rows), "1 | 2\n3 | 4");
    }
}
