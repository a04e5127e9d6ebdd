//! The normalised views rules match on: NFKC, look-alike letters folded,
//! invisible characters dropped, spaced-out letters joined, leetspeak read.

use unicode_normalization::UnicodeNormalization;

/// Lower-case ASCII view for matching: German umlauts and ß spelled out
/// (ü → ue), other accents dropped (é → e), typographic quotes made plain.
pub fn fold_ascii(norm: &str) -> String {
    let mut out = String::with_capacity(norm.len());
    for c in norm.chars() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            '’' | '‘' | '`' => out.push('\''),
            c if c.is_ascii() => out.push(c),
            c => {
                for d in c.nfkd() {
                    if d.is_ascii() || !unicode_normalization::char::is_combining_mark(d) {
                        out.push(d);
                    }
                }
            }
        }
    }
    out
}

/// Latin look-alikes from Cyrillic and Greek, used to hide keywords.
fn fold_confusable(c: char) -> char {
    match c {
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ӏ' => 'l',
        'һ' => 'h',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ɡ' => 'g',
        'ο' => 'o',
        'α' => 'a',
        'ε' => 'e',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'А' => 'a',
        'Е' => 'e',
        'О' => 'o',
        'Р' => 'p',
        'С' => 'c',
        'Т' => 't',
        'Х' => 'x',
        'В' => 'b',
        'Н' => 'h',
        'К' => 'k',
        'М' => 'm',
        'І' => 'i',
        _ => c,
    }
}

/// Digits and symbols read as letters inside words ("1gn0r3").
fn deleet(word: &str) -> Option<String> {
    let word = word.trim_end_matches(['.', ',', ';', ':', '!', '?']);
    // Only tokens made of letters and leet characters (not e-mail addresses,
    // URLs, amounts or codes).
    if !word
        .chars()
        .all(|c| c.is_alphabetic() || "013457@$".contains(c))
    {
        return None;
    }
    let has_alpha = word.chars().filter(|c| c.is_alphabetic()).count() >= 2;
    let has_leet = word.chars().any(|c| "013457@$".contains(c));
    if !(has_alpha && has_leet) {
        return None;
    }
    Some(
        word.chars()
            .map(|c| match c {
                '0' => 'o',
                '1' => 'i',
                '3' => 'e',
                '4' => 'a',
                '5' => 's',
                '7' => 't',
                '@' => 'a',
                '$' => 's',
                _ => c,
            })
            .collect(),
    )
}

/// Normalises for matching: NFKC, look-alikes folded, lower case, invisible
/// characters dropped, spaced-out letters ("i g n o r e", "i.g.n.o.r.e")
/// joined; with `leet`, words mixing letters and digits are read as letters
/// ("1gn0r3" → "ignore").
pub fn normalize(text: &str, leet: bool) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.nfkc() {
        let c = fold_confusable(c);
        if matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
            || ('\u{E0000}'..='\u{E007F}').contains(&c)
        {
            continue;
        }
        for l in c.to_lowercase() {
            s.push(l);
        }
    }
    // Join runs of single letters separated by one space or dot.
    let tokens: Vec<&str> = s.split(' ').collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < tokens.len() {
        let single = |t: &str| {
            let t = t.trim_end_matches('.');
            t.chars().count() == 1 && t.chars().all(char::is_alphabetic)
        };
        if single(tokens[i]) {
            let mut j = i;
            while j < tokens.len() && single(tokens[j]) {
                j += 1;
            }
            if j - i >= 4 {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.extend(tokens[i..j].iter().map(|t| t.trim_end_matches('.')));
                i = j;
                continue;
            }
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let t = tokens[i];
        let dotted = t.len() >= 7
            && t.split('.')
                .filter(|p| !p.is_empty())
                .all(|p| p.chars().count() == 1);
        if dotted {
            out.extend(t.split('.'));
        } else {
            match deleet(t).filter(|_| leet) {
                Some(d) => out.push_str(&d),
                None => out.push_str(t),
            }
        }
        i += 1;
    }
    out
}
