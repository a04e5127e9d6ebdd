//! Text hidden inside text: base64, base32, base85/ascii85, hex, binary,
//! Morse, escapes, percent-encoding and rot13, each decoded once over the
//! input (linear time) and kept only when it decodes to printable text.

use std::sync::LazyLock;

use regex::Regex;

static B64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/_-]{16,}={0,2}").unwrap_or_else(|e| panic!("{e}")));
static B32: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Z2-7]{16,}=*").unwrap_or_else(|e| panic!("{e}")));
static HEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:[0-9a-f]{2}[ :]?){10,}").unwrap_or_else(|e| panic!("{e}"))
});
static BIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:[01]{8}\s?){4,}").unwrap_or_else(|e| panic!("{e}")));
static B85: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9A-Za-z!#$%&()*+;<=>?@^_`{|}~-]{20,}").unwrap_or_else(|e| panic!("{e}"))
});
static A85: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<~[!-u\s]{10,}~>").unwrap_or_else(|e| panic!("{e}")));
static MORSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[.-]{1,7}(?:\s+(?:/\s+)?[.-]{1,7}){7,}").unwrap_or_else(|e| panic!("{e}"))
});
static ESC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}){4,}").unwrap_or_else(|e| panic!("{e}"))
});
static PCT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,20}){3,}").unwrap_or_else(|e| panic!("{e}"))
});

fn printable(bytes: &[u8]) -> Option<String> {
    let s = String::from_utf8(bytes.to_vec()).ok()?;
    let n = s.chars().count().max(1);
    let ok = s
        .chars()
        .filter(|c| !c.is_control() || c.is_whitespace())
        .count();
    let letters = s.chars().filter(|c| c.is_alphabetic()).count();
    (ok * 100 >= n * 95 && letters * 2 >= n).then_some(s)
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn decode_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            b'=' => break,
            _ => return None,
        } as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn decode_base85(s: &str) -> Option<Vec<u8>> {
    // RFC 1924 alphabet (as Python's base64.b85encode); Z85 uses another order.
    const RFC1924: &[u8] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    const Z85: &[u8] =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    for alphabet in [RFC1924, Z85] {
        let mut out = Vec::new();
        let mut ok = true;
        for chunk in s.as_bytes().chunks(5) {
            let mut acc: u64 = 0;
            for i in 0..5 {
                let c = chunk.get(i).copied().unwrap_or(b'~');
                let Some(v) = alphabet.iter().position(|&a| a == c) else {
                    ok = false;
                    break;
                };
                acc = acc * 85 + v as u64;
            }
            if !ok || acc > u32::MAX as u64 {
                ok = false;
                break;
            }
            let bytes = (acc as u32).to_be_bytes();
            out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1).min(4)]);
        }
        if ok {
            if let Some(t) = printable(&out) {
                return Some(t.into_bytes());
            }
        }
    }
    None
}

pub(super) fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='m' | 'A'..='M' => (c as u8 + 13) as char,
            'n'..='z' | 'N'..='Z' => (c as u8 - 13) as char,
            _ => c,
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Texts hidden in `text` by encoding, decoded (at most a few per kind).
pub fn hidden_payloads(text: &str) -> Vec<String> {
    const MAX: usize = 8;
    let mut out = Vec::new();
    // Unicode tag characters spell ASCII invisibly.
    let tags: String = text
        .chars()
        .filter_map(|c| {
            let u = c as u32;
            (0xE0020..=0xE007E)
                .contains(&u)
                .then(|| char::from_u32(u - 0xE0000))
                .flatten()
        })
        .collect();
    if tags.len() >= 4 {
        out.push(tags);
    }
    for m in B64.find_iter(text).take(MAX) {
        if let Some(t) = decode_base64(m.as_str()).and_then(|b| printable(&b)) {
            out.push(t);
        }
    }
    for m in B32.find_iter(text).take(MAX) {
        if let Some(t) = decode_base32(m.as_str()).and_then(|b| printable(&b)) {
            out.push(t);
        }
    }
    for m in HEX.find_iter(text).take(MAX) {
        let digits: String = m
            .as_str()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let bytes: Vec<u8> = digits
            .as_bytes()
            .chunks(2)
            .filter_map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        if let Some(t) = printable(&bytes) {
            out.push(t);
        }
    }
    for m in BIN.find_iter(text).take(MAX) {
        let bits: Vec<u8> = m
            .as_str()
            .bytes()
            .filter(|b| *b == b'0' || *b == b'1')
            .collect();
        let bytes: Vec<u8> = bits
            .chunks(8)
            .filter(|c| c.len() == 8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | (b - b'0')))
            .collect();
        if let Some(t) = printable(&bytes) {
            out.push(t);
        }
    }
    for m in B85.find_iter(text).take(MAX) {
        let s = m.as_str();
        // Only strings that mix classes like an encoding does.
        let symbols = s.chars().filter(|c| !c.is_ascii_alphanumeric()).count();
        if symbols * 10 >= s.len() {
            if let Some(b) = decode_base85(s) {
                out.push(String::from_utf8_lossy(&b).into_owned());
            }
        }
    }
    for m in PCT.find_iter(text).take(MAX) {
        out.push(percent_decode(m.as_str()));
    }
    for m in A85.find_iter(text).take(MAX) {
        if let Some(t) = decode_ascii85(m.as_str()).and_then(|b| printable(&b)) {
            out.push(t);
        }
    }
    for m in MORSE.find_iter(text).take(MAX) {
        out.push(decode_morse(m.as_str()));
    }
    for m in ESC.find_iter(text).take(MAX) {
        out.push(decode_escapes(m.as_str()));
    }
    out
}

