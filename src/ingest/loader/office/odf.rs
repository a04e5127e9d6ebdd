//! OpenDocument: Writer (`.odt`, one flow of text), Impress (`.odp`, a
//! page per slide, notes after it) and Calc (`.ods`, a page per sheet).
//! All three keep their content in `content.xml`.

use std::collections::HashSet;

use super::super::{LoadError, LoadedDoc, Page};
use super::archive::Archive;
use super::sml::{sheet_text, MAX_CELLS};
use super::xml::{attr, local, Tok, Xml};
use super::Flow;

/// Content a reader does not see, or that is not the text: hidden text,
/// comments, tracked changes (they hold deleted text), form definitions,
/// footnote marks.
const SKIP: &[&str] = &[
    "hidden-text",
    "hidden-paragraph",
    "annotation",
    "tracked-changes",
    "sequence-decls",
    "forms",
    "note-citation",
    "scripts",
];

fn content(a: &mut Archive<'_>, kind: &'static str) -> Result<String, LoadError> {
    a.text("content.xml")?.ok_or(LoadError::Corrupt {
        kind,
        message: "no content.xml: not an OpenDocument file".into(),
    })
}

/// Styles that hide their text (`text:display="none"`), from `styles.xml`
/// (named styles) and `content.xml` (automatic ones).
fn hidden_styles(a: &mut Archive<'_>, content: &str) -> Result<HashSet<String>, LoadError> {
    let mut out = HashSet::new();
    let styles = a.text("styles.xml")?;
    for xml in styles.as_deref().into_iter().chain([content]) {
        let mut x = Xml::new(xml);
        let mut current = None;
        // A part whose styles cannot be read hides nothing; its text is
        // still read (or fails) on its own.
        while let Ok(Some(t)) = x.next() {
            match t {
                Tok::Start(s) if local(&s) == "style" => current = attr(&s, "name"),
                // Hidden text, and hidden sheets.
                Tok::Start(s)
                    if local(&s) == "text-properties" || local(&s) == "table-properties" =>
                {
                    if matches!(attr(&s, "display").as_deref(), Some("none" | "false")) {
                        out.extend(current.clone());
                    }
                }
                Tok::End(n) if n == "style" => current = None,
                _ => {}
            }
        }
    }
    Ok(out)
}

fn corrupt(kind: &'static str, m: String) -> LoadError {
    super::bad_part(kind, "content.xml", m)
}

/// Reads a `.odt` file: body text, then its footnotes.
pub fn load_odt(bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
    const KIND: &str = "OpenDocument text (.odt)";
    let mut a = Archive::open(bytes, KIND)?;
    let xml = content(&mut a, KIND)?;
    let mut x = Xml::new(&xml);
    let (mut body, mut notes) = (Flow::default(), Flow::default());
    let mut st = State {
        hidden: hidden_styles(&mut a, &xml)?,
        ..State::default()
    };
    while let Some(tok) = x.next().map_err(|m| corrupt(KIND, m))? {
        // Footnote bodies go after the text: inline they would cut the
        // sentence that cites them in two.
        let f = if st.note > 0 { &mut notes } else { &mut body };
        st.step(tok, f, &mut x).map_err(|m| corrupt(KIND, m))?;
    }
    let (mut text, headings) = body.finish_outline();
    let notes = notes.finish();
    if !notes.is_empty() {
        text.push_str("\n\n");
        text.push_str(&notes);
    }
    Ok(LoadedDoc {
        pages: vec![Page::new(None, text).with_headings(headings)],
        warnings: Vec::new(),
    })
}

