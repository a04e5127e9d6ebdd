//! The learned half of the detector: logistic regression over a sentence
//! window's token states (pooled by the embedding model ingest runs anyway)
//! and the rule families the same window hits, optionally with a small
//! hidden layer beside the linear part (a tiny MLP: an injection is near
//! one of many kinds of attack, which one direction cannot express).
//!
//! Why both: the rules recognise phrasings and fire on ordinary manuals
//! ("now enter the code", "print the result"), while the embedding reads
//! intent and carries across languages but misses the obvious when trained
//! on one family of data. One model over both learns how much each rule
//! family is worth *in the context it fires in*, so a rule hit inside
//! documentation can be outweighed and a paraphrase no rule knows can be
//! caught.
//!
//! The head is pure arithmetic on vectors: which model produced them, how
//! windows are cut, and where the weights come from live with the caller.
//! Training is here too, so the shipped weights and the leave-one-source-out
//! figures of `hort bench injection` come from the same code.

use serde::{Deserialize, Serialize};

use super::lexical::Lexical;
use super::{Detection, Family};

/// Rule families that are features of the head (every family a rule can
/// report; [`Family::Learned`] is the head's own verdict, not an input).
pub const RULE_FAMILIES: [Family; 13] = [
    Family::Override,
    Family::Persona,
    Family::FakeDelimiter,
    Family::SecretDisclosure,
    Family::Exfiltration,
    Family::OutputManipulation,
    Family::Persistence,
    Family::PolicyExemption,
    Family::AiAddressed,
    Family::Authority,
    Family::DecodeOrder,
    Family::Encoded,
    Family::DestructiveAction,
];

/// Inputs besides the vector: the rules' score, then one per rule family.
pub const EXTRA: usize = 1 + RULE_FAMILIES.len();

/// Version of the weight file format (2 added the hidden layer, 3 the
/// words' part, 4 the language space its vectors are centred in; files of
/// earlier formats are read as heads without them).
pub const FORMAT: u32 = 4;

/// A trained head for one embedding model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Weight file format ([`FORMAT`]).
    pub format: u32,
    /// The embedding model whose token states it reads (its id).
    pub model: String,
    /// Dimensions of that model's vectors.
    pub dim: usize,
    /// `dim` weights for the vector, then [`EXTRA`] for the rules.
    pub weights: Vec<f32>,
    /// The intercept (moved by [`Head::recentre`]).
    pub bias: f32,
    /// Hidden units × (`dim` + [`EXTRA`]) weights, row by row (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<f32>,
    /// One bias per hidden unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_bias: Vec<f32>,
    /// One output weight per hidden unit (its ReLU's share of the logit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out: Vec<f32>,
    /// The words' part ([`super::lexical`]), if the head has one: its
    /// logit, times its factor, adds to the vector's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lexical: Option<Lexical>,
    /// The language space (its tag, `crate::embed::Space`) the head's
    /// vectors are centred in before it reads them; none: the model's raw
    /// vectors. Recorded because a head trained on centred vectors reads
    /// raw ones as noise: the caller must place them first, or not use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// How it was trained (rows, windows, sources), for people.
    #[serde(default)]
    pub trained_on: String,
}

/// Why a weight file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// Not a weight file.
    #[error("injection head: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by another version of the format.
    #[error("injection head: format {0}, this build reads {FORMAT}")]
    Format(u32),
    #[error("injection head: {got} weights, expected {want} for {dim} dimensions")]
    /// The weights do not fit the dimensions.
    Shape {
        /// Weights in the file.
        got: usize,
        /// Weights expected.
        want: usize,
        /// The model's dimensions.
        dim: usize,
    },
    /// A weight is NaN or infinite.
    #[error("injection head: weights are not finite numbers")]
    NotFinite,
    /// The words' part does not fit this build.
    #[error("injection head: {0}")]
    Lexical(String),
    /// The language space is recorded where the format has none.
    #[error("injection head: {0}")]
    Space(String),
}

