//! Text segmentation shared by the answerer, the citation checker and the
//! injection redactor.

/// Sentences of `text` as byte ranges (trimmed). Single line breaks are
/// read as spaces first (PDF text wraps lines mid-sentence); blank lines
/// still end a sentence. The ranges index `text` itself.
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    use unicode_segmentation::UnicodeSegmentation;
    let b = text.as_bytes();
    let joined: String = text
        .char_indices()
        .map(|(i, c)| {
            let lone = c == '\n'
                && (i == 0 || b[i - 1] != b'\n')
                && b.get(i + 1).is_none_or(|&n| n != b'\n');
            if lone {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (off, s) in joined.split_sentence_bound_indices() {
        let lead = s.len() - s.trim_start().len();
        let t = s.trim();
        if t.is_empty() {
            continue;
        }
        let span = (off + lead, off + lead + t.len());
        // A German ordinal ("am 30. November", "im 3. Stock") is no
        // sentence end: the rules of UAX #29 split there, so join it back
        // when the next sentence follows on the same line.
        match out.last_mut() {
            Some(prev)
                if (ends_with_ordinal(&joined[prev.0..prev.1])
                    || ends_with_initial(&joined[prev.0..prev.1])
                    || ends_with_title(&joined[prev.0..prev.1]))
                    && joined[prev.1..span.0].chars().all(|c| c == ' ') =>
            {
                prev.1 = span.1
            }
            _ => out.push(span),
        }
    }
    out
}

/// Whether `s` ends in a single letter and a full stop after a space, a
/// dot or its start: an abbreviation or an initial ("z. B.", "e.g.",
/// "J. Berg"), no sentence end.
fn ends_with_initial(s: &str) -> bool {
    let Some(head) = s.strip_suffix('.') else {
        return false;
    };
    let mut rev = head.chars().rev();
    matches!(
        (rev.next(), rev.next()),
        (Some(l), None | Some(' ' | '.' | '(')) if l.is_alphabetic()
    )
}

/// Titles written before a name, in English and German: a full stop after
/// one ends no sentence ("Our managing director is Dr. Henrike Sander").
/// Only words that seldom end a sentence (not "No.", "etc.", "Jr."); "St."
/// as a street's abbreviation can, and such a sentence then runs on into
/// the next one.
const TITLES: &[&str] = &[
    "Dr", "Prof", "Mr", "Mrs", "Ms", "Messrs", "Hr", "Hrn", "Dipl", "Ing", "St", "Sr",
];

/// Whether `s` ends in one of the [`TITLES`] and a full stop, after a space,
/// a bracket, a hyphen ("Dr.-Ing.") or its start.
fn ends_with_title(s: &str) -> bool {
    let Some(head) = s.strip_suffix('.') else {
        return false;
    };
    let word = head
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '.' | ',' | '-'))
        .next()
        .unwrap_or(head);
    TITLES.contains(&word)
}