/// Reads a `.odp` file: a page per slide.
pub fn load_odp(bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
    const KIND: &str = "OpenDocument presentation (.odp)";
    let mut a = Archive::open(bytes, KIND)?;
    let xml = content(&mut a, KIND)?;
    let mut x = Xml::new(&xml);
    let mut pages = Vec::new();
    let (mut slide, mut notes) = (Flow::default(), Flow::default());
    let (mut in_page, mut in_notes) = (false, 0usize);
    let mut st = State {
        hidden: hidden_styles(&mut a, &xml)?,
        ..State::default()
    };
    while let Some(tok) = x.next().map_err(|m| corrupt(KIND, m))? {
        match &tok {
            Tok::Start(s) if local(s) == "page" && in_notes == 0 => {
                in_page = true;
                continue;
            }
            Tok::Start(s) if local(s) == "notes" => in_notes += 1,
            Tok::End(n) if n == "notes" => in_notes = in_notes.saturating_sub(1),
            Tok::End(n) if n == "page" && in_notes == 0 && in_page => {
                in_page = false;
                let mut text = std::mem::take(&mut slide).finish();
                let n = std::mem::take(&mut notes).finish().replace("\n\n", " ");
                if !n.is_empty() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str("Notes: ");
                    text.push_str(&n);
                }
                pages.push(Page::new(Some(pages.len() as u32 + 1), text));
                continue;
            }
            _ => {}
        }
        if in_page {
            let f = if in_notes > 0 { &mut notes } else { &mut slide };
            st.step(tok, f, &mut x).map_err(|m| corrupt(KIND, m))?;
        }
    }
    if pages.is_empty() {
        return Err(LoadError::Empty);
    }
    Ok(LoadedDoc {
        pages,
        warnings: Vec::new(),
    })
}