/// Adobe ASCII85 (`<~ … ~>`).
fn decode_ascii85(s: &str) -> Option<Vec<u8>> {
    let inner = s.strip_prefix("<~")?.strip_suffix("~>")?;
    let chars: Vec<u8> = inner.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::new();
    let mut group: Vec<u8> = Vec::with_capacity(5);
    for &c in &chars {
        if c == b'z' && group.is_empty() {
            out.extend_from_slice(&[0, 0, 0, 0]);
            continue;
        }
        if !(b'!'..=b'u').contains(&c) {
            return None;
        }
        group.push(c - b'!');
        if group.len() == 5 {
            let v = group.iter().fold(0u64, |a, &d| a * 85 + d as u64);
            if v > u32::MAX as u64 {
                return None;
            }
            out.extend_from_slice(&(v as u32).to_be_bytes());
            group.clear();
        }
    }
    if !group.is_empty() {
        let n = group.len();
        while group.len() < 5 {
            group.push(84);
        }
        let v = group.iter().fold(0u64, |a, &d| a * 85 + d as u64);
        if v > u32::MAX as u64 {
            return None;
        }
        out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
    }
    Some(out)
}

fn decode_morse(s: &str) -> String {
    const TABLE: [(&str, char); 36] = [
        (".-", 'a'),
        ("-...", 'b'),
        ("-.-.", 'c'),
        ("-..", 'd'),
        (".", 'e'),
        ("..-.", 'f'),
        ("--.", 'g'),
        ("....", 'h'),
        ("..", 'i'),
        (".---", 'j'),
        ("-.-", 'k'),
        (".-..", 'l'),
        ("--", 'm'),
        ("-.", 'n'),
        ("---", 'o'),
        (".--.", 'p'),
        ("--.-", 'q'),
        (".-.", 'r'),
        ("...", 's'),
        ("-", 't'),
        ("..-", 'u'),
        ("...-", 'v'),
        (".--", 'w'),
        ("-..-", 'x'),
        ("-.--", 'y'),
        ("--..", 'z'),
        ("-----", '0'),
        (".----", '1'),
        ("..---", '2'),
        ("...--", '3'),
        ("....-", '4'),
        (".....", '5'),
        ("-....", '6'),
        ("--...", '7'),
        ("---..", '8'),
        ("----.", '9'),
    ];
    s.split('/')
        .map(|word| {
            word.split_whitespace()
                .map(|code| {
                    TABLE
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map(|x| x.1)
                        .unwrap_or('?')
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `\u0049\x67…` escape sequences.
fn decode_escapes(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        let (len, digits) = match b[i + 1] {
            b'u' => (6, 4),
            b'x' => (4, 2),
            _ => (1, 0),
        };
        if digits > 0 && i + len <= b.len() {
            if let Some(c) = std::str::from_utf8(&b[i + 2..i + len])
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
            {
                out.push(c);
            }
        }
        i += len;
    }
    out
}
