//! The offline default: no model, no network. Picks the sentences of the
//! sources that share the most (weighted) words with the question, keeps
//! their order of relevance, and cites each one. It cannot translate or
//! paraphrase, and it never follows instructions in sources: it only quotes.
//! Asked across languages, it reads the sources with the dictionary's
//! translation of the question's words that the search used, and quotes
//! the sentences in their own language.

use super::prompt::{content_words, sentence_spans, Language};
use super::provider::{ChatRequest, Completion, Provider, ProviderError};
use crate::config::Locality;
use crate::retrieve::translate::Held;
use async_trait::async_trait;
use tokio::sync::mpsc::UnboundedSender;

/// The built-in answerer: quotes the source sentences that best match the question, with their citations; offline and deterministic.
pub struct Extractive {
    /// Sentences in the answer at most.
    pub max_sentences: usize,
}

impl Default for Extractive {
    fn default() -> Self {
        Extractive { max_sentences: 3 }
    }
}

/// What the answer says when nothing matches.
pub fn nothing_found(lang: Language) -> &'static str {
    match lang {
        Language::German => {
            "In den Dokumenten, die Sie sehen dürfen, habe ich dazu nichts gefunden."
        }
        Language::English => "I found nothing about this in the documents you may see.",
    }
}

struct Candidate<'a> {
    source: usize,
    order: usize,
    text: &'a str,
    score: f32,
}

/// Scores sentences against the question; used by this provider and by the
/// citation checker (to find the best supporting sentence of a source).
pub fn sentence_score(question_words: &[String], sentence: &str) -> f32 {
    let words = content_words(sentence);
    if words.is_empty() {
        return 0.0;
    }
    let mut score = 0.0;
    let mut matched = 0;
    let mut distinct: Vec<&String> = question_words.iter().collect();
    distinct.dedup();
    for q in &distinct {
        if words.iter().any(|w| same_word(w, q)) {
            matched += 1;
            // Longer words say more than short ones.
            score += (q.chars().count() as f32).min(10.0).sqrt();
        }
    }
    // One shared word out of several is chance, not an answer.
    let needed = if distinct.len() >= 3 { 2 } else { 1 };
    if matched < needed {
        return 0.0;
    }
    // Prefer sentences that are about the question, not long lists that mention it.
    score / (1.0 + (words.len() as f32 / 25.0))
}

/// Letters from which a question word shared with a sentence is not chance
/// on its own: a German compound or a technical term ("Hotelobergrenze",
/// "Verpflegungsmehraufwand"). "Wie hoch ist die Hotelobergrenze auf
/// Dienstreisen?" shares only "Hotelobergrenze" with the sentence that
/// answers it, and two of three words were needed, so the offline answerer
/// found nothing although the search put that page among the first two.
const LONG_WORD: usize = 12;

/// What sharing question word `q` counts towards the two words a sentence
/// must share with a question of three or more, when no sentence shares two
/// (the answerer's second look; the citation checker never counts so): two
/// for a long word the sentence holds `whole` (not only a word with its
/// stem: "Hotels" shares a stem with "Hotelobergrenze"; nor a translation
/// of it, see [`TRANSLATED_MATCH`]).
fn shared_counts(q: &str, whole: bool) -> usize {
    if whole && q.chars().count() >= LONG_WORD {
        2
    } else {
        1
    }
}

/// What a question word found only through its translation counts, against
/// the word itself: a dictionary sense is evidence, but weaker ("budget" in
/// an English sentence for "Leasingbudget"), so that a sentence holding the
/// question's own words stays ahead of one that merely shares a translated
/// part.
const TRANSLATED_MATCH: f32 = 0.5;

/// What a question word counts when only the sentence before holds it (the
/// section's heading, or the sentence that names what this one is about),
/// against the sentence holding it itself: context, not the answer.
const CONTEXT_MATCH: f32 = 0.5;

