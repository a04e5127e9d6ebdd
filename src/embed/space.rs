//! Where a model's passage vectors are placed in the index.
//!
//! A multilingual model's vectors carry the language they were written in
//! besides what they say: every German passage shares a component that no
//! English one has. A German question then lands nearer every German chunk
//! than the English chunk that answers it, and a question asked across
//! languages finds the wrong document (e5-small, vectors alone, `hort bench
//! quality`: on hort's German/English test split a German question found
//! its English document first 20 % of the time, an English one its German
//! document 40 %). Subtracting each language's mean passage vector before
//! the chunk is stored takes much of that component away (the mean-centring
//! of Libovický et al., "On the language neutrality of pre-trained
//! multilingual representations", 2020): 70 % and 76 % there, with
//! same-language questions within 0.005 nDCG@10; on Debian's manual pages
//! 6 % → 15 % and 29 % → 47 % (docs/multilingual.md).
//!
//! Only stored passages move; questions are embedded as before, so the
//! query cache, the injection head (which reads the raw passage vectors)
//! and every question path are untouched. Ranking a question `q` over a
//! chunk `d` of language `L` is then `q·(d − μ_L) / |d − μ_L|`: per
//! language, an offset as large as the question leans to it.
//!
//! The means are fixed per model, computed once by `hort bench space` from
//! training corpora and shipped beside the model's pins, so that an index's
//! vectors never move after they are written (means taken from the index
//! itself would change as it grows). An index records the space in its
//! embedder id (`multilingual-e5-small-q4/1+centred-de-en/1`); an index
//! written before keeps its raw vectors and stays readable and writable as
//! it is.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Passages averaged per language code.
pub type Counts = Vec<(String, usize)>;

/// The mean passage vector per language code.
pub type Means = Vec<(String, Vec<f32>)>;

/// The separator between a model's id and its space in an index's record.
const SEP: char = '+';

/// A model's language means: subtracted from a stored passage of that
/// language, then the vector is scaled back to unit length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// The file format (1).
    pub format: u32,
    /// The model whose passages the means were taken over.
    pub model: String,
    /// The name an index records (changes whenever the means do).
    pub tag: String,
    /// Where the means come from.
    pub sources: Vec<String>,
    /// Passages averaged per language.
    pub counts: Counts,
    /// Mean passage vector per language code (`de`, `en`).
    pub means: Means,
}

/// The file a space is written to and read from.
pub const FORMAT: u32 = 1;

static E5: LazyLock<Option<Space>> = LazyLock::new(|| {
    serde_json::from_str(include_str!(
        "../../models/multilingual-e5-small/space.json"
    ))
    .ok()
});

/// The spaces hort ships, by model id.
fn shipped() -> impl Iterator<Item = &'static Space> {
    E5.as_ref().into_iter()
}

impl Space {
    /// The space of model `model_id`, if it has one.
    pub fn for_model(model_id: &str) -> Option<&'static Space> {
        shipped().find(|s| s.model == model_id)
    }

    /// The space of vectors an index recorded as written by `recorded`
    /// (`None`: the model's raw vectors).
    pub fn of_index(recorded: &str) -> Option<&'static Space> {
        let (model, tag) = recorded.split_once(SEP)?;
        Space::named(model, tag)
    }

    /// The space `tag` of model `model_id`, if this build ships it.
    pub fn named(model_id: &str, tag: &str) -> Option<&'static Space> {
        shipped().find(|s| s.model == model_id && s.tag == tag)
    }

    /// Means averaged over languages: where a chunk's language is neither
    /// (or cannot be told) it is centred on this, so that its score stays
    /// comparable with the centred chunks around it.
    fn mean_of(&self, lang: Option<&str>) -> Cow<'_, [f32]> {
        if let Some(m) = lang.and_then(|l| self.means.iter().find(|(c, _)| c == l)) {
            return Cow::Borrowed(&m.1);
        }
        let n = self.means.len().max(1) as f32;
        let dim = self.means.first().map_or(0, |m| m.1.len());
        let mut out = vec![0.0; dim];
        for (_, m) in &self.means {
            for (o, x) in out.iter_mut().zip(m) {
                *o += x / n;
            }
        }
        Cow::Owned(out)
    }

    /// Places a passage vector of language `lang` (`"de"`, `"en"`, or
    /// another / unknown) in this space. A vector of another length than
    /// the means is left as it is (the index refuses it anyway).
    pub fn place(&self, v: &mut [f32], lang: Option<&str>) {
        let mean = self.mean_of(lang);
        if mean.len() != v.len() {
            return;
        }
        for (x, m) in v.iter_mut().zip(mean.iter()) {
            *x -= m;
        }
        super::normalize(v);
    }

    /// Checks the means are usable: the format known, every mean finite and
    /// of one length.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("space format {}, hort reads {FORMAT}", self.format));
        }
        let dim = self.means.first().map_or(0, |m| m.1.len());
        if dim == 0 || self.tag.is_empty() || self.tag.contains(SEP) {
            return Err("a space needs a tag without '+' and at least one mean".into());
        }
        if self
            .means
            .iter()
            .any(|(_, m)| m.len() != dim || m.iter().any(|x| !x.is_finite()))
        {
            return Err("every mean must have the same length and finite values".into());
        }
        Ok(())
    }
}

/// What an index built by model `model_id` records: the id, and the
/// model's space if it has one.
pub fn index_id(model_id: &str) -> String {
    match Space::for_model(model_id) {
        Some(s) => format!("{model_id}{SEP}{}", s.tag),
        None => model_id.to_string(),
    }
}

