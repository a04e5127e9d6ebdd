//! Benchmark datasets: reading `.npy` matrices (the format the pinned GloVe
//! wheel ships) into row-major, unit-length f32 vectors.

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

#[cfg(test)]
mod tests {
    use super::*;

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