/// Reads a `.ods` file: a page per sheet, rows under their header.
pub fn load_ods(bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
    const KIND: &str = "OpenDocument spreadsheet (.ods)";
    let mut a = Archive::open(bytes, KIND)?;
    let xml = content(&mut a, KIND)?;
    let hidden = hidden_styles(&mut a, &xml)?;
    let mut x = Xml::new(&xml);
    let mut pages = Vec::new();
    let mut warnings = Vec::new();
    let mut budget = MAX_CELLS;
    let mut sheet_hidden = false;
    let mut name = String::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let (mut row_repeat, mut cell_repeat, mut col) = (1usize, 1usize, 0usize);
    let mut cell: Option<String> = None;
    let (mut in_p, mut cut) = (0usize, false);
    while let Some(tok) = x.next().map_err(|m| corrupt(KIND, m))? {
        match tok {
            Tok::Start(s) => {
                let l = local(&s);
                if SKIP.contains(&l) {
                    x.skip().map_err(|m| corrupt(KIND, m))?;
                    continue;
                }
                match l {
                    "table" if cell.is_none() => {
                        name = attr(&s, "name").unwrap_or_default();
                        sheet_hidden = attr(&s, "style-name").is_some_and(|n| hidden.contains(&n));
                        rows.clear();
                    }
                    "table-row" => {
                        row.clear();
                        col = 0;
                        row_repeat = repeat(&s, "number-rows-repeated");
                    }
                    "table-cell" | "covered-table-cell" => {
                        cell_repeat = repeat(&s, "number-columns-repeated");
                        cell = Some(String::new());
                    }
                    "p" | "h" if cell.is_some() => {
                        if let Some(c) = cell.as_mut().filter(|c| !c.is_empty()) {
                            c.push(' ');
                        }
                        in_p += 1;
                    }
                    "s" if in_p > 0 => {
                        if let Some(c) = cell.as_mut() {
                            c.push_str(&" ".repeat(repeat(&s, "c").min(64)));
                        }
                    }
                    "tab" | "line-break" if in_p > 0 => {
                        if let Some(c) = cell.as_mut() {
                            c.push(' ');
                        }
                    }
                    _ => {}
                }
            }
            Tok::End(l) => {
                match l.as_str() {
                    "p" | "h" => in_p = in_p.saturating_sub(1),
                    "table-cell" | "covered-table-cell" => {
                        let c = cell.take().unwrap_or_default();
                        let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
                        // Empty cells repeat by the thousand in every
                        // sheet LibreOffice writes: they only move the
                        // column on (a value after them keeps its column,
                        // so its header still fits); values are spread.
                        if c.is_empty() {
                            col = col.saturating_add(cell_repeat);
                        } else {
                            for _ in 0..cell_repeat {
                                if budget == 0 {
                                    cut = true;
                                    break;
                                }
                                if col >= 16_384 {
                                    break;
                                }
                                budget -= 1;
                                row.resize(col, String::new());
                                row.push(c.clone());
                                col += 1;
                            }
                        }
                    }
                    "table-row" => {
                        let filled = row.iter().filter(|c| !c.is_empty()).count();
                        // The first copy was counted cell by cell.
                        rows.push(row.clone());
                        for _ in 1..if filled == 0 { 1 } else { row_repeat } {
                            if budget < filled {
                                cut = true;
                                break;
                            }
                            budget -= filled;
                            rows.push(row.clone());
                        }
                    }
                    "table" if cell.is_none() && sheet_hidden => {
                        warnings.push(format!(
                            "sheet {} ({name}) is hidden: skipped",
                            pages.len() + 1
                        ));
                        pages.push(Page::new(Some(pages.len() as u32 + 1), String::new()));
                        rows.clear();
                    }
                    "table" if cell.is_none() => {
                        if cut {
                            warnings.push(format!(
                                "sheet {} ({name}): cut after {MAX_CELLS} cells in the file",
                                pages.len() + 1
                            ));
                        }
                        pages.push(Page::new(
                            Some(pages.len() as u32 + 1),
                            sheet_text(&name, &rows),
                        ));
                        rows.clear();
                        if cut {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            Tok::Text(t) => {
                if in_p > 0 {
                    if let Some(c) = cell.as_mut() {
                        c.push_str(&t);
                    }
                }
            }
        }
    }
    if pages.is_empty() {
        return Err(LoadError::Empty);
    }
    Ok(LoadedDoc { pages, warnings })
}

fn repeat(s: &quick_xml::events::BytesStart<'_>, name: &str) -> usize {
    attr(s, name)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 1 << 20)
}

/// Walks ODF text content into a [`Flow`]: paragraphs, headings, lists,
/// tables, spaces and breaks; hidden and non-text content skipped.
#[derive(Default)]
struct State {
    /// Depth inside `text:note-body`.
    note: usize,
    /// Depth inside paragraphs and headings (text outside them is
    /// formatting whitespace).
    in_p: usize,
    /// Styles that hide text.
    hidden: HashSet<String>,
}

impl State {
    fn step(&mut self, tok: Tok<'_>, f: &mut Flow, x: &mut Xml<'_>) -> Result<(), String> {
        match tok {
            Tok::Start(s) => {
                let l = local(&s);
                let hidden = || {
                    matches!(l, "span" | "p" | "h")
                        && attr(&s, "style-name").is_some_and(|n| self.hidden.contains(&n))
                };
                if SKIP.contains(&l) || hidden() {
                    return x.skip();
                }
                match l {
                    "note-body" => self.note += 1,
                    "p" | "h" => {
                        self.in_p += 1;
                        if l == "h" {
                            let level =
                                attr(&s, "outline-level").and_then(|v| v.parse::<u8>().ok());
                            f.heading(level.unwrap_or(1).clamp(1, 9));
                        } else if attr(&s, "style-name").as_deref() == Some("Title") {
                            f.heading(0);
                        }
                    }
                    "s" => f.push(&" ".repeat(repeat(&s, "c").min(64))),
                    "tab" => f.push(" "),
                    "line-break" => f.line_break(),
                    "table" => f.start_table(),
                    _ => {}
                }
            }
            Tok::End(l) => match l.as_str() {
                "note-body" => self.note = self.note.saturating_sub(1),
                "p" | "h" => {
                    self.in_p = self.in_p.saturating_sub(1);
                    f.end_para();
                }
                "table-cell" | "covered-table-cell" => f.end_cell(),
                "table-row" => f.end_row(),
                "table" => f.end_table(),
                _ => {}
            },
            Tok::Text(t) => {
                if self.in_p > 0 {
                    f.push(&t);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ods(content: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("content.xml", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content.as_bytes()).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn repeated_empty_cells_keep_values_in_their_columns() {
        let cell = |v: &str| format!("<table:table-cell><text:p>{v}</text:p></table:table-cell>");
        let gap = |n: u32| format!("<table:table-cell table:number-columns-repeated=\"{n}\"/>");
        let xml = format!(
            "<office:document-content><office:body><office:spreadsheet><table:table table:name=\"T\">\
             <table:table-row>{}{}{}{}</table:table-row>\
             <table:table-row>{}{}{}{}{}</table:table-row>\
             </table:table></office:spreadsheet></office:body></office:document-content>",
            cell("Name"),
            gap(2),
            cell("Betrag"),
            gap(1020),
            cell("Anna"),
            cell("x"),
            gap(1),
            cell("5"),
            gap(1020),
        );
        let doc = load_ods(&ods(&xml)).unwrap();
        assert_eq!(
            doc.pages[0].text,
            "T\n\nName | Betrag\n\nName: Anna; x; Betrag: 5"
        );
    }
}