impl Head {
    /// Reads and checks a weight file.
    pub fn from_json(bytes: &[u8]) -> Result<Head, HeadError> {
        let h: Head = serde_json::from_slice(bytes)?;
        if !(1..=FORMAT).contains(&h.format) {
            return Err(HeadError::Format(h.format));
        }
        if let Some(l) = &h.lexical {
            if h.format < 3 {
                return Err(HeadError::Lexical(format!(
                    "words' part in a file of format {}",
                    h.format
                )));
            }
            l.check().map_err(HeadError::Lexical)?;
        }
        if h.space.is_some() && h.format < 4 {
            return Err(HeadError::Space(format!(
                "a language space in a file of format {}",
                h.format
            )));
        }
        let n = h.dim + EXTRA;
        let units = h.out.len();
        if h.weights.len() != n
            || h.hidden_bias.len() != units
            || h.hidden.len() != units * n
            || (h.format == 1 && units > 0)
        {
            return Err(HeadError::Shape {
                got: h.weights.len() + h.hidden.len(),
                want: n * (1 + units),
                dim: h.dim,
            });
        }
        let all = [&h.weights, &h.hidden, &h.hidden_bias, &h.out];
        if !h.bias.is_finite() || all.iter().any(|v| v.iter().any(|w| !w.is_finite())) {
            return Err(HeadError::NotFinite);
        }
        Ok(h)
    }

    /// The probability that a window with pooled vector `v`, rule verdict
    /// `rules` and words `terms` ([`super::lexical::terms`]) carries an
    /// injection. A vector of another length (an empty one: a window the
    /// model did not read) counts as zeros.
    pub fn score(&self, v: &[f32], rules: &Detection, terms: &[(u32, f32)]) -> f32 {
        let v = (v.len() == self.dim).then_some(v);
        let words = self
            .lexical
            .as_ref()
            .map_or(0.0, |l| l.factor * l.logit(terms));
        sigmoid(self.logit_of(v, &extra_features(rules)) + words)
    }

    /// The logit of a window: its vector (`None`: zeros) and rule features,
    /// read in place (this runs for every window ingest cuts).
    fn logit_of(&self, v: Option<&[f32]>, extra: &[f32; EXTRA]) -> f32 {
        let d = self.dim;
        let part = |w: &[f32]| v.map_or(0.0, |v| dot(&w[..d], v)) + dot(&w[d..], extra);
        let n = d + EXTRA;
        let mut z = self.bias + part(&self.weights);
        for (k, o) in self.out.iter().enumerate() {
            let a = part(&self.hidden[k * n..(k + 1) * n]) + self.hidden_bias[k];
            if a > 0.0 {
                z += o * a;
            }
        }
        z
    }
}

/// The rule features of a window: its score and which families it hit.
pub fn extra_features(rules: &Detection) -> [f32; EXTRA] {
    let mut x = [0f32; EXTRA];
    x[0] = rules.score;
    for (i, f) in RULE_FAMILIES.iter().enumerate() {
        if rules.reasons.contains(f) {
            x[1 + i] = 1.0;
        }
    }
    x
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// One training example: a window's vector, its rule verdict, its label
/// and how much it counts.
#[derive(Clone, Debug)]
pub struct Example {
    /// The window's pooled vector.
    pub vector: Vec<f32>,
    /// The rules' verdict on the window.
    pub rules: Detection,
    /// Its words ([`super::lexical::terms`]; read by the words' part only).
    pub terms: super::lexical::Terms,
    /// Whether it carries an injection.
    pub injection: bool,
    /// How much it counts (before class balancing).
    pub weight: f32,
}

/// How to train.
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    /// Full passes over the data.
    pub epochs: usize,
    /// Adam's step size.
    pub rate: f32,
    /// L2 penalty on the weights (not the bias).
    pub l2: f32,
    /// Hidden units beside the linear part (0: logistic regression).
    pub hidden: usize,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            epochs: 300,
            rate: 0.05,
            l2: 1e-4,
            hidden: 0,
        }
    }
}

/// Each example's weight scaled so that each class weighs half the total
/// (neither drowns the other); input: (is an injection, weight).
pub(crate) fn balanced_weights(examples: impl Iterator<Item = (bool, f32)> + Clone) -> Vec<f32> {
    let (mut pos, mut neg) = (0f64, 0f64);
    for (injection, w) in examples.clone() {
        if injection {
            pos += w as f64;
        } else {
            neg += w as f64;
        }
    }
    let total = pos + neg;
    examples
        .map(|(injection, w)| {
            let class = if injection { pos } else { neg };
            if class > 0.0 {
                (w as f64 * total / (2.0 * class)) as f32
            } else {
                0.0
            }
        })
        .collect()
}

