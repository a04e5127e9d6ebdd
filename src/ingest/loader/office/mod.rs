//! Office files: Word, PowerPoint and Excel (OOXML) and their OpenDocument
//! counterparts, read from their zip containers with a streaming XML reader.
//!
//! What a reader of the document sees is what is indexed: hidden text
//! (`w:vanish`, `text:hidden-text`), tracked deletions, comments and field
//! codes are dropped (models read hidden text, people do not, which makes it
//! an injection channel). Tables become one line per row that names its
//! columns (`Header: value; …`), so a chunk cut from the middle of a table
//! still says which column is which. Positions: slides and sheets are the
//! pages of their files; Word and Writer documents are one flow of text
//! (they have no pages until a word processor lays them out).
//!
//! Everything here is linear in the input and bounded (the container caps
//! what parts may inflate to; sheets cap their cells), and it runs under
//! `catch_unwind` in the ingest process.

mod archive;
mod odf;
mod pml;
mod sml;
mod wml;
mod xml;

pub use odf::{load_odp, load_ods, load_odt};
pub use pml::load_pptx;
pub use sml::load_xlsx;
pub use wml::load_docx;

/// Text being assembled: paragraphs, and tables (possibly nested) whose
/// rows are rendered when they close.
#[derive(Default)]
pub(crate) struct Flow {
    out: String,
    para: String,
    tables: Vec<Table>,
    /// The open paragraph is a heading of this level.
    level: Option<u8>,
    headings: Vec<super::Heading>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    cell: String,
}

impl Table {
    fn close_row(&mut self) {
        if !self.cell.trim().is_empty() {
            let c = std::mem::take(&mut self.cell);
            self.row
                .push(c.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        self.cell.clear();
        self.rows.push(std::mem::take(&mut self.row));
    }
}

impl Flow {
    /// Adds text to the open paragraph or table cell.
    pub fn push(&mut self, s: &str) {
        match self.tables.last_mut() {
            Some(t) => t.cell.push_str(s),
            None => self.para.push_str(s),
        }
    }

    /// A line break inside a paragraph (a space inside a table cell).
    pub fn line_break(&mut self) {
        match self.tables.last_mut() {
            Some(t) => t.cell.push(' '),
            None => self.para.push('\n'),
        }
    }

    /// Marks the open paragraph as a heading of `level` (ignored inside
    /// tables: a bold cell is not a section).
    pub fn heading(&mut self, level: u8) {
        if self.tables.is_empty() {
            self.level = Some(level);
        }
    }

    /// Ends a paragraph (inside a cell, paragraphs are joined by a space).
    pub fn end_para(&mut self) {
        let level = self.level.take();
        match self.tables.last_mut() {
            Some(t) => {
                if !t.cell.ends_with(' ') && !t.cell.is_empty() {
                    t.cell.push(' ');
                }
            }
            None => {
                let p = std::mem::take(&mut self.para);
                if let Some(h) = level.and_then(|l| super::Heading::new(l, &p)) {
                    self.headings.push(h);
                }
                self.block(&p);
            }
        }
    }

    /// Appends a finished block (a paragraph, a rendered table).
    fn block(&mut self, text: &str) {
        let mut lines = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .peekable();
        if lines.peek().is_none() {
            return;
        }
        if !self.out.is_empty() {
            self.out.push_str("\n\n");
        }
        let joined: Vec<String> = lines.collect();
        self.out.push_str(&joined.join("\n"));
    }

    /// Opens a table (inside a cell, a nested one).
    pub fn start_table(&mut self) {
        self.end_para();
        self.tables.push(Table::default());
    }

    /// Ends a table cell.
    pub fn end_cell(&mut self) {
        if let Some(t) = self.tables.last_mut() {
            let c = std::mem::take(&mut t.cell);
            t.row
                .push(c.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }

    /// Adds `n` empty cells (the grid columns a merged cell spans past its
    /// first, so that later cells stay under their headers).
    pub fn empty_cells(&mut self, n: usize) {
        if let Some(t) = self.tables.last_mut() {
            for _ in 0..n.min(1024) {
                t.row.push(String::new());
            }
        }
    }

    /// Ends a table row.
    pub fn end_row(&mut self) {
        if let Some(t) = self.tables.last_mut() {
            t.close_row();
        }
    }

    /// Closes a table: rendered into the enclosing cell, or as a block.
    pub fn end_table(&mut self) {
        let Some(mut t) = self.tables.pop() else {
            return;
        };
        if !t.row.is_empty() || !t.cell.trim().is_empty() {
            t.close_row();
        }
        let text = render_table(&t.rows);
        match self.tables.last_mut() {
            Some(outer) => {
                outer.cell.push(' ');
                outer.cell.push_str(&text.replace('\n', "; "));
            }
            // Each row a paragraph of its own: the chunker and the answer's
            // sentences then take a row whole, with its column names.
            None => {
                for row in text.lines() {
                    self.block(row);
                }
            }
        }
    }

    /// The text so far, closing whatever is open.
    pub fn finish(self) -> String {
        self.finish_outline().0
    }

    /// The text and the headings marked in it, closing whatever is open.
    pub fn finish_outline(mut self) -> (String, Vec<super::Heading>) {
        while !self.tables.is_empty() {
            self.end_table();
        }
        self.end_para();
        (self.out, self.headings)
    }
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

/// A part of a `kind` file that cannot be read.
pub(crate) fn bad_part(kind: &'static str, part: &str, m: String) -> super::LoadError {
    super::LoadError::Corrupt {
        kind,
        message: format!("{part}: {m}"),
    }
}

/// Resolves a relationship target against the folder of the part that
/// names it (`ppt/slides/` + `../notesSlides/n1.xml`).
pub(crate) fn resolve(base_dir: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if let Some(abs) = target.strip_prefix('/') {
        return abs.to_string();
    } else {
        base_dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The relationships of a part (`Id` → target resolved against `base_dir`).
pub(crate) fn relationships(xml: &str, base_dir: &str) -> Result<Vec<(String, String)>, String> {
    let mut x = xml::Xml::new(xml);
    let mut out = Vec::new();
    while let Some(t) = x.next()? {
        if let xml::Tok::Start(s) = t {
            if xml::local(&s) == "Relationship"
                && xml::attr(&s, "TargetMode").as_deref() != Some("External")
            {
                if let (Some(id), Some(target)) = (xml::attr(&s, "Id"), xml::attr(&s, "Target")) {
                    out.push((id, resolve(base_dir, &target)));
                }
            }
        }
    }
    Ok(out)
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

    #[test]
    fn flow_paragraphs_and_nested_tables() {
        let mut f = Flow::default();
        f.push("Intro  text");
        f.end_para();
        f.start_table();
        for (a, b) in [("Key", "Value"), ("Budget", "12 000 EUR")] {
            f.push(a);
            f.end_para();
            f.end_cell();
            f.push(b);
            f.end_cell();
            f.end_row();
        }
        f.end_table();
        f.push("After");
        assert_eq!(
            f.finish(),
            "Intro text\n\nKey | Value\n\nKey: Budget; Value: 12 000 EUR\n\nAfter"
        );
    }

    #[test]
    fn targets_resolve() {
        assert_eq!(
            resolve("ppt/slides", "../notesSlides/n1.xml"),
            "ppt/notesSlides/n1.xml"
        );
        assert_eq!(resolve("ppt", "slides/slide1.xml"), "ppt/slides/slide1.xml");
        assert_eq!(resolve("word", "/word/document.xml"), "word/document.xml");
    }
}
