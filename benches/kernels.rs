//! Micro-benchmarks of the hot kernels (`cargo bench`): the distance every
//! vector search runs, the injection and personal-data detectors every
//! chunk and answer passes, the chunker, and the language detection the
//! language gate runs on up to 20 nearest chunks per question. End-to-end numbers come from
//! `hort bench` / `make bench`; these isolate the inner loops for profiling.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hort::ingest::chunk::{chunk_page, ChunkParams};
use hort::sanitize::pii::{self, PiiKind};
use hort::store::distance;

fn vectors() -> (Vec<f32>, Vec<f32>) {
    let a: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
    let b: Vec<f32> = (0..384).map(|i| (i as f32 * 0.11).cos()).collect();
    (a, b)
}

fn page(kib: usize) -> String {
    let para = "Trips whose total expected cost is up to 500 EUR are approved by the \
                traveller's team lead. Travel above 500 EUR needs approval by the CFO. \
                Receipts go to accounting@nordwind.example within 30 days; refunds are paid \
                to the IBAN on file.\n\n";
    para.repeat(kib * 1024 / para.len() + 1)
}

fn kernels(c: &mut Criterion) {
    let (a, b) = vectors();
    c.bench_function("dot/384/dispatch", |x| {
        x.iter(|| distance::dot(black_box(&a), black_box(&b)))
    });
    c.bench_function("dot/384/portable", |x| {
        x.iter(|| distance::dot_portable(black_box(&a), black_box(&b)))
    });
    let one_kib = page(1);
    c.bench_function("injection/detect/1KiB", |x| {
        x.iter(|| hort::sanitize::injection::detect(black_box(&one_kib)))
    });
    c.bench_function("pii/find/1KiB", |x| {
        x.iter(|| pii::find(black_box(&one_kib), &PiiKind::ALL))
    });
    c.bench_function("language/detect/1KiB", |x| {
        x.iter(|| hort::store::keyword::TextLanguage::detect(black_box(&one_kib)))
    });
    let opening: String = one_kib.chars().take(200).collect();
    c.bench_function("language/detect/200chars", |x| {
        x.iter(|| hort::store::keyword::TextLanguage::detect(black_box(&opening)))
    });
    let opening: String = one_kib.chars().take(300).collect();
    c.bench_function("language/function-words/300chars", |x| {
        x.iter(|| hort::text::Language::of_question(black_box(&opening)))
    });
    let ten_kib = page(10);
    let params = ChunkParams {
        max_tokens: 200,
        overlap_tokens: 40,
        headings: true,
    };
    let words = |s: &str| s.split_whitespace().count();
    c.bench_function("chunk/page/10KiB", |x| {
        x.iter(|| chunk_page(black_box(&ten_kib), params, &words))
    });
}

criterion_group!(benches, kernels);
criterion_main!(benches);
