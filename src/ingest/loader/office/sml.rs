//! Excel (`.xlsx`): one page per visible sheet, the sheet's name first,
//! then its rows (a header row names the columns of the rows below it).

use std::collections::HashMap;

use super::super::{LoadError, LoadedDoc, Page};
use super::archive::Archive;
use super::xml::{attr, attr_q, local, Tok, Xml};
use super::{relationships, render_table};

const KIND: &str = "Excel (.xlsx)";

/// Cells read per file (a 10,000-row export of 20 columns); a sheet past
/// it is cut there, with a warning. Tables larger than that are data for a
/// database, and would cost hours of embedding as text.
pub(crate) const MAX_CELLS: usize = 200_000;
/// Columns in a sheet (Excel's own limit, `XFD`).
const MAX_COLUMNS: usize = 16_384;

/// Reads a `.xlsx` file.
pub fn load_xlsx(bytes: &[u8]) -> Result<LoadedDoc, LoadError> {
    let mut a = Archive::open(bytes, KIND)?;
    let wb = a.text("xl/workbook.xml")?.ok_or(LoadError::Corrupt {
        kind: KIND,
        message: "no xl/workbook.xml: not an Excel workbook".into(),
    })?;
    let rels = match a.text("xl/_rels/workbook.xml.rels")? {
        Some(r) => relationships(&r, "xl").map_err(|m| corrupt("workbook rels", m))?,
        None => Vec::new(),
    };
    let strings = match a.text("xl/sharedStrings.xml")? {
        Some(s) => shared_strings(&s).map_err(|m| corrupt("xl/sharedStrings.xml", m))?,
        None => Vec::new(),
    };
    let dates = match a.text("xl/styles.xml")? {
        Some(s) => date_styles(&s).unwrap_or_default(),
        None => Vec::new(),
    };
    let sheets = sheet_list(&wb, &rels).map_err(|m| corrupt("xl/workbook.xml", m))?;
    let mut pages = Vec::new();
    let mut warnings = Vec::new();
    let mut budget = MAX_CELLS;
    for (i, sh) in sheets.iter().enumerate() {
        let n = i as u32 + 1;
        if sh.hidden {
            warnings.push(format!("sheet {n} ({}) is hidden: skipped", sh.name));
            pages.push(Page::new(Some(n), String::new()));
            continue;
        }
        let rows = match a.text(&sh.part)? {
            Some(xml) => {
                let ctx = Cells {
                    strings: &strings,
                    dates: &dates,
                };
                match ctx.rows(&xml, &mut budget) {
                    Ok((rows, cut)) => {
                        if cut {
                            warnings.push(format!(
                                "sheet {n} ({}): cut after {MAX_CELLS} cells in the file",
                                sh.name
                            ));
                        }
                        rows
                    }
                    Err(m) => {
                        warnings.push(format!("sheet {n} ({}) unreadable: {m}", sh.name));
                        Vec::new()
                    }
                }
            }
            None => {
                warnings.push(format!("sheet {n} ({}): part {} missing", sh.name, sh.part));
                Vec::new()
            }
        };
        pages.push(Page::new(Some(n), sheet_text(&sh.name, &rows)));
    }
    if pages.is_empty() {
        return Err(LoadError::Empty);
    }
    Ok(LoadedDoc { pages, warnings })
}

/// A sheet's page: its name as a heading, then its table (nothing if the
/// sheet has no values).
pub(crate) fn sheet_text(name: &str, rows: &[Vec<String>]) -> String {
    let table = render_table(rows);
    if table.is_empty() {
        return String::new();
    }
    // A row per paragraph (see `Flow::end_table`).
    format!("{name}\n\n{}", table.replace('\n', "\n\n"))
}

fn corrupt(part: &str, m: String) -> LoadError {
    super::bad_part(KIND, part, m)
}

struct Sheet {
    name: String,
    part: String,
    hidden: bool,
}

fn sheet_list(wb: &str, rels: &[(String, String)]) -> Result<Vec<Sheet>, String> {
    let mut x = Xml::new(wb);
    let mut out = Vec::new();
    while let Some(t) = x.next()? {
        if let Tok::Start(s) = t {
            if local(&s) != "sheet" {
                continue;
            }
            let name = attr(&s, "name").unwrap_or_default();
            let hidden = attr(&s, "state").is_some_and(|v| v != "visible");
            let id = attr_q(&s, "r:id").or_else(|| attr(&s, "id"));
            if let Some((_, part)) = id.and_then(|id| rels.iter().find(|(i, _)| *i == id)) {
                out.push(Sheet {
                    name,
                    part: part.clone(),
                    hidden,
                });
            }
        }
    }
    Ok(out)
}