/// How a sentence holds a question word.
#[derive(Clone, Copy)]
struct Hold {
    /// 1 the word itself or a whole translation of it ([`Held::Whole`]),
    /// [`TRANSLATED_MATCH`] a word of one of its senses, [`CONTEXT_MATCH`]
    /// when only the sentence before holds the word; 0 not.
    strength: f32,
    /// Held by the sentence itself, not by the one before.
    own: bool,
    /// The question's word as written (not a translation): what lets a
    /// sentence borrow the one before it, and a long word count two. A
    /// translation, however whole, stays one dictionary reading among
    /// several ("Dienstreisen" is "official trips", and also business trips).
    written: bool,
}

impl Hold {
    /// Held at full strength by the sentence itself: as written, or as a
    /// whole translation.
    fn full(self) -> bool {
        self.own && self.strength >= 1.0
    }
}

/// How rare a question word is among the candidate sentences: among those
/// that hold it at all (through any dictionary sense too), and among those
/// that hold it as written or as a whole translation. Without a dictionary
/// the two are the same. A word with many senses is found through one of
/// them in many sentences ("Geschäftsführerin": business, office, board,
/// manager …); that says little about the one sentence that names its
/// "managing director", which is weighed by how rare that is.
#[derive(Clone, Copy, Debug)]
struct Rarity {
    any: f32,
    whole: f32,
}

/// Like [`sentence_score`], with a weight per question word (its rarity
/// among the candidate sentences); `found(i)`: how the sentence holds
/// question word `i`; `lenient`: a long word held whole counts two
/// ([`shared_counts`]). A sentence must hold one question word (or a
/// translation of one) itself: the sentence before only adds to one that
/// does. Also says whether the sentence holds a question word itself, not
/// only a translation.
fn weighted_score(
    question_words: &[String],
    weights: &[Rarity],
    words: &[String],
    lenient: bool,
    found: impl Fn(usize) -> Hold,
) -> (f32, bool) {
    let whole = |q: &String| words.contains(q);
    if words.is_empty() {
        return (0.0, false);
    }
    let mut score = 0.0;
    let mut matched = 0;
    let mut own = false;
    let mut itself = false;
    let mut seen: Vec<&String> = Vec::new();
    for (i, (q, w)) in question_words.iter().zip(weights).enumerate() {
        if seen.contains(&q) {
            continue;
        }
        seen.push(q);
        let hold = found(i);
        if hold.strength > 0.0 {
            own |= hold.own;
            itself |= hold.own && hold.written;
            // A translation of a long word counts one (a dictionary sense
            // of "Hotelobergrenze" is "limit", which is chance).
            matched += if lenient && hold.own && hold.written {
                shared_counts(q, whole(q))
            } else {
                1
            };
            let w = if hold.full() { w.whole } else { w.any };
            score += hold.strength * w * (q.chars().count() as f32).min(10.0).sqrt();
        }
    }
    let needed = if seen.len() >= 3 { 2 } else { 1 };
    if !own || matched < needed {
        return (0.0, false);
    }
    (score / (1.0 + (words.len() as f32 / 25.0)), itself)
}

/// Whether a sentence of a source may be quoted: enough letters to say
/// something, and not a Markdown heading alone on its line (that names what
/// follows and is read as the sentence before, never quoted; a heading
/// whose list follows on the next lines is one span with it, and quoted).
fn quotable(t: &str) -> bool {
    let heading = t.starts_with('#') && !t.contains('\n');
    !heading && t.chars().filter(|c| c.is_alphabetic()).count() >= 12
}

/// A sentence that asks: an FAQ's question, a heading put as one. Quoting
/// it answers nothing ("Wie viele Tage darf ich von zu Hause arbeiten?"),
/// however well it matches the question asked.
fn is_question(t: &str) -> bool {
    t.trim_end().ends_with('?')
}

/// Equal, or the same stem (a shared prefix of all but the last two letters
/// of a word of five or more): "approves"/"approval", "Reisen"/"Reise",
/// "Reisen"/"Reisekosten". A stem of three letters is too short to tell
/// from chance beside a longer word, so a five-letter word shares it only
/// with a word at most two letters longer: "hotel"/"hotels", but not
/// "north"/"Nordwind" nor "hotel"/"Hotelobergrenze".
pub fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let n = short.chars().count();
    if n < 5 || (n == 5 && long.chars().count() > n + 2) {
        return false;
    }
    let stem: String = short.chars().take(n - 2).collect();
    long.starts_with(&stem)
}