/// Trains a head on `examples` (full-batch Adam on the weighted log loss,
/// each class's weights scaled to half the total so neither drowns the
/// other). Deterministic: the same examples give the same weights.
pub fn train(model: &str, dim: usize, examples: &[Example], opts: TrainOptions) -> Head {
    let n = dim + EXTRA;
    let balanced = balanced_weights(examples.iter().map(|e| (e.injection, e.weight)));
    let rows: Vec<(Vec<f32>, f32, f32)> = examples
        .iter()
        .zip(balanced)
        .map(|(e, w)| {
            let mut x = Vec::with_capacity(n);
            if e.vector.len() == dim {
                x.extend_from_slice(&e.vector);
            } else {
                x.resize(dim, 0.0);
            }
            x.extend_from_slice(&extra_features(&e.rules));
            (x, if e.injection { 1.0 } else { 0.0 }, w)
        })
        .collect();
    let wsum: f32 = rows.iter().map(|r| r.2).sum::<f32>().max(1e-9);
    let mut w = vec![0f32; n];
    let mut b = 0f32;
    let (mut m, mut v) = (vec![0f32; n + 1], vec![0f32; n + 1]);
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut g = vec![0f32; n + 1];
    for t in 1..=opts.epochs {
        g.iter_mut().for_each(|x| *x = 0.0);
        for (x, y, rw) in &rows {
            let p = sigmoid(dot(&w, x) + b);
            let d = (p - y) * rw;
            for (gi, xi) in g.iter_mut().zip(x) {
                *gi += d * xi;
            }
            g[n] += d;
        }
        for i in 0..n {
            g[i] = g[i] / wsum + opts.l2 * w[i];
        }
        g[n] /= wsum;
        let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
        for i in 0..=n {
            m[i] = b1 * m[i] + (1.0 - b1) * g[i];
            v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            let step = opts.rate * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
            if i < n {
                w[i] -= step;
            } else {
                b -= step;
            }
        }
    }
    let mut head = Head {
        format: FORMAT,
        model: model.to_string(),
        dim,
        weights: w,
        bias: b,
        hidden: Vec::new(),
        hidden_bias: Vec::new(),
        out: Vec::new(),
        lexical: None,
        space: None,
        trained_on: String::new(),
    };
    if opts.hidden > 0 {
        train_hidden(&mut head, &rows, opts);
    }
    head
}

/// Adds `opts.hidden` ReLU units to a trained linear head and trains all
/// weights together: mini-batch Adam on the same weighted log loss, the
/// linear part starting where logistic regression ended (so the units only
/// have to learn what one direction could not). Deterministic: the initial
/// weights and the batch order come from a fixed seed.
fn train_hidden(h: &mut Head, rows: &[(Vec<f32>, f32, f32)], opts: TrainOptions) {
    const BATCH: usize = 256;
    const EPOCHS: usize = 40;
    const RATE: f32 = 0.003;
    let n = h.dim + EXTRA;
    let units = opts.hidden;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let scale = (2.0 / n as f32).sqrt();
    h.hidden = (0..units * n).map(|_| next() * 2.0 * scale).collect();
    h.hidden_bias = vec![0.0; units];
    h.out = (0..units).map(|_| next() * 0.1).collect();
    // Parameters in one vector: weights, bias, hidden, hidden biases, out.
    let len = n + 1 + units * n + units + units;
    let mut m = vec![0f32; len];
    let mut v = vec![0f32; len];
    let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut t = 0i32;
    let mut g = vec![0f32; len];
    let mut act = vec![0f32; units];
    for _ in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            let j = ((next() + 0.5) * (i + 1) as f32) as usize;
            order.swap(i, j.min(i));
        }
        for batch in order.chunks(BATCH) {
            g.iter_mut().for_each(|x| *x = 0.0);
            let bw: f32 = batch.iter().map(|&i| rows[i].2).sum::<f32>().max(1e-9);
            for &i in batch {
                let (x, y, rw) = &rows[i];
                let mut z = h.bias + dot(&h.weights, x);
                for (k, ak) in act.iter_mut().enumerate() {
                    let a = dot(&h.hidden[k * n..(k + 1) * n], x) + h.hidden_bias[k];
                    *ak = a.max(0.0);
                    z += h.out[k] * *ak;
                }
                let d = (sigmoid(z) - y) * rw;
                for (gi, xi) in g[..n].iter_mut().zip(x) {
                    *gi += d * xi;
                }
                g[n] += d;
                let (hid, rest) = g[n + 1..].split_at_mut(units * n);
                let (hb, out) = rest.split_at_mut(units);
                for k in 0..units {
                    out[k] += d * act[k];
                    if act[k] > 0.0 {
                        let dk = d * h.out[k];
                        hb[k] += dk;
                        for (gi, xi) in hid[k * n..(k + 1) * n].iter_mut().zip(x) {
                            *gi += dk * xi;
                        }
                    }
                }
            }
            t += 1;
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            let params: [&mut [f32]; 5] = [
                &mut h.weights,
                std::slice::from_mut(&mut h.bias),
                &mut h.hidden,
                &mut h.hidden_bias,
                &mut h.out,
            ];
            let mut at = 0;
            for (which, p) in params.into_iter().enumerate() {
                // L2 on weights, not on biases.
                let l2 = if which == 1 || which == 3 {
                    0.0
                } else {
                    opts.l2
                };
                for pi in p.iter_mut() {
                    let gi = g[at] / bw + l2 * *pi;
                    m[at] = b1 * m[at] + (1.0 - b1) * gi;
                    v[at] = b2 * v[at] + (1.0 - b2) * gi * gi;
                    *pi -= RATE * (m[at] / c1) / ((v[at] / c2).sqrt() + eps);
                    at += 1;
                }
            }
        }
    }
}

