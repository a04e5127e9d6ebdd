//! How the command line shows results to a person (`--json` prints the
//! library's JSON instead).

use std::io::Write;

use hort::generate::Answer;
use hort::ingest::IngestReport;
use hort::retrieve::Hit;

/// Hits of `hort query --no-generate`.
pub fn print_hits(hits: &[Hit], who: &hort::Principal) {
    if hits.is_empty() {
        println!(
            "No results visible to {} (teams: {}, clearance: {}).",
            who.name,
            who.teams.join(","),
            who.clearance
        );
        return;
    }
    for (i, h) in hits.iter().enumerate() {
        let page = h
            .page
            .map(|p| format!(" {}", hort::text::page_label(&h.doc, p)))
            .unwrap_or_default();
        println!(
            "[{}] {}{} chars {}..{} ({}, score {:.4}{})",
            i + 1,
            h.doc,
            page,
            h.start,
            h.end,
            h.classification,
            h.score,
            hort::text::ocr_note(h.ocr_confidence)
        );
        let excerpt: String = h.text.chars().take(300).collect();
        let more = if h.text.chars().count() > 300 {
            "…"
        } else {
            ""
        };
        println!("    {}{more}\n", excerpt.replace('\n', " "));
    }
}

pub fn print_answer(a: &Answer) {
    println!("{}\n", a.answer);
    for c in &a.citations {
        let page = c
            .page
            .map(|p| format!(" {}", hort::text::page_label(&c.doc, p)))
            .unwrap_or_default();
        println!(
            "[{}] {}{} chars {}..{}{}: \"{}\"",
            c.n,
            c.doc,
            page,
            c.start,
            c.end,
            hort::text::ocr_note(c.ocr_confidence),
            c.quote.replace('\n', " ")
        );
    }
    println!(
        "\nanswered by {} ({}): {}",
        a.route.provider,
        serde_json::to_value(a.route.locality)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        a.route.reason
    );
    let f = &a.flags;
    if !f.injection_suspected.is_empty() {
        println!(
            "sources that look like prompt injection: {} (kept out of the prompt: {})",
            f.injection_suspected.join(", "),
            f.quarantined.len()
        );
    }
    if f.citations_removed > 0 {
        println!(
            "citations removed (no such source): {}",
            f.citations_removed
        );
    }
    for s in &f.unsupported_sentences {
        println!("unsupported: {s}");
    }
    for b in &f.output_blocked {
        println!("answer withheld: {b}");
    }
}

/// The summary of `hort ingest`; `into` names the store (index directory or database).
pub fn print_ingest(r: &IngestReport, into: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ingested into {}: {} added, {} updated, {} unchanged, {} removed, {} access rules changed",
        into, r.added, r.updated, r.unchanged, r.removed, r.access_updated
    );
    let _ = writeln!(
        out,
        "{} chunks in the index ({} embedded now, {} pages read) in {:.1} s",
        r.chunks, r.embedded, r.pages, r.seconds
    );
    let mut list = |head: String, lines: Vec<String>| {
        let _ = writeln!(out, "{head}");
        for l in lines.iter().take(20) {
            let _ = writeln!(out, "  {l}");
        }
        if lines.len() > 20 {
            let _ = writeln!(out, "  … and {} more (see --json)", lines.len() - 20);
        }
    };
    if !r.skipped.is_empty() {
        list(
            format!("{} files skipped:", r.skipped.len()),
            r.skipped
                .iter()
                .map(|k| format!("{}: {}", k.path, k.reason))
                .collect(),
        );
    }
    if !r.warnings.is_empty() {
        list(
            format!("{} remarks (the files were indexed):", r.warnings.len()),
            r.warnings
                .iter()
                .map(|w| format!("{}: {}", w.path, w.warning))
                .collect(),
        );
    }
    if !r.no_access_rule.is_empty() {
        let _ = writeln!(
            out,
            "{} documents have no access rule and are visible to nobody:",
            r.no_access_rule.len()
        );
        for p in r.no_access_rule.iter().take(20) {
            let _ = writeln!(out, "  {p}");
        }
        if r.no_access_rule.len() > 20 {
            let _ = writeln!(
                out,
                "  … and {} more (see --json)",
                r.no_access_rule.len() - 20
            );
        }
    }
    if !r.injection_suspected.is_empty() {
        let _ = writeln!(
            out,
            "{} chunks look like prompt injection (kept, flagged in answers):",
            r.injection_suspected.len()
        );
        for s in r.injection_suspected.iter().take(20) {
            let _ = writeln!(
                out,
                "  {} (chunk {}, score {:.2}: {})",
                s.path,
                s.chunk_id,
                s.score,
                s.reasons.join(", ")
            );
        }
    }
    if r.hygiene.removed() > 0 {
        let _ = writeln!(
            out,
            "{} invisible characters removed (zero-width, bidi, control)",
            r.hygiene.removed()
        );
    }
    if !r.failed.is_empty() {
        let _ = writeln!(out, "{} failed:", r.failed.len());
        for f in &r.failed {
            let _ = writeln!(out, "  {}: {}", f.path, f.error);
        }
    }
}
