//! Outlook mail (`.msg`): a compound file (CFB) whose streams hold the
//! message's properties ([MS-OXMSG]). Read like `.eml`: page 1 the header
//! lines and the body (plain text, else the visible text of the HTML body),
//! then each attachment hort can read as its pages, an attached Outlook
//! message opened as a mail of its own (two levels deep at most).
//!
//! Property streams are named `__substg1.0_<tag><type>`: type `001F` is
//! UTF-16, `001E` 8-bit text, `0102` bytes. Every stream read is capped, so
//! a file that claims huge streams costs at most the cap.

use std::io::{Cursor, Read};

use super::mail::{attach, attachment_kind, Message, MAX_DEPTH};
use super::{html::visible_text, FileKind, LoadError, LoadedDoc, Loaders};

const KIND: &str = "Outlook message (.msg)";

/// The largest stream read (an attachment's bytes, a body).
const MAX_STREAM: u64 = 64 << 20;

/// The most attachments read from one message.
const MAX_ATTACHMENTS: usize = 256;

type Cfb<'a> = cfb::CompoundFile<Cursor<&'a [u8]>>;

/// Reads a `.msg` file.
pub fn load_msg(bytes: &[u8], loaders: &Loaders, depth: usize) -> Result<LoadedDoc, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|e| corrupt(&e))?;
    read_message(&mut file, "/", loaders, depth)
}

fn corrupt(e: &dyn std::fmt::Display) -> LoadError {
    LoadError::Corrupt {
        kind: KIND,
        message: e.to_string(),
    }
}

/// The message stored at `base` (the root, or an attached message's
/// storage).
fn read_message(
    file: &mut Cfb<'_>,
    base: &str,
    loaders: &Loaders,
    depth: usize,
) -> Result<LoadedDoc, LoadError> {
    let text = |file: &mut Cfb<'_>, tag: &str| prop_text(file, base, tag);
    let class = text(file, "001A");
    let subject = text(file, "0037");
    if class.is_none() && subject.is_none() {
        return Err(corrupt(
            &"no message class or subject: not an Outlook message",
        ));
    }
    let sender_name = text(file, "0C1A").or_else(|| text(file, "0042"));
    let sender_mail = text(file, "0C1F").or_else(|| text(file, "0065"));
    let from = match (sender_name, sender_mail) {
        (Some(n), Some(m)) if n != m && m.contains('@') => format!("{n} <{m}>"),
        (Some(n), _) => n,
        (None, Some(m)) => m,
        (None, None) => String::new(),
    };
    let body = match text(file, "1000").filter(|b| !b.trim().is_empty()) {
        Some(b) => b,
        None => prop_bytes(file, base, "1013")
            .map(|h| visible_text(&String::from_utf8_lossy(&h)))
            .or_else(|| text(file, "1013").map(|h| visible_text(&h)))
            .unwrap_or_default(),
    };
    let head = Message {
        subject: subject.unwrap_or_default(),
        from,
        to: text(file, "0E04").unwrap_or_default(),
        cc: text(file, "0E03").unwrap_or_default(),
        date: String::new(),
        body: body.replace("\r\n", "\n"),
    };
    let mut pages = vec![head.first_page()];
    let mut warnings = Vec::new();
    let storages: Vec<String> = file
        .read_storage(base)
        .map_err(|e| corrupt(&e))?
        .filter(|e| e.is_storage() && e.name().starts_with("__attach_version1.0_#"))
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    if storages.len() > MAX_ATTACHMENTS {
        warnings.push(format!(
            "{} attachments; the first {MAX_ATTACHMENTS} read",
            storages.len()
        ));
    }
    for at in storages.into_iter().take(MAX_ATTACHMENTS) {
        let name = ["3707", "3704", "3001"]
            .iter()
            .find_map(|t| prop_text(file, &at, t).filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| "(unnamed)".into());
        let embedded = format!("{at}/__substg1.0_3701000D");
        let loaded = if file.is_storage(&embedded) {
            if depth >= MAX_DEPTH {
                warnings.push(format!(
                    "attachment {name}: a message nested deeper than {MAX_DEPTH} levels, skipped"
                ));
                continue;
            }
            read_message(file, &embedded, loaders, depth + 1)
        } else {
            let Some(kind) = attachment_kind(&name, &mut warnings) else {
                continue;
            };
            let Some(data) = prop_bytes(file, &at, "3701") else {
                warnings.push(format!("attachment {name}: no data, skipped"));
                continue;
            };
            // An image shown inside the body (a logo in a signature) has a
            // content id; OCR on it finds nothing worth citing.
            if kind == FileKind::Image && prop_text(file, &at, "3712").is_some() {
                continue;
            }
            loaders.load_at(kind, &data, depth + 1)
        };
        attach(&name, loaded, &mut pages, &mut warnings);
    }
    Ok(LoadedDoc { pages, warnings })
}

/// The bytes of a stream, at most [`MAX_STREAM`] of them.
fn read_stream(file: &mut Cfb<'_>, path: &str) -> Option<Vec<u8>> {
    let stream = file.open_stream(path).ok()?;
    let mut out = Vec::new();
    stream.take(MAX_STREAM).read_to_end(&mut out).ok()?;
    Some(out)
}