impl Head {
    /// Moves the bias so that a score of `at` becomes 0.5: the default
    /// threshold then means what calibration on benign text chose.
    pub fn recentre(&mut self, at: f32) {
        self.bias -= logit(at);
    }
}

/// The score at which at most `rate` of `benign` scores lie at or above it
/// (the threshold that keeps the false-positive rate on them at `rate`).
pub fn threshold_for_rate(benign: &[f32], rate: f32) -> f32 {
    match highest_below_rate(benign, rate) {
        // Just above the highest benign score that must stay below.
        Some(t) => (t + 1e-6).min(1.0 - 1e-6),
        None => 0.5,
    }
}

/// The highest of `values` that must stay below a threshold letting
/// through at most `rate` of them (`None` if there are none): what
/// [`threshold_for_rate`] sets scores by, and the words' part its logits.
pub fn highest_below_rate(values: &[f32], rate: f32) -> Option<f32> {
    let mut s = values.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let allowed = ((values.len() as f32) * rate).floor() as usize;
    s.get(allowed.min(s.len().saturating_sub(1))).copied()
}

/// A head over two dimensions for tests: a window scores by its first
/// dimension (weight `first`) against its second (`second`).
#[cfg(test)]
pub(crate) fn toy(first: f32, second: f32) -> Head {
    let mut weights = vec![0.0; 2 + EXTRA];
    weights[0] = first;
    weights[1] = second;
    Head {
        format: FORMAT,
        model: "toy".into(),
        dim: 2,
        weights,
        bias: 0.0,
        hidden: Vec::new(),
        hidden_bias: Vec::new(),
        out: Vec::new(),
        lexical: None,
        space: None,
        trained_on: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(v: [f32; 2], fam: Option<Family>, y: bool) -> Example {
        let rules = match fam {
            Some(f) => Detection {
                score: f.weight(),
                reasons: vec![f],
            },
            None => Detection::default(),
        };
        Example {
            vector: v.to_vec(),
            rules,
            terms: Vec::new(),
            injection: y,
            weight: 1.0,
        }
    }

    #[test]
    fn learns_a_direction_and_which_rule_hits_count() {
        // Injections lie along the first axis; exfiltration hits appear in
        // both classes (manuals "print" too), override hits only in attacks.
        let mut data = Vec::new();
        for i in 0..40 {
            let t = i as f32 / 40.0;
            data.push(ex([0.9, 0.1 * t], None, true));
            data.push(ex([0.1 * t, 0.9], None, false));
            data.push(ex([0.1, 0.9], Some(Family::Exfiltration), false));
            data.push(ex([0.5, 0.5], Some(Family::Override), true));
        }
        let h = train("m", 2, &data, TrainOptions::default());
        let none = Detection::default();
        assert!(h.score(&[0.95, 0.0], &none, &[]) > 0.8);
        assert!(h.score(&[0.0, 0.95], &none, &[]) < 0.2);
        let exf = Detection {
            score: 0.75,
            reasons: vec![Family::Exfiltration],
        };
        assert!(
            h.score(&[0.1, 0.9], &exf, &[]) < 0.5,
            "a hit seen in benign text stays low"
        );
        let ovr = Detection {
            score: 0.9,
            reasons: vec![Family::Override],
        };
        assert!(h.score(&[0.5, 0.5], &ovr, &[]) > 0.5);
        // Deterministic, and the file round-trips.
        assert_eq!(h, train("m", 2, &data, TrainOptions::default()));
        let back = Head::from_json(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn hidden_units_learn_what_one_direction_cannot() {
        // Injections at two opposite corners, benign text between them: no
        // single direction separates them (XOR-like); ReLU units do.
        let mut data = Vec::new();
        for i in 0..30 {
            let t = 0.05 * (i % 5) as f32;
            data.push(ex([1.0 - t, 1.0 - t], None, true));
            data.push(ex([-1.0 + t, -1.0 + t], None, true));
            data.push(ex([1.0 - t, -1.0 + t], None, false));
            data.push(ex([-1.0 + t, 1.0 - t], None, false));
        }
        let none = Detection::default();
        let accuracy = |h: &Head| {
            data.iter()
                .filter(|e| (h.score(&e.vector, &none, &[]) >= 0.5) == e.injection)
                .count() as f32
                / data.len() as f32
        };
        let linear = train("m", 2, &data, TrainOptions::default());
        let with_units = || {
            let opts = TrainOptions {
                hidden: 8,
                ..TrainOptions::default()
            };
            train("m", 2, &data, opts)
        };
        let mlp = with_units();
        assert!(accuracy(&linear) <= 0.75, "linear: {}", accuracy(&linear));
        assert!(
            accuracy(&mlp) >= 0.95,
            "with hidden units: {}",
            accuracy(&mlp)
        );
        // Deterministic, and the file (format 2) round-trips.
        let again = with_units();
        assert_eq!(mlp, again);
        let back = Head::from_json(&serde_json::to_vec(&mlp).unwrap()).unwrap();
        assert_eq!(back, mlp);
        // A unit's weights cut short are refused.
        let mut bad = mlp.clone();
        bad.hidden.pop();
        assert!(matches!(
            Head::from_json(&serde_json::to_vec(&bad).unwrap()),
            Err(HeadError::Shape { .. })
        ));
    }

    #[test]
    fn bad_weight_files_are_refused() {
        let ok = r#"{"format":1,"model":"m","dim":1,"weights":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"bias":0}"#;
        assert!(Head::from_json(ok.as_bytes()).is_ok());
        let short = ok.replace("[0,0,", "[");
        assert!(matches!(
            Head::from_json(short.as_bytes()),
            Err(HeadError::Shape { .. })
        ));
        let v5 = ok.replace("\"format\":1", "\"format\":5");
        assert!(matches!(
            Head::from_json(v5.as_bytes()),
            Err(HeadError::Format(5))
        ));
        // A language space is read from format 4 on, and refused before.
        let spaced = ok.replace("\"bias\":0", "\"bias\":0,\"space\":\"c/1\"");
        assert!(matches!(
            Head::from_json(spaced.as_bytes()),
            Err(HeadError::Space(_))
        ));
        let h = Head::from_json(spaced.replace("\"format\":1", "\"format\":4").as_bytes());
        assert_eq!(h.unwrap().space.as_deref(), Some("c/1"));
        assert!(Head::from_json(b"{").is_err());
        let extra = ok.replace("\"bias\":0", "\"bias\":0,\"x\":1");
        assert!(Head::from_json(extra.as_bytes()).is_err());
    }

    #[test]
    fn recentred_threshold_keeps_the_chosen_rate() {
        let benign: Vec<f32> = (0..100).map(|i| i as f32 / 200.0).collect();
        let t = threshold_for_rate(&benign, 0.01);
        assert_eq!(benign.iter().filter(|s| **s >= t).count(), 1);
        let mut h = Head {
            format: FORMAT,
            model: "m".into(),
            dim: 0,
            weights: vec![0.0; EXTRA],
            bias: logit(t),
            hidden: Vec::new(),
            hidden_bias: Vec::new(),
            out: Vec::new(),
            lexical: None,
            space: None,
            trained_on: String::new(),
        };
        h.recentre(t);
        assert!((h.score(&[], &Detection::default(), &[]) - 0.5).abs() < 1e-4);
    }
}