#[async_trait]
impl Provider for Extractive {
    fn name(&self) -> &str {
        "extractive"
    }

    fn locality(&self) -> Locality {
        Locality::Local
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        deltas: Option<&UnboundedSender<String>>,
    ) -> Result<Completion, ProviderError> {
        let lang = Language::detect(&req.question);
        let q = content_words(&req.question);
        // All sentences first: a question word found in many of them
        // ("meeting" in meeting notes) says less than a rare one ("peak").
        // Each keeps the sentence before it in its source (a heading too,
        // however short), and that sentence's place among them if it is one:
        // "3. Hotels \n Hotels are booked through the travel portal." tells
        // what "The nightly limit is 140 EUR" limits.
        let mut all: Vec<(usize, usize, &str)> = Vec::new(); // (rank, n, text)
        let mut before: Vec<Option<(&str, Option<usize>)>> = Vec::new();
        // What is quoted for each sentence (its order and text): itself, or
        // for a question the source asks itself (an FAQ's) the sentence
        // after it, which answers it; a question with no answer after it
        // has nothing to quote.
        let mut quoted: Vec<Option<(usize, &str)>> = Vec::new();
        for (rank, s) in req.sources.iter().enumerate() {
            let spans = sentence_spans(&s.text);
            let mut last: Option<(usize, usize)> = None; // (order, index in all)
            for (order, &(a, b)) in spans.iter().enumerate() {
                let t = &s.text[a..b];
                if quotable(t) {
                    before.push(order.checked_sub(1).map(|p| {
                        let at = last.filter(|&(o, _)| o == p).map(|(_, i)| i);
                        (&s.text[spans[p].0..spans[p].1], at)
                    }));
                    quoted.push(if is_question(t) {
                        spans
                            .get(order + 1)
                            .map(|&(na, nb)| (order + 1, &s.text[na..nb]))
                            .filter(|&(_, next)| quotable(next) && !is_question(next))
                    } else {
                        Some((order, t))
                    });
                    last = Some((order, all.len()));
                    all.push((rank, s.n, t));
                }
            }
        }
        let words: Vec<Vec<String>> = all.iter().map(|x| content_words(x.2)).collect();
        let context: Vec<Vec<String>> = before
            .iter()
            .map(|b| b.map(|(t, _)| content_words(t)).unwrap_or_default())
            .collect();
        // Asked across languages (the search translated the question), a
        // sentence holds a question word if it holds the word or one of its
        // translations: an English question is answered from a German page.
        let senses = req.senses.as_deref().filter(|s| !s.is_empty());
        // A question word that text in the other language holds as written
        // is a name ("Nordwind" in the English pages of a German company),
        // not a word to translate: Ding's "north wind" would find it in
        // every sentence about the North Sea.
        // (Each source's language, where its words tell it, is read only
        // then.)
        let other: Vec<bool> = match senses {
            Some(_) => req
                .sources
                .iter()
                .map(|s| Language::told(&s.text).is_some_and(|l| l != lang))
                .collect(),
            None => Vec::new(),
        };
        let name: Vec<bool> = q
            .iter()
            .map(|w| {
                all.iter().zip(&words).any(|(&(rank, _, _), ws)| {
                    other.get(rank).copied().unwrap_or(false) && ws.iter().any(|x| same_word(x, w))
                })
            })
            .collect();
        let terms: Vec<Vec<Option<String>>> = match senses {
            Some(s) => words.iter().map(|w| s.terms_of(w)).collect(),
            None => Vec::new(),
        };
        // holds[qi][si]: how sentence si holds question word qi, worked out
        // once for the rarity of the word and the sentence's score.
        let holds: Vec<Vec<Hold>> = q
            .iter()
            .zip(&name)
            .map(|(w, &name)| {
                (0..all.len())
                    .map(|si| {
                        let own = |strength| Hold {
                            strength,
                            own: true,
                            written: false,
                        };
                        if words[si].iter().any(|x| same_word(x, w)) {
                            Hold {
                                written: true,
                                ..own(1.0)
                            }
                        } else if let Some(held) = senses
                            .filter(|_| !name)
                            .map(|s| s.held(w, &words[si], &terms[si]))
                            .filter(|&h| h != Held::No)
                        {
                            // A whole translation is the word itself in the
                            // other language; one word of a sense is weaker.
                            own(if held == Held::Whole {
                                1.0
                            } else {
                                TRANSLATED_MATCH
                            })
                        } else {
                            // The sentence before lends its words, not
                            // their translations (a sense is weaker
                            // evidence, twice removed is chance).
                            let near = context[si].iter().any(|x| same_word(x, w));
                            Hold {
                                strength: if near { CONTEXT_MATCH } else { 0.0 },
                                own: false,
                                written: false,
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        let idf: Vec<Rarity> = holds
            .iter()
            .map(|row| {
                let idf = |df: usize| (1.0 + all.len() as f32 / (1.0 + df as f32)).ln();
                Rarity {
                    any: idf(row.iter().filter(|h| h.own).count()),
                    whole: idf(row.iter().filter(|h| h.full()).count()),
                }
            })
            .collect();
        // The sentence before lends its words only when it does not answer
        // on its own (a heading, a lead-in): one that does is quoted itself,
        // and the sentence after it gains nothing by repeating it ("Das
        // Leasingbudget beträgt monatlich 650 EUR. Die Abteilungsleitung
        // fährt Kombi.").
        let own = |qi: usize, si: usize| match holds[qi][si] {
            h if h.own => h,
            _ => Hold {
                strength: 0.0,
                own: false,
                written: false,
            },
        };
        let answers_alone: Vec<bool> = (0..all.len())
            .map(|si| weighted_score(&q, &idf, &words[si], false, |qi| own(qi, si)).0 > 0.0)
            .collect();
        // And only to a sentence that holds a question word itself, not
        // merely a translation of one: "Per diems … for trips over eight
        // hours" shares one sense of "Dienstreisen" with "Wie hoch ist die
        // Hotelobergrenze auf Dienstreisen?"; its neighbour must not make it
        // an answer that crowds out the page naming the Hotelobergrenze.
        let lends: Vec<bool> = before
            .iter()
            .enumerate()
            .map(|(si, b)| {
                let itself = holds.iter().any(|row| row[si].own && row[si].written);
                itself && b.is_some_and(|(_, at)| !at.is_some_and(|i| answers_alone[i]))
            })
            .collect();
        // Sentences that share two question words (translations count),
        // if one of them holds a question word itself; if none does, those
        // that hold one long word of it whole; only then those that share
        // translations alone. A German question's own "Hotelobergrenze"
        // says more than two dictionary senses of its words that an
        // approval rule shares with it; but where a sentence holds the
        // question's own words, a translated one still competes with it
        // (the German page answers "company closed between Christmas and
        // New Year" better than the English one that shares "company").
        let scored = |lenient: bool| -> Vec<(Candidate<'_>, bool)> {
            all.iter()
                .enumerate()
                .filter_map(|(si, &(rank, n, _))| {
                    let held = |qi: usize| {
                        if lends[si] {
                            holds[qi][si]
                        } else {
                            own(qi, si)
                        }
                    };
                    let (score, itself) = weighted_score(&q, &idf, &words[si], lenient, held);
                    let score = score * (1.0 - 0.03 * rank as f32);
                    // A question is quoted as its answer, with its score.
                    let (order, t) = quoted[si]?;
                    (score > 0.0).then_some((
                        Candidate {
                            source: n,
                            order,
                            text: t,
                            score,
                        },
                        itself,
                    ))
                })
                .collect()
        };
        let strict = scored(false);
        let picked_look = if strict.iter().any(|(_, itself)| *itself) {
            strict
        } else {
            let long: Vec<_> = scored(true)
                .into_iter()
                .filter(|(_, itself)| *itself)
                .collect();
            if long.is_empty() {
                strict
            } else {
                long
            }
        };
        let mut cands: Vec<Candidate<'_>> = picked_look.into_iter().map(|(c, _)| c).collect();
        cands.sort_by(|a, b| b.score.total_cmp(&a.score));
        let best = cands.first().map(|c| c.score).unwrap_or(0.0);
        // Keep sentences reasonably close to the best one.
        let mut picked: Vec<&Candidate<'_>> = cands
            .iter()
            .filter(|c| c.score >= best * 0.5)
            .take(self.max_sentences)
            .collect();
        picked.sort_by_key(|c| (c.source, c.order));
        picked.dedup_by(|a, b| a.text == b.text);
        let text = if picked.is_empty() {
            nothing_found(lang).to_string()
        } else {
            picked
                .iter()
                .map(|c| {
                    let t = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    // The citation goes before the closing punctuation: "… CFO [1]."
                    match t.char_indices().last() {
                        Some((i, p)) if matches!(p, '.' | '!' | '?' | ':' | ';') => {
                            format!("{} [{}]{}", &t[..i], c.source, p)
                        }
                        _ => format!("{t} [{}]", c.source),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        if let Some(tx) = deltas {
            let _ = tx.send(text.clone());
        }
        Ok(Completion {
            text,
            prompt_tokens: 0,
            completion_tokens: 0,
            usage_reported: true,
            model: "extractive".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::provider::SourceText;
    use crate::retrieve::translate::Lexicon;
    use crate::text::Language as Lang;
    use std::sync::Arc;

    const DING: &str = "\
Feuerlöscher {m} | Feuerlöscher {pl} :: fire extinguisher | fire extinguishers
Löscher {m} :: extinguisher
Notausgang {m} :: emergency exit
Feuer {n}; Brand {m} :: fire
austauschen; ersetzen :: to replace
";

    fn ask(question: &str, sources: &[&str], asked: Option<Lang>) -> String {
        ask_with(DING, question, sources, asked)
    }

    /// [`ask`] with the translations of `dictionary`.
    fn ask_with(dictionary: &str, question: &str, sources: &[&str], asked: Option<Lang>) -> String {
        let senses = asked.map(|a| Arc::new(Lexicon::parse(dictionary).senses(question, a)));
        let req = ChatRequest {
            system: String::new(),
            user: String::new(),
            question: question.into(),
            sources: sources
                .iter()
                .enumerate()
                .map(|(i, t)| SourceText {
                    n: i + 1,
                    label: format!("doc{}", i + 1),
                    text: t.to_string(),
                })
                .collect(),
            max_tokens: 200,
            temperature: 0.0,
            senses,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(Extractive::default().complete(&req, None))
            .unwrap()
            .text
    }

    #[test]
    fn one_long_shared_word_answers_but_one_short_one_does_not() {
        let page = "Die Hotelobergrenze liegt bei 140 Euro pro Nacht. \
                    Hotels werden über das Reiseportal gebucht.";
        let a = ask(
            "Wie hoch ist die Hotelobergrenze auf Dienstreisen?",
            &[page],
            None,
        );
        assert!(
            a.contains("Die Hotelobergrenze liegt bei 140 Euro pro Nacht [1]"),
            "{a}"
        );
        assert!(!a.contains("Reiseportal"), "{a}");
        // Where a sentence shares two words, one long word alone is not
        // enough to be quoted beside it.
        let page =
            "Das Leasingbudget beträgt monatlich 650 EUR. Die Abteilungsleitung fährt Kombi.";
        let a = ask(
            "Wie hoch ist das Leasingbudget der Abteilungsleitung monatlich?",
            &[page],
            None,
        );
        assert!(
            a.contains("Das Leasingbudget beträgt monatlich 650 EUR [1]"),
            "{a}"
        );
        assert!(!a.contains("Kombi"), "{a}");
        // A short word alone is still chance.
        let a = ask(
            "Wie hoch ist die Grenze auf Dienstreisen?",
            &["Die Grenze ist offen."],
            None,
        );
        assert_eq!(a, nothing_found(Lang::German));
    }

    /// An FAQ's question mirrors the question asked; its answer is the
    /// sentence after it, and that is what is quoted.
    #[test]
    fn a_question_in_a_source_is_answered_by_the_sentence_after_it() {
        let faq =
            "Homeoffice – häufige Fragen\n\nWie viele Tage darf ich von zu Hause arbeiten?\n\n\
                   Beschäftigte in der Verwaltung können bis zu drei Tage pro Woche mobil \
                   arbeiten. Die Disposition ist davon ausgenommen.\n\n\
                   Welche Ausstattung stellt Nordwind?\n\nJede Person erhält einen Laptop.";
        let a = ask(
            "Wie viele Tage darf ich im Homeoffice arbeiten?",
            &[faq],
            None,
        );
        assert!(
            a.contains("bis zu drei Tage pro Woche mobil arbeiten [1]."),
            "{a}"
        );
        assert!(!a.contains('?'), "a question quoted as the answer: {a}");
        // Even where the answer shares no word with the question.
        let faq = "How many days may I work from home each week?\n\nUp to three, if the team lead agrees.";
        let a = ask("How many days may I work from home?", &[faq], None);
        assert_eq!(a, "Up to three, if the team lead agrees [1].");
        // A question with no answer after it (the source ends, or asks
        // again) is not quoted.
        let survey = "How many days do you work from home each week?\n\n\
                      How many days would you like to work from home each week?";
        let a = ask("How many days may I work from home?", &[survey], None);
        assert_eq!(a, nothing_found(Lang::English));
    }

    #[test]
    fn a_sentence_is_read_with_the_heading_or_sentence_before_it() {
        // The policy as its PDF's text comes out: "3. Hotels" is a heading
        // on its own line, and the sentence that answers names no hotel.
        let policy = "1. Scope\nThis policy covers business travel of all Nordwind employees: \
                      trips to customers,\nbranch offices, trade fairs and training.\n\n\
                      2. Booking\nBook trains and flights through the travel portal. Rail is \
                      the default for trips under\n600 km.\n3. Hotels\nHotels are booked \
                      through the travel portal. The nightly limit is \
                      140 EUR in most\ncities and 190 EUR in Munich.\n\n4. Meals\nPer diems \
                      follow the German tax rules: 14 EUR for trips over\neight hours.";
        let a = ask(
            "What is the hotel limit on business trips?",
            &[policy],
            None,
        );
        assert!(
            a.contains("The nightly limit is 140 EUR in most cities and 190 EUR in Munich [1]."),
            "{a}"
        );
        // A Markdown heading is context, never the answer.
        let a = ask(
            "Where is Nordwind Logistik headquartered?",
            &["# Welcome to Nordwind Logistik\n\nNordwind Logistik GmbH is headquartered in Hamburg, with an office in Bremen."],
            None,
        );
        assert_eq!(
            a,
            "Nordwind Logistik GmbH is headquartered in Hamburg, with an office in Bremen [1]."
        );
        // The words of the sentence before only add to a sentence that
        // holds one of the question's itself: a sentence that follows a
        // match but shares nothing is not quoted.
        let a = ask(
            "Who approves hotel bookings?",
            &["Hotel bookings are approved by the team lead. The weather was fine all week."],
            None,
        );
        assert!(a.contains("approved by the team lead [1]."), "{a}");
        assert!(!a.contains("weather"), "{a}");
    }

    #[test]
    fn the_sentence_before_lends_no_translations_and_only_to_a_sentence_holding_a_word_itself() {
        // The dictionary's senses, as Ding gives them.
        const SENSES: &str = "\
Dienstreise {f} [adm.] | Dienstreisen {pl} :: official trip; trip on official business | official trips; travel on official business
Hotel {n} | Hotels {pl} :: hotel | hotels
Obergrenze {f} :: upper limit; ceiling; cap
";
        // The search's first hits for the question in the demo.
        let en = "3. Hotels\nHotels are booked through the travel portal. The nightly limit \
                  is 140 EUR in most\ncities and 190 EUR in Munich.\n\n4. Meals and per \
                  diems\nPer diems follow the German tax rules: 14 EUR for trips over\neight \
                  hours and 28 EUR for full days away.";
        let de = "## Hotel und Verpflegung\n\nDie Hotelobergrenze liegt bei 140 Euro pro \
                  Nacht, in München bei 190 Euro.";
        let a = ask_with(
            SENSES,
            "Wie hoch ist die Hotelobergrenze auf Dienstreisen?",
            &[en, de],
            Some(Lang::German),
        );
        assert!(
            a.contains(
                "Die Hotelobergrenze liegt bei 140 Euro pro Nacht, in München bei 190 Euro [2]."
            ),
            "{a}"
        );
        assert!(!a.contains("[1]"), "{a}");
    }

    #[test]
    fn a_long_word_of_the_question_itself_outranks_two_translations() {
        const SENSES: &str = "\
Dienstreise {f} | Dienstreisen {pl} :: official trip | official trips
Hotel {n} | Hotels {pl} :: hotel | hotels
Obergrenze {f} :: upper limit; ceiling; cap
";
        let a = ask_with(
            SENSES,
            "Wie hoch ist die Hotelobergrenze auf Dienstreisen?",
            &[
                "Official trips up to a cost cap of 500 EUR are approved by the team lead.",
                "Die Hotelobergrenze liegt bei 140 Euro pro Nacht.",
            ],
            Some(Lang::German),
        );
        assert_eq!(a, "Die Hotelobergrenze liegt bei 140 Euro pro Nacht [2].");
    }

    #[test]
    fn a_whole_translation_outranks_a_name_the_corpus_repeats() {
        // Every page names the company; one sentence holds the question's
        // other word as the dictionary's whole two-word sense of it, others
        // only a word of a sense ("manager", "business").
        const SENSES: &str = "\
Geschäftsführerin {f} :: managing director; manager; business manager; director
Nordwind {m} :: north wind
";
        let a = ask_with(
            SENSES,
            "Wer ist Geschäftsführerin von Nordwind?",
            &[
                "Nordwind Logistik GmbH is a freight forwarder headquartered in Hamburg.",
                "Nordwind employees report their trips to their manager.",
                "Nordwind ships containers to North Sea ports.",
                "Nordwind business units run warehouses in Bremen and Rotterdam.",
                "Our managing director is Dr. Henrike Sander.",
            ],
            Some(Lang::German),
        );
        assert!(
            a.contains("Our managing director is Dr. Henrike Sander [5]."),
            "{a}"
        );
    }

    #[test]
    fn a_word_found_through_many_senses_is_weighed_by_its_whole_translation() {
        // "Geschäftsführerin" reaches every sentence saying "business" or
        // "office" through a sense; the one naming the "managing director"
        // is rare, and outranks a sentence holding only the company's name.
        const SENSES: &str = "\
Geschäftsführerin {f} :: managing director; business manager; office manager
Nordwind {m} :: north wind
";
        let a = ask_with(
            SENSES,
            "Wer ist Geschäftsführerin von Nordwind?",
            &[
                "Nordwind Logistik GmbH is a freight forwarder headquartered in Hamburg.",
                "Nordwind runs warehouses in Bremen.",
                "Nordwind ships containers to Rotterdam.",
                "Travel on business is booked through the portal.",
                "The office opens at eight.",
                "Business partners may give gifts up to 50 EUR.",
                "Invitations must have a clear business purpose.",
                "Our managing director is Dr. Henrike Sander.",
            ],
            Some(Lang::German),
        );
        assert!(
            a.contains("Our managing director is Dr. Henrike Sander [8]."),
            "{a}"
        );
    }

    #[test]
    fn a_word_the_other_languages_text_holds_as_written_is_a_name() {
        // "Nordwind" is the company in its English pages, not "north wind":
        // a sentence about the weather holds no word of the question.
        const SENSES: &str = "\
Nordwind {m} :: north wind
leiten {vt} | leitet :: to head; to lead; to manage | heads; leads; manages
";
        let a = ask_with(
            SENSES,
            "Wer leitet Nordwind?",
            &[
                "A cold north wind heads the weather report for the coast.",
                "Nordwind Logistik GmbH is headed by Dr. Henrike Sander.",
            ],
            Some(Lang::German),
        );
        assert!(!a.contains("north wind"), "{a}");
        assert!(a.contains("Dr. Henrike Sander [2]"), "{a}");
    }

    #[test]
    fn a_translated_sentence_competes_with_one_that_holds_the_questions_words() {
        const SENSES: &str = "\
Weihnachten {n} :: Christmas
Neujahr {n} :: New Year
zwischen {prp} :: between
";
        let a = ask_with(
            SENSES,
            "company closed between Christmas and New Year",
            &[
                "Die Nordwind GmbH schließt ihre Verwaltung zwischen Weihnachten und Neujahr.",
                "Holidays and the company closing days are published every December.",
            ],
            Some(Lang::English),
        );
        assert!(
            a.starts_with(
                "Die Nordwind GmbH schließt ihre Verwaltung zwischen Weihnachten und Neujahr [1]."
            ),
            "{a}"
        );
    }

    #[test]
    fn words_share_a_stem_of_four_letters_or_a_short_one_with_a_near_twin() {
        for (a, b) in [
            ("approves", "approval"),
            ("reisen", "reise"),
            ("reisen", "reisekosten"),
            ("hotel", "hotels"),
            ("closed", "closing"),
        ] {
            assert!(same_word(a, b) && same_word(b, a), "{a} {b}");
        }
        for (a, b) in [
            ("north", "nordwind"),
            ("hotel", "hotelobergrenze"),
            ("trip", "tripod"),
            ("plan", "planet"),
        ] {
            assert!(!same_word(a, b) && !same_word(b, a), "{a} {b}");
        }
    }

    #[test]
    fn an_english_question_is_answered_from_a_german_page_with_the_translation() {
        let page = "Protokoll der Brandschutzbegehung. Die Feuerlöscher in Halle 2 wurden \
                    geprüft; zwei Geräte müssen bis zum 30. November ausgetauscht werden. \
                    Der Notausgang an der Rampe 4 war durch Paletten verstellt.";
        let q = "When do the fire extinguishers have to be replaced?";
        // Without the translation nothing is shared with the page.
        assert_eq!(ask(q, &[page], None), nothing_found(Lang::English));
        let a = ask(q, &[page], Some(Lang::English));
        assert!(a.contains("Die Feuerlöscher in Halle 2"), "{a}");
        assert!(a.contains("[1]"), "{a}");
        assert!(!a.contains("Notausgang"), "{a}");
        // The question's own words count more than their translations: a
        // sentence that holds them is quoted, the German one that shares
        // only translations is not.
        let en = "Fire extinguishers are replaced every ten years.";
        let a = ask(q, &[page, en], Some(Lang::English));
        assert!(
            a.contains("Fire extinguishers are replaced every ten years [2]."),
            "{a}"
        );
        assert!(!a.contains("Halle 2"), "{a}");
    }

    #[test]
    fn a_sentence_with_the_question_s_own_words_outranks_translated_parts() {
        const PARTS: &str = "\
Leasing {n} :: leasing
Budget {n} :: budget
Abteilung {f} :: department
Leitung {f} :: management
";
        let a = ask_with(
            PARTS,
            "Welches Leasingbudget hat die Abteilungsleitung?",
            &[
                "Abteilungsleitung: Leasingbudget pro Monat 650 EUR.",
                "The department budget for cars is set by the board every spring.",
            ],
            Some(Lang::German),
        );
        assert!(a.contains("Leasingbudget pro Monat 650 EUR [1]"), "{a}");
        assert!(!a.contains("[2]"), "{a}");
    }
}