/// The shared string table (`t` text of each `si`, phonetic runs left out).
fn shared_strings(xml: &str) -> Result<Vec<String>, String> {
    let mut x = Xml::new(xml);
    let mut out = Vec::new();
    let (mut cur, mut in_t, mut phonetic) = (String::new(), false, 0usize);
    while let Some(t) = x.next()? {
        match t {
            Tok::Start(s) => match local(&s) {
                "si" => cur.clear(),
                "t" => in_t = true,
                "rPh" => phonetic += 1,
                _ => {}
            },
            Tok::End(n) => match n.as_str() {
                "si" => out.push(std::mem::take(&mut cur)),
                "t" => in_t = false,
                "rPh" => phonetic = phonetic.saturating_sub(1),
                _ => {}
            },
            Tok::Text(t) => {
                if in_t && phonetic == 0 {
                    cur.push_str(&t);
                }
            }
        }
    }
    Ok(out)
}

/// For each cell style (`cellXfs` index), whether it shows a date or time.
fn date_styles(xml: &str) -> Result<Vec<bool>, String> {
    let mut x = Xml::new(xml);
    let mut custom: HashMap<u32, bool> = HashMap::new();
    let mut out = Vec::new();
    let mut in_xfs = false;
    while let Some(t) = x.next()? {
        match t {
            Tok::Start(s) => match local(&s) {
                "numFmt" => {
                    if let (Some(id), Some(code)) = (
                        attr(&s, "numFmtId").and_then(|v| v.parse().ok()),
                        attr(&s, "formatCode"),
                    ) {
                        custom.insert(id, is_date_format(&code));
                    }
                }
                "cellXfs" => in_xfs = true,
                "xf" if in_xfs => {
                    let id: u32 = attr(&s, "numFmtId")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    out.push(
                        custom
                            .get(&id)
                            .copied()
                            .unwrap_or(matches!(id, 14..=22 | 27..=36 | 45..=47 | 50..=58)),
                    );
                }
                _ => {}
            },
            Tok::End(n) if n == "cellXfs" => in_xfs = false,
            _ => {}
        }
    }
    Ok(out)
}

/// Whether a number format shows a date or time: a `y`, `d`, `h` or `s`
/// outside quoted text and `[...]` sections (colours, locales).
fn is_date_format(code: &str) -> bool {
    let (mut quoted, mut bracket, mut escaped) = (false, false, false);
    for c in code.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '[' if !quoted => bracket = true,
            ']' if !quoted => bracket = false,
            'y' | 'Y' | 'd' | 'D' | 'h' | 'H' | 's' | 'S' if !quoted && !bracket => return true,
            _ => {}
        }
    }
    false
}

struct Cells<'a> {
    strings: &'a [String],
    dates: &'a [bool],
}

impl Cells<'_> {
    /// The sheet's rows, each cell in its column; `true` if cut at the budget.
    fn rows(&self, xml: &str, budget: &mut usize) -> Result<(Vec<Vec<String>>, bool), String> {
        let mut x = Xml::new(xml);
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row: Vec<String> = Vec::new();
        let mut cell: Option<(usize, Option<String>, Option<usize>)> = None;
        let (mut value, mut in_v, mut in_is_t) = (String::new(), false, false);
        while let Some(t) = x.next()? {
            match t {
                Tok::Start(s) => match local(&s) {
                    "row" => row.clear(),
                    "c" => {
                        let col = attr(&s, "r").and_then(|r| column(&r)).unwrap_or(row.len());
                        let style = attr(&s, "s").and_then(|v| v.parse().ok());
                        cell = Some((col, attr(&s, "t"), style));
                        value.clear();
                    }
                    "v" => in_v = true,
                    "t" => in_is_t = true,
                    _ => {}
                },
                Tok::End(n) => match n.as_str() {
                    "v" => in_v = false,
                    "t" => in_is_t = false,
                    "c" => {
                        let Some((col, ty, style)) = cell.take() else {
                            continue;
                        };
                        let shown = self.show(&value, ty.as_deref(), style);
                        if shown.is_empty() || col >= MAX_COLUMNS {
                            continue;
                        }
                        if *budget == 0 {
                            rows.push(std::mem::take(&mut row));
                            return Ok((rows, true));
                        }
                        *budget -= 1;
                        if row.len() <= col {
                            row.resize(col + 1, String::new());
                        }
                        row[col] = shown;
                    }
                    "row" => rows.push(std::mem::take(&mut row)),
                    _ => {}
                },
                Tok::Text(t) => {
                    if cell.is_some() && (in_v || in_is_t) {
                        value.push_str(&t);
                    }
                }
            }
        }
        Ok((rows, false))
    }

    fn show(&self, v: &str, ty: Option<&str>, style: Option<usize>) -> String {
        let v = v.trim();
        match ty {
            Some("s") => v
                .parse::<usize>()
                .ok()
                .and_then(|i| self.strings.get(i))
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            Some("b") => (if v == "1" { "TRUE" } else { "FALSE" }).into(),
            Some("str" | "inlineStr" | "e" | "d") => v.to_string(),
            _ => {
                let Ok(x) = v.parse::<f64>() else {
                    return v.to_string();
                };
                if style.and_then(|s| self.dates.get(s)).copied() == Some(true) {
                    if let Some(d) = serial_date(x) {
                        return d;
                    }
                }
                number(x)
            }
        }
    }
}

