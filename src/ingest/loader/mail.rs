//! E-mail (`.eml`, RFC 5322 with MIME): the message as page 1 (its header
//! lines, then the text body, or the visible text of the HTML body), and
//! each attachment hort can read as the pages after it, under the mail's
//! access rule.
//!
//! An attachment is parsed by the loader of its own type (a PDF in the
//! worker process, a Word file by the Office reader, a forwarded message by
//! this one, two levels deep at most); one that cannot be read is a
//! warning, not a failure of the mail. Each attachment page starts with an
//! `Attachment:` line naming the file, so a citation of page 3 says which
//! file it came from.

use mail_parser::{MessageParser, MimeHeaders};

use super::{html::visible_text, FileKind, Heading, LoadError, LoadedDoc, Loaders, Page};

/// How deep forwarded messages are opened.
pub(super) const MAX_DEPTH: usize = 2;

/// Reads an `.eml` file.
pub fn load_eml(bytes: &[u8], loaders: &Loaders, depth: usize) -> Result<LoadedDoc, LoadError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadError::Empty);
    }
    let msg = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| LoadError::Corrupt {
            kind: "e-mail (.eml)",
            message: "no message headers found".into(),
        })?;
    // Anything parses as a message of sorts; a mail has at least one of
    // the headers every mail program writes.
    if msg.subject().is_none()
        && msg.from().is_none()
        && msg.to().is_none()
        && msg.date().is_none()
        && msg.message_id().is_none()
    {
        return Err(LoadError::Corrupt {
            kind: "e-mail (.eml)",
            message: "no message headers found".into(),
        });
    }
    let addresses = |a: Option<&mail_parser::Address>| {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (Some(n), None) => n.to_string(),
                    (None, Some(e)) => e.to_string(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let body = match msg.body_text(0) {
        Some(t) if !t.trim().is_empty() && msg.text_body_count() > 0 => t.into_owned(),
        _ => msg
            .body_html(0)
            .map(|h| visible_text(&h))
            .unwrap_or_default(),
    };
    let head = Message {
        subject: msg.subject().unwrap_or_default().to_string(),
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        date: msg.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        body,
    };
    let mut pages = vec![head.first_page()];
    let mut warnings = Vec::new();
    for part in msg.attachments() {
        let name = match (part.attachment_name(), part.message()) {
            (Some(n), _) => n.to_string(),
            (None, Some(m)) => format!("message \"{}\"", m.subject().unwrap_or("(no subject)")),
            (None, None) => "(unnamed)".into(),
        };
        let loaded = if let Some(inner) = part.message() {
            if depth >= MAX_DEPTH {
                warnings.push(format!(
                    "attachment {name}: a message nested deeper than {MAX_DEPTH} levels, skipped"
                ));
                continue;
            }
            load_eml(inner.raw_message(), loaders, depth + 1)
        } else {
            let Some(kind) = attachment_kind(&name, &mut warnings) else {
                continue;
            };
            // Logos and pictures in a signature are inline images; OCR on
            // them finds nothing worth citing.
            if kind == FileKind::Image && part.content_id().is_some() {
                continue;
            }
            loaders.load_at(kind, part.contents(), depth + 1)
        };
        attach(&name, loaded, &mut pages, &mut warnings);
    }
    Ok(LoadedDoc { pages, warnings })
}

/// A message as page 1 shows it: header lines, then the body.
pub(super) struct Message {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub date: String,
    pub body: String,
}

impl Message {
    /// Page 1: the header lines that have a value, a blank line, the body;
    /// the subject is the title every chunk of the mail is embedded under.
    pub fn first_page(&self) -> Page {
        let mut text = String::new();
        for (k, v) in [
            ("Subject", &self.subject),
            ("From", &self.from),
            ("To", &self.to),
            ("Cc", &self.cc),
            ("Date", &self.date),
        ] {
            let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
            if !v.is_empty() {
                text.push_str(k);
                text.push_str(": ");
                text.push_str(&v);
                text.push('\n');
            }
        }
        if !self.body.trim().is_empty() {
            text.push('\n');
            text.push_str(self.body.trim());
        }
        let title = Heading::new(0, &self.subject);
        Page::new(Some(1), text).with_headings(title.into_iter().collect())
    }
}

/// The format of an attachment called `name`, or a warning that it is
/// skipped (signatures, calendar invites, archives: said, not read).
pub(super) fn attachment_kind(name: &str, warnings: &mut Vec<String>) -> Option<FileKind> {
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let kind = FileKind::from_extension(ext);
    if kind.is_none() {
        warnings.push(format!("attachment {name}: unsupported type, skipped"));
    }
    kind
}

/// Appends an attachment's pages after the mail's: each starts with an
/// `Attachment:` line naming the file (and its page), under which its own
/// outline sits; one that could not be read is a warning.
pub(super) fn attach(
    name: &str,
    loaded: Result<LoadedDoc, LoadError>,
    pages: &mut Vec<Page>,
    warnings: &mut Vec<String>,
) {
    let doc = match loaded {
        Ok(doc) => doc,
        Err(e) => {
            warnings.push(format!("attachment {name} not read: {e}"));
            return;
        }
    };
    let many = doc.pages.len() > 1;
    for (i, p) in doc.pages.into_iter().enumerate() {
        if p.text.trim().is_empty() {
            continue;
        }
        let label = if many {
            format!(
                "Attachment: {name}, page {}",
                p.number.unwrap_or(i as u32 + 1)
            )
        } else {
            format!("Attachment: {name}")
        };
        let headings = Heading::new(1, &label)
            .into_iter()
            .chain(p.headings.iter().map(|h| Heading {
                level: (h.level + 2).min(9),
                text: h.text.clone(),
            }))
            .collect();
        pages.push(Page {
            number: Some(pages.len() as u32 + 1),
            text: format!("{label}\n\n{}", p.text.trim()),
            ocr: p.ocr,
            headings,
        });
    }
    warnings.extend(
        doc.warnings
            .into_iter()
            .map(|w| format!("attachment {name}: {w}")),
    );
}
