//! Defences on text that hort did not write. At ingest: [`hygiene`]
//! (normalisation, invisible characters). Injection detection, spotlighting
//! and personal-data masking join this module in the query path.

pub mod hygiene;
pub mod injection;
pub mod pii;
pub mod spotlight;

#[cfg(test)]
mod fuzz {
    use super::injection::detect;
    use super::pii::{find, Masker, PiiKind};
    use proptest::prelude::*;

    fn texty() -> impl Strategy<Value = String> {
        proptest::string::string_regex(
            "([a-zA-Z0-9 .,:;/@%+()\\-\\[\\]<>|#=_~!?'\"\\n]|ä|ß|é|€|東|\u{200b}|\u{202e}|\u{e0049}){0,400}",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn detectors_never_panic_and_stay_in_bounds(t in texty()) {
            let d = detect(&t);
            prop_assert!((0.0..=1.0).contains(&d.score));
            let found = find(&t, &PiiKind::ALL);
            let mut last = 0;
            for m in &found {
                prop_assert!(m.start >= last && m.start < m.end && m.end <= t.len());
                prop_assert!(t.is_char_boundary(m.start) && t.is_char_boundary(m.end));
                last = m.end;
            }
        }

        #[test]
        fn masking_is_reversible(t in texty()) {
            prop_assume!(!t.contains('['));
            let mut m = Masker::new();
            let (masked, _) = m.mask(&t, &PiiKind::ALL);
            prop_assert_eq!(m.unmask(&masked), t);
        }
    }
}
