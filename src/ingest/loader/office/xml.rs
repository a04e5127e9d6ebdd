//! A pull reader over the XML parts of Office files: start tags, end tags
//! and text, with references resolved.
//!
//! Office parts never declare a DTD, so a part that does is refused: that
//! closes entity-expansion bombs and external entities (XXE) at the door
//! (quick-xml expands neither, but a DTD in a `.docx` is an attack, not a
//! document).

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// One step through a part.
pub enum Tok<'a> {
    /// An opening tag (self-closing tags give `Start` then `End`).
    Start(BytesStart<'a>),
    /// A closing tag, by local name.
    End(String),
    /// Character data.
    Text(Cow<'a, str>),
}

/// Pulls [`Tok`]s from one part.
pub struct Xml<'a> {
    r: Reader<&'a [u8]>,
}

impl<'a> Xml<'a> {
    /// Reads `xml`.
    pub fn new(xml: &'a str) -> Xml<'a> {
        let mut r = Reader::from_str(xml);
        let c = r.config_mut();
        c.expand_empty_elements = true;
        c.check_end_names = false;
        Xml { r }
    }

    /// The next token, `Ok(None)` at the end; `Err` says what is wrong.
    pub fn next(&mut self) -> Result<Option<Tok<'a>>, String> {
        loop {
            let ev = self
                .r
                .read_event()
                .map_err(|e| format!("XML error at byte {}: {e}", self.r.error_position()))?;
            return Ok(Some(match ev {
                Event::Start(s) => Tok::Start(s),
                Event::End(e) => Tok::End(e.local_name().into_inner().to_string()),
                Event::Text(t) => Tok::Text(t.into_inner()),
                Event::CData(t) => Tok::Text(t.into_inner()),
                Event::GeneralRef(r) => {
                    let s = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            match quick_xml::escape::resolve_xml_entity(&r) {
                                Some(s) => s.to_string(),
                                // An undeclared entity: nothing to show.
                                None => continue,
                            }
                        }
                        Err(_) => continue,
                    };
                    Tok::Text(Cow::Owned(s))
                }
                Event::DocType(_) => {
                    return Err("the part declares a DTD (entity expansion is refused)".into())
                }
                Event::Eof => return Ok(None),
                _ => continue,
            }));
        }
    }
}

impl Xml<'_> {
    /// Consumes the rest of the element just opened, its children included
    /// (content a reader does not see).
    pub fn skip(&mut self) -> Result<(), String> {
        let mut depth = 1usize;
        while let Some(t) = self.next()? {
            match t {
                Tok::Start(_) => depth += 1,
                Tok::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Tok::Text(_) => {}
            }
        }
        Ok(())
    }
}

/// The local part of a tag's name (`w:p` → `p`).
pub fn local<'b>(s: &'b BytesStart<'_>) -> &'b str {
    s.local_name().into_inner()
}

/// An attribute's value by its local name (`w:val` → `val`), unescaped.
pub fn attr(s: &BytesStart<'_>, name: &str) -> Option<String> {
    find(s, |k| k.local_name().into_inner() == name)
}

/// An attribute by its full name (`r:id`), for names whose prefix matters.
pub fn attr_q(s: &BytesStart<'_>, name: &str) -> Option<String> {
    find(s, |k| k.into_inner() == name)
}

fn find(s: &BytesStart<'_>, is: impl Fn(quick_xml::name::QName<'_>) -> bool) -> Option<String> {
    s.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| is(a.key))
        .map(
            |a| match a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(v) => v.into_owned(),
                Err(_) => a.value.into_owned(),
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_resolved_and_dtd_refused() {
        let mut x = Xml::new("<a x:v=\"1&amp;2\">M&amp;M &#252;<b/></a>");
        let mut text = String::new();
        let mut starts = Vec::new();
        while let Some(t) = x.next().unwrap() {
            match t {
                Tok::Start(s) => starts.push((local(&s).to_string(), attr(&s, "v"))),
                Tok::Text(t) => text.push_str(&t),
                Tok::End(_) => {}
            }
        }
        assert_eq!(text, "M&M ü");
        assert_eq!(starts[0], ("a".to_string(), Some("1&2".to_string())));
        assert_eq!(starts[1].0, "b");
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]><l>&b;</l>";
        let mut x = Xml::new(bomb);
        let mut err = None;
        loop {
            match x.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(err.unwrap().contains("DTD"));
    }
}