/// Whether `s` ends in a number of one or two digits and a full stop,
/// after a space or at its start ("zum 30.", "1.").
fn ends_with_ordinal(s: &str) -> bool {
    let Some(head) = s.strip_suffix('.') else {
        return false;
    };
    let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let before = head[..head.len() - digits].chars().next_back();
    (1..=2).contains(&digits) && before.is_none_or(char::is_whitespace)
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fills `buf` from the system's randomness (`/dev/urandom`), or says why
/// it could not. Callers decide what missing randomness means: refuse (keys,
/// sign-in secrets) or fall back (markers that only need to be unguessable
/// to documents).
pub fn system_random(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A note for text read by OCR (`read by OCR, confidence 94 %`), empty
/// for text the file carried.
pub fn ocr_note(confidence: Option<f32>) -> String {
    confidence
        .map(|c| format!(", read by OCR (confidence {c:.0} %)"))
        .unwrap_or_default()
}

/// A page reference a person can follow in a document at `path`: slides
/// and sheets are the "pages" of presentations and spreadsheets.
pub fn page_label(path: &str, page: u32) -> String {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let word = match ext.as_deref() {
        Some("pptx" | "odp") => "slide",
        Some("xlsx" | "ods") => "sheet",
        _ => "page",
    };
    format!("{word} {page}")
}

/// German or English: the language answers are written in (that of the
/// question), and the one the retriever compares with its nearest chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English.
    English,
    /// German.
    German,
}

/// How sure letter trigrams must be to tell a short text's language
/// ([`Language::told`]; chosen on the manual pages' training split).
const TRIGRAM_CONFIDENCE: f64 = 0.5;

const DE_WORDS: &[&str] = &[
    "der", "die", "das", "und", "ist", "nicht", "wie", "wer", "was", "wann", "wo", "warum", "ich",
    "sie", "mit", "für", "über", "auf", "ein", "eine", "den", "dem", "des", "im", "zu", "von",
    "bei", "darf", "muss", "kann", "welche", "welcher", "gibt", "es", "sind", "werden",
];
const EN_WORDS: &[&str] = &[
    "the", "and", "is", "not", "how", "who", "what", "when", "where", "why", "i", "you", "with",
    "for", "about", "on", "a", "an", "of", "to", "in", "at", "may", "must", "can", "which",
    "there", "are", "be", "do", "does",
];

impl Language {
    /// Whether `word` (lower case) is one of the function words this
    /// language is told by ("wer", "die"; "who", "the").
    pub fn is_function_word(self, word: &str) -> bool {
        match self {
            Language::German => DE_WORDS.contains(&word),
            Language::English => EN_WORDS.contains(&word),
        }
    }

    /// The ISO 639-1 code ("de", "en"), as benchmark sets name languages.
    pub fn code(self) -> &'static str {
        match self {
            Language::German => "de",
            Language::English => "en",
        }
    }

    /// German or English, by function words and German letters, else by
    /// letter trigrams ([`Language::told`]); English when nothing tells.
    pub fn detect(text: &str) -> Language {
        Language::told(text).unwrap_or(Language::English)
    }

    /// The language of a short text such as a question: by its function
    /// words and German letters ([`Language::of_question`]), and where they
    /// do not tell ("Dateien zeilenweise vergleichen", "change group
    /// ownership": a third of the manual pages' one-line descriptions) by
    /// letter trigrams between German and English only, when confident and
    /// the text has two words or more.
    /// On the training split of Debian's manual pages
    /// (`bench/multilingual-man/`) trigrams told 60 of the 99 such lines
    /// with confidence above 0.5, one wrongly ("systemd unit generators" as
    /// German); at 0.2 they told 78, 7 wrongly. Costs tens of µs, and needs
    /// no dictionary, so a question never waits for one to be read.
    pub fn told(text: &str) -> Option<Language> {
        Language::of_question(text).or_else(|| {
            // One word is a keyword search ("Rechnung", "VPN"): searched
            // as written, whatever its letters look like.
            let words = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().any(char::is_alphabetic))
                .count();
            if words < 2 {
                return None;
            }
            let detector =
                whatlang::Detector::with_allowlist(vec![whatlang::Lang::Deu, whatlang::Lang::Eng]);
            match detector.detect(text) {
                Some(i) if i.confidence() > TRIGRAM_CONFIDENCE => match i.lang() {
                    whatlang::Lang::Deu => Some(Language::German),
                    _ => Some(Language::English),
                },
                _ => None,
            }
        })
    }

    /// The language of a short text such as a question, by its function
    /// words and German letters (statistics over letter trigrams misread
    /// short questions); `None` when neither side has more evidence
    /// ("VPN Zugang", "GDPR").
    pub fn of_question(text: &str) -> Option<Language> {
        let lower = text.to_lowercase();
        let mut de = lower
            .chars()
            .filter(|c| matches!(c, 'ä' | 'ö' | 'ü' | 'ß'))
            .count() as i32
            * 2;
        let mut en = 0;
        for w in lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            if DE_WORDS.contains(&w) {
                de += 1;
            }
            if EN_WORDS.contains(&w) {
                en += 1;
            }
        }
        match de.cmp(&en) {
            std::cmp::Ordering::Greater => Some(Language::German),
            std::cmp::Ordering::Less => Some(Language::English),
            std::cmp::Ordering::Equal => None,
        }
    }

    /// The language's name in English (for the system prompt).
    pub fn name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::German => "German",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{sentence_spans, Language};

    fn sentences(t: &str) -> Vec<&str> {
        sentence_spans(t)
            .into_iter()
            .map(|(a, b)| &t[a..b])
            .collect()
    }

    #[test]
    fn ordinals_do_not_end_sentences() {
        assert_eq!(
            sentences(
                "Zwei Geräte müssen bis zum 30. November 2026 getauscht werden. Danach nicht."
            ),
            vec![
                "Zwei Geräte müssen bis zum 30. November 2026 getauscht werden.",
                "Danach nicht."
            ]
        );
        assert_eq!(
            sentences("1. Erster Punkt.\n\n2. Zweiter."),
            vec!["1. Erster Punkt.", "2. Zweiter."]
        );
        // A year or an amount is not an ordinal.
        assert_eq!(
            sentences("Es war 2026. Dann kam mehr."),
            vec!["Es war 2026.", "Dann kam mehr."]
        );
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        assert_eq!(
            sentences("Mittelklasse (z. B. Kombi) für 650 EUR. Sonst nichts."),
            vec!["Mittelklasse (z. B. Kombi) für 650 EUR.", "Sonst nichts."]
        );
        assert_eq!(
            sentences("Ask J. Berg, e.g. by mail. Then wait."),
            vec!["Ask J. Berg, e.g. by mail.", "Then wait."]
        );
        assert_eq!(
            sentences("We need a plan. Go."),
            vec!["We need a plan.", "Go."]
        );
        // Titles before a name; a title-like word ending a sentence in
        // lower case ("the doctor.") is a sentence end as before.
        assert_eq!(
            sentences(
                "Our managing director is Dr. Henrike Sander; the CFO is\nProf. Dr.-Ing. Tobias Brandt. Ask Mr. Lee. Call the dr. Then go."
            ),
            vec![
                "Our managing director is Dr. Henrike Sander; the CFO is\nProf. Dr.-Ing. Tobias Brandt.",
                "Ask Mr. Lee.",
                "Call the dr.",
                "Then go."
            ]
        );
    }

    #[test]
    fn short_questions_by_their_function_words() {
        for (q, want) in [
            ("Wer bekommt ein Diensthandy?", Some(Language::German)),
            (
                "Wo ist der Sammelplatz bei Feueralarm?",
                Some(Language::German),
            ),
            (
                "Reisekostenrichtlinie Hotel München",
                Some(Language::German),
            ),
            (
                "Who approves travel above 500 EUR?",
                Some(Language::English),
            ),
            (
                "How long may I leave my car at the charger?",
                Some(Language::English),
            ),
            ("VPN Zugang", None),
            ("GDPR", None),
        ] {
            assert_eq!(Language::of_question(q), want, "{q}");
        }
        assert_eq!(Language::detect("GDPR"), Language::English);
        // Without function words, letter trigrams tell when they are sure.
        for (q, want) in [
            ("Dateien zeilenweise vergleichen", Some(Language::German)),
            (
                "Netzwerkschnittstellen konfigurieren",
                Some(Language::German),
            ),
            ("manage locks from shell scripts", Some(Language::English)),
            // Not sure: left untold, as before.
            ("CPUs konfigurieren", None),
            ("list directory contents", None),
            ("GDPR", None),
            ("VPN", None),
            // One word is a keyword, searched as written.
            ("Rechnung", None),
            ("Netzwerkschnittstellen", None),
        ] {
            assert_eq!(Language::of_question(q), None, "{q}");
            assert_eq!(Language::told(q), want, "{q}");
        }
        assert_eq!(Language::told("Wer genehmigt?"), Some(Language::German));
    }
}