/// A column index from a cell reference (`C7` → 2).
fn column(r: &str) -> Option<usize> {
    let mut c = 0usize;
    let mut any = false;
    for b in r.bytes() {
        if b.is_ascii_uppercase() {
            c = c.checked_mul(26)?.checked_add((b - b'A' + 1) as usize)?;
            any = true;
        } else {
            break;
        }
    }
    (any && c <= MAX_COLUMNS).then(|| c - 1)
}

/// A number as a spreadsheet shows it: no binary noise (`0.1 + 0.2`).
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let s = format!("{:.10}", x);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An Excel serial date (days since 1899-12-30) as `YYYY-MM-DD`, with the
/// time when there is one (`HH:MM`), or the time alone below one day.
fn serial_date(x: f64) -> Option<String> {
    if !(0.0..2_958_466.0).contains(&x) {
        return None;
    }
    let days = x.floor() as i64;
    let secs = ((x - x.floor()) * 86_400.0).round() as i64;
    let (h, m) = (secs / 3600 % 24, secs / 60 % 60);
    if days == 0 {
        return Some(format!("{h:02}:{m:02}"));
    }
    let (y, mo, d) = civil(days - 25_569);
    Some(if secs == 0 {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
    })
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_shown() {
        assert_eq!(serial_date(46_357.0).as_deref(), Some("2026-12-01"));
        assert_eq!(serial_date(46_357.5).as_deref(), Some("2026-12-01 12:00"));
        assert_eq!(serial_date(0.25).as_deref(), Some("06:00"));
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(12_000.0), "12000");
        assert_eq!(column("AB12"), Some(27));
        assert_eq!(column("12"), None);
        assert!(is_date_format("dd/mm/yyyy"));
        assert!(is_date_format("[$-407]d. mmmm yyyy"));
        assert!(!is_date_format("#,##0.00 \"days\""));
        assert!(!is_date_format("[Red]0.00"));
    }

    #[test]
    fn cells_in_their_columns() {
        let strings = vec!["Name".to_string(), "Betrag".into(), "Anna".into()];
        let dates = vec![false, true];
        let c = Cells {
            strings: &strings,
            dates: &dates,
        };
        let xml = "<worksheet><sheetData>\
            <row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"C1\" t=\"s\"><v>1</v></c></row>\
            <row r=\"2\"><c r=\"A2\" t=\"s\"><v>2</v></c><c r=\"B2\" s=\"1\"><v>46357</v></c>\
            <c r=\"C2\"><f>SUM(1,2)</f><v>3</v></c></row>\
            <row r=\"3\"><c r=\"A3\" t=\"inlineStr\"><is><t>Ben</t></is></c></row>\
            </sheetData></worksheet>";
        let mut budget = 10;
        let (rows, cut) = c.rows(xml, &mut budget).unwrap();
        assert!(!cut);
        assert_eq!(
            sheet_text("Kosten", &rows),
            "Kosten\n\nName | Betrag\n\nName: Anna; 2026-12-01; Betrag: 3\n\nName: Ben"
        );
        let mut budget = 2;
        let (_, cut) = c.rows(xml, &mut budget).unwrap();
        assert!(cut);
    }
}
