//! PowerPoint (`.pptx`): one page per slide in presentation order, the
//! slide's text then its speaker notes.

use super::super::{LoadError, LoadedDoc, Page};
use super::archive::Archive;
use super::xml::{attr_q, local, Tok, Xml};
use super::{relationships, Flow};

const KIND: &str = "PowerPoint (.pptx)";

/// Reads a `.pptx` file.
pub fn load_pptx(bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
    let mut a = Archive::open(bytes, KIND)?;
    let slides = slide_parts(&mut a)?;
    let mut pages = Vec::with_capacity(slides.len());
    let mut warnings = Vec::new();
    for (i, part) in slides.iter().enumerate() {
        let n = i as u32 + 1;
        let Some(xml) = a.text(part)? else {
            warnings.push(format!("slide {n}: part {part} missing"));
            pages.push(Page::new(Some(n), String::new()));
            continue;
        };
        let mut flow = Flow::default();
        if let Err(m) = walk(&xml, &mut flow) {
            warnings.push(format!("slide {n} unreadable: {m}"));
        }
        let mut text = flow.finish();
        if let Some(notes) = notes_of(&mut a, part)? {
            if !notes.is_empty() {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str("Notes: ");
                text.push_str(&notes);
            }
        }
        pages.push(Page::new(Some(n), text));
    }
    if pages.is_empty() {
        return Err(LoadError::Empty);
    }
    Ok(LoadedDoc { pages, warnings })
}

/// Slide parts in the order `presentation.xml` lists them.
fn slide_parts(a: &mut Archive) -> Result<Vec<String>, LoadError> {
    let pres = a.text("ppt/presentation.xml")?.ok_or(LoadError::Corrupt {
        kind: KIND,
        message: "no ppt/presentation.xml: not a PowerPoint file".into(),
    })?;
    let rels = match a.text("ppt/_rels/presentation.xml.rels")? {
        Some(r) => relationships(&r, "ppt").map_err(|m| corrupt("presentation rels", m))?,
        None => Vec::new(),
    };
    let mut x = Xml::new(&pres);
    let mut out = Vec::new();
    while let Some(t) = x.next().map_err(|m| corrupt("ppt/presentation.xml", m))? {
        if let Tok::Start(s) = t {
            if local(&s) == "sldId" {
                if let Some(id) = attr_q(&s, "r:id") {
                    if let Some((_, target)) = rels.iter().find(|(i, _)| *i == id) {
                        out.push(target.clone());
                    }
                }
            }
        }
    }
    if out.is_empty() {
        // No usable list: the slide parts by number.
        let mut named: Vec<(u32, String)> = a
            .names()
            .into_iter()
            .filter_map(|n| {
                let num = n
                    .strip_prefix("ppt/slides/slide")?
                    .strip_suffix(".xml")?
                    .parse()
                    .ok()?;
                Some((num, n))
            })
            .collect();
        named.sort();
        out = named.into_iter().map(|(_, n)| n).collect();
    }
    Ok(out)
}

/// The speaker notes of a slide, if it has any.
fn notes_of(a: &mut Archive, slide: &str) -> Result<Option<String>, LoadError> {
    let (dir, file) = slide.rsplit_once('/').unwrap_or(("", slide));
    let Some(rels) = a.text(&format!("{dir}/_rels/{file}.rels"))? else {
        return Ok(None);
    };
    let rels = relationships(&rels, dir).map_err(|m| corrupt("slide rels", m))?;
    let Some((_, notes)) = rels.iter().find(|(_, t)| t.contains("notesSlide")) else {
        return Ok(None);
    };
    let Some(xml) = a.text(notes)? else {
        return Ok(None);
    };
    let mut flow = Flow::default();
    // Notes pages repeat the slide number, date, header and footer and a
    // picture of the slide; the rest is the speaker's.
    walk_notes(&xml, &mut flow).map_err(|m| corrupt(notes, m))?;
    Ok(Some(flow.finish().replace("\n\n", " ")))
}

fn corrupt(part: &str, m: String) -> LoadError {
    super::bad_part(KIND, part, m)
}

/// Walks DrawingML text on a slide: paragraphs, line breaks, tables.
fn walk(xml: &str, flow: &mut Flow) -> Result<(), String> {
    let mut x = Xml::new(xml);
    let mut in_t = false;
    while let Some(tok) = x.next()? {
        match tok {
            Tok::Start(s) => {
                let name = local(&s);
                if name == "Fallback" {
                    x.skip()?;
                    continue;
                }
                match name {
                    "t" => in_t = true,
                    "br" => flow.line_break(),
                    "tbl" => flow.start_table(),
                    _ => {}
                }
            }
            Tok::End(name) => match name.as_str() {
                "t" => in_t = false,
                "p" => flow.end_para(),
                "tc" => flow.end_cell(),
                "tr" => flow.end_row(),
                "tbl" => flow.end_table(),
                _ => {}
            },
            Tok::Text(t) => {
                if in_t {
                    flow.push(&t);
                }
            }
        }
    }
    Ok(())
}

/// Placeholders of a notes page that are not the speaker's text.
const NOT_NOTES: &[&str] = &["sldNum", "sldImg", "hdr", "ftr", "dt"];

/// The text of a notes page, without its number, date, header and footer.
fn walk_notes(xml: &str, flow: &mut Flow) -> Result<(), String> {
    let mut x = Xml::new(xml);
    let (mut in_shape, mut body, mut in_t) = (0usize, false, false);
    while let Some(tok) = x.next()? {
        match tok {
            Tok::Start(s) => {
                let name = local(&s);
                if name == "sp" {
                    in_shape += 1;
                    body = true;
                } else if name == "ph" && in_shape > 0 {
                    body = !super::xml::attr(&s, "type")
                        .is_some_and(|t| NOT_NOTES.contains(&t.as_str()));
                } else if name == "t" {
                    in_t = true;
                } else if name == "br" && body {
                    flow.line_break();
                }
            }
            Tok::End(name) => match name.as_str() {
                "sp" => {
                    in_shape = in_shape.saturating_sub(1);
                    body = false;
                }
                "t" => in_t = false,
                "p" if body => flow.end_para(),
                _ => {}
            },
            Tok::Text(t) => {
                if in_t && body {
                    flow.push(&t);
                }
            }
        }
    }
    Ok(())
}