/// The mean passage vector per language of `vectors` (each with its
/// language code; others skipped), as [`Space::means`] holds them.
pub fn means_of<'a>(vectors: impl IntoIterator<Item = (&'a str, &'a [f32])>) -> (Counts, Means) {
    let mut sums: Vec<(String, usize, Vec<f64>)> = Vec::new();
    for (lang, v) in vectors {
        let i = match sums.iter().position(|s| s.0 == lang) {
            Some(i) => i,
            None => {
                sums.push((lang.to_string(), 0, vec![0.0; v.len()]));
                sums.len() - 1
            }
        };
        let s = &mut sums[i];
        if s.2.len() != v.len() {
            continue;
        }
        s.1 += 1;
        for (a, x) in s.2.iter_mut().zip(v) {
            *a += f64::from(*x);
        }
    }
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    let counts = sums.iter().map(|s| (s.0.clone(), s.1)).collect();
    let means = sums
        .into_iter()
        .filter(|s| s.1 > 0)
        .map(|(l, n, sum)| (l, sum.iter().map(|x| (x / n as f64) as f32).collect()))
        .collect();
    (counts, means)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            format: FORMAT,
            model: "m/1".into(),
            tag: "centred/1".into(),
            sources: vec![],
            counts: vec![("de".into(), 1), ("en".into(), 1)],
            means: vec![("de".into(), vec![0.0, 0.5]), ("en".into(), vec![0.5, 0.0])],
        }
    }

    #[test]
    fn the_shipped_space_parses_and_is_usable() {
        let s = Space::for_model("multilingual-e5-small-q4/1").expect("e5's space ships");
        s.check().unwrap();
        assert_eq!(
            s.means.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
            ["de", "en"]
        );
        assert!(s.means.iter().all(|m| m.1.len() == 384));
        assert_eq!(
            index_id("multilingual-e5-small-q4/1"),
            format!("multilingual-e5-small-q4/1+{}", s.tag)
        );
        assert_eq!(
            Space::of_index(&index_id("multilingual-e5-small-q4/1")),
            Some(s)
        );
        // MiniLM reads English only: its vectors stay raw.
        assert_eq!(index_id("minilm-l6-int8/1"), "minilm-l6-int8/1");
        assert!(Space::of_index("minilm-l6-int8/1").is_none());
        assert!(Space::of_index("multilingual-e5-small-q4/1").is_none());
        assert!(Space::of_index("multilingual-e5-small-q4/1+other/9").is_none());
    }

    #[test]
    fn placing_subtracts_the_language_mean_and_rescales() {
        let s = space();
        let mut v = vec![0.6, 0.8];
        s.place(&mut v, Some("de"));
        // (0.6, 0.3) scaled to unit length.
        let n = (0.36f32 + 0.09).sqrt();
        assert!((v[0] - 0.6 / n).abs() < 1e-6 && (v[1] - 0.3 / n).abs() < 1e-6);
        // Another language: the mean of the means.
        let mut o = vec![0.6, 0.8];
        s.place(&mut o, Some("fr"));
        let n = (0.35f32 * 0.35 + 0.55 * 0.55).sqrt();
        assert!((o[0] - 0.35 / n).abs() < 1e-6 && (o[1] - 0.55 / n).abs() < 1e-6);
        let mut unknown = vec![0.6, 0.8];
        s.place(&mut unknown, None);
        assert_eq!(unknown, o);
        // A vector of another length is left alone.
        let mut w = vec![1.0, 0.0, 0.0];
        s.place(&mut w, Some("de"));
        assert_eq!(w, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn centring_takes_the_language_out_of_a_cross_language_match() {
        // Two topics (x, y) and two languages, each with its own component.
        let s = Space {
            means: vec![
                ("de".into(), vec![0.0, 0.0, 0.8, 0.0]),
                ("en".into(), vec![0.0, 0.0, 0.0, 0.8]),
            ],
            ..space()
        };
        let mut q = vec![0.5f32, 0.0, 0.8, 0.0]; // a German question about x
        crate::embed::normalize(&mut q);
        let unit = |mut v: Vec<f32>| {
            crate::embed::normalize(&mut v);
            v
        };
        let de_other = unit(vec![0.0, 0.5, 0.8, 0.0]); // German, about y
        let en_same = unit(vec![0.5, 0.0, 0.0, 0.8]); // English, about x
        let dot = |v: &[f32]| v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>();
        assert!(dot(&de_other) > dot(&en_same), "raw, the German chunk wins");
        let (mut a, mut b) = (de_other, en_same);
        s.place(&mut a, Some("de"));
        s.place(&mut b, Some("en"));
        assert!(dot(&b) > dot(&a), "centred, the English answer wins");
    }

    #[test]
    fn means_are_per_language_averages() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        let (counts, means) = means_of([("en", &a[..]), ("en", &b[..]), ("de", &a[..])]);
        assert_eq!(counts, vec![("de".into(), 1), ("en".into(), 2)]);
        assert_eq!(
            means,
            vec![("de".into(), vec![1.0, 0.0]), ("en".into(), vec![0.5, 0.5])]
        );
        let bad = Space {
            means: vec![("de".into(), vec![f32::NAN, 0.0])],
            ..space()
        };
        assert!(bad.check().is_err());
        assert!(Space {
            format: 9,
            ..space()
        }
        .check()
        .is_err());
        assert!(Space {
            tag: "a+b".into(),
            ..space()
        }
        .check()
        .is_err());
    }
}