fn prop_bytes(file: &mut Cfb<'_>, base: &str, tag: &str) -> Option<Vec<u8>> {
    read_stream(
        file,
        &format!("{}/__substg1.0_{tag}0102", base.trim_end_matches('/')),
    )
}

/// A text property: UTF-16 (`001F`) or 8-bit (`001E`, read as Windows-1252,
/// the code page of most such files here), NULs trimmed.
fn prop_text(file: &mut Cfb<'_>, base: &str, tag: &str) -> Option<String> {
    let base = base.trim_end_matches('/');
    if let Some(b) = read_stream(file, &format!("{base}/__substg1.0_{tag}001F")) {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return Some(
            String::from_utf16_lossy(&units)
                .trim_end_matches('\0')
                .to_string(),
        );
    }
    let b = read_stream(file, &format!("{base}/__substg1.0_{tag}001E"))?;
    let (t, _, _) = encoding_rs::WINDOWS_1252.decode(&b);
    Some(t.trim_end_matches('\0').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::loader::PdfIsolation;
    use std::io::Write;

    fn loaders() -> Loaders {
        Loaders::new(PdfIsolation::InProcess {
            timeout: std::time::Duration::from_secs(20),
        })
    }

    /// A message made here: UTF-16 subject and body, an 8-bit sender, a
    /// text attachment and an attachment of an unknown type.
    fn message() -> Vec<u8> {
        let mut c = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        let put = |c: &mut cfb::CompoundFile<Cursor<Vec<u8>>>, path: &str, data: &[u8]| {
            c.create_stream(path).unwrap().write_all(data).unwrap();
        };
        let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        put(&mut c, "/__substg1.0_001A001F", &utf16("IPM.Note"));
        put(
            &mut c,
            "/__substg1.0_0037001F",
            &utf16("Fristen für Rechnungen"),
        );
        put(&mut c, "/__substg1.0_0C1A001E", b"J\xfcrgen Berg");
        put(
            &mut c,
            "/__substg1.0_0C1F001F",
            &utf16("j.berg@example.com"),
        );
        put(&mut c, "/__substg1.0_0E04001F", &utf16("Buchhaltung\0"));
        put(
            &mut c,
            "/__substg1.0_1000001F",
            &utf16("Rechnungen werden binnen 30 Tagen bezahlt.\r\nGruß"),
        );
        c.create_storage("/__attach_version1.0_#00000000").unwrap();
        put(
            &mut c,
            "/__attach_version1.0_#00000000/__substg1.0_3707001F",
            &utf16("skonto.txt"),
        );
        put(
            &mut c,
            "/__attach_version1.0_#00000000/__substg1.0_37010102",
            "Skonto: 2 % bei Zahlung binnen 10 Tagen.".as_bytes(),
        );
        c.create_storage("/__attach_version1.0_#00000001").unwrap();
        put(
            &mut c,
            "/__attach_version1.0_#00000001/__substg1.0_3707001F",
            &utf16("kalender.ics"),
        );
        put(
            &mut c,
            "/__attach_version1.0_#00000001/__substg1.0_37010102",
            b"BEGIN:VCALENDAR",
        );
        c.flush().unwrap();
        c.into_inner().into_inner()
    }

    #[test]
    fn message_with_attachments() {
        let doc = load_msg(&message(), &loaders(), 0).unwrap();
        let p1 = &doc.pages[0].text;
        assert!(p1.starts_with("Subject: Fristen für Rechnungen\nFrom: Jürgen Berg <j.berg@example.com>\nTo: Buchhaltung\n"), "{p1}");
        assert!(p1.ends_with("binnen 30 Tagen bezahlt.\nGruß"), "{p1}");
        assert_eq!(doc.pages[0].headings[0].text, "Fristen für Rechnungen");
        assert_eq!(doc.pages.len(), 2);
        assert_eq!(
            doc.pages[1].text,
            "Attachment: skonto.txt\n\nSkonto: 2 % bei Zahlung binnen 10 Tagen."
        );
        assert_eq!(doc.pages[1].number, Some(2));
        assert!(
            doc.warnings
                .iter()
                .any(|w| w.contains("kalender.ics: unsupported type")),
            "{:?}",
            doc.warnings
        );
    }

    #[test]
    fn hostile_files_are_errors() {
        let l = loaders();
        assert!(matches!(load_msg(b"", &l, 0), Err(LoadError::Empty)));
        assert!(matches!(
            load_msg(b"not a compound file at all", &l, 0),
            Err(LoadError::Corrupt { .. })
        ));
        // Truncated anywhere: an error or a partial message, never a panic.
        let m = message();
        for cut in (0..m.len()).step_by(97) {
            let _ = load_msg(&m[..cut], &l, 0);
        }
        // A compound file that is not a message.
        let mut c = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        c.create_stream("/WordDocument")
            .unwrap()
            .write_all(b"x")
            .unwrap();
        let bytes = c.into_inner().into_inner();
        let e = load_msg(&bytes, &l, 0).unwrap_err().to_string();
        assert!(e.contains("not an Outlook message"), "{e}");
    }
}
