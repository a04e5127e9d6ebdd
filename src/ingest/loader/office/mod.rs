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

pub(crate) use super::table::render_table;
use super::table::{Table, MAX_TABLE_DEPTH};

/// Text being assembled: paragraphs, and tables (possibly nested) whose
/// rows are rendered when they close.
#[derive(Default)]
pub(crate) struct Flow {
    out: String,
    para: String,
    tables: Vec<Table>,
    /// Tables open past [`MAX_TABLE_DEPTH`], read as the innermost cell's
    /// text: their cells and rows only separate words.
    flat: usize,
    /// The open paragraph is a heading of this level.
    level: Option<u8>,
    headings: Vec<super::Heading>,
}

impl Flow {
    /// Adds text to the open paragraph or table cell.
    pub fn push(&mut self, s: &str) {
        match self.tables.last_mut() {
            Some(t) => t.push(s),
            None => self.para.push_str(s),
        }
    }

    /// A line break inside a paragraph (a space inside a table cell).
    pub fn line_break(&mut self) {
        match self.tables.last_mut() {
            Some(t) => t.push(" "),
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
            Some(t) => t.space(),
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
        if self.tables.len() < MAX_TABLE_DEPTH {
            self.tables.push(Table::default());
        } else {
            self.flat += 1;
        }
    }

    /// Inside a table read flat, where a cell or row ends: a space.
    fn flat_space(&mut self) -> bool {
        if self.flat == 0 {
            return false;
        }
        if let Some(t) = self.tables.last_mut() {
            t.space();
        }
        true
    }

    /// Ends a table cell.
    pub fn end_cell(&mut self) {
        if self.flat_space() {
            return;
        }
        if let Some(t) = self.tables.last_mut() {
            t.end_cell();
        }
    }

    /// Adds `n` empty cells (the grid columns a merged cell spans past its
    /// first, so that later cells stay under their headers).
    pub fn empty_cells(&mut self, n: usize) {
        if self.flat_space() {
            return;
        }
        if let Some(t) = self.tables.last_mut() {
            t.empty_cells(n);
        }
    }

    /// Ends a table row.
    pub fn end_row(&mut self) {
        if self.flat_space() {
            return;
        }
        if let Some(t) = self.tables.last_mut() {
            t.close_row();
        }
    }

    /// Closes a table: rendered into the enclosing cell, or as a block.
    pub fn end_table(&mut self) {
        if self.flat_space() {
            self.flat -= 1;
            return;
        }
        let Some(t) = self.tables.pop() else {
            return;
        };
        let text = t.finish();
        match self.tables.last_mut() {
            Some(outer) => outer.nested(&text),
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

    /// Hostile nesting (a Word table in a cell of a table, 20,000 deep):
    /// past MAX_TABLE_DEPTH the tables are the cell's words, so no level
    /// re-renders all it holds, and every word is kept.
    #[test]
    fn tables_nested_past_the_limit_are_read_as_cell_text() {
        let n = 20_000;
        let started = std::time::Instant::now();
        let mut f = Flow::default();
        for i in 0..n {
            f.start_table();
            f.push(&format!("w{i}"));
            f.end_para();
        }
        f.push("deep");
        for _ in 0..n {
            f.end_cell();
            f.end_row();
            f.end_table();
        }
        f.push("after");
        let text = f.finish();
        assert!(
            text.ends_with("deep\n\nafter"),
            "{}",
            &text[text.len() - 40..]
        );
        for i in [0, MAX_TABLE_DEPTH, n / 2, n - 1] {
            assert!(text.contains(&format!("w{i} ")), "w{i}");
        }
        assert!(
            text.len() < 40 * n,
            "{} bytes: a level re-rendered",
            text.len()
        );
        // A guard against a quadratic blow-up, not a speed test.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
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
