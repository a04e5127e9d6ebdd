//! The command line's arguments (clap): every command, flag and default in
//! one place. `commands` does the work, through the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use hort::store::docfilter::DocFilter;

#[derive(Parser)]
#[command(
    name = "hort",
    version,
    about = "Access-controlled retrieval over your documents"
)]
pub struct Cli {
    /// Configuration file (default: ./hort.toml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Index directory (default: [index] path of the configuration, else data/index).
    #[arg(long, global = true)]
    pub index: Option<PathBuf>,
    /// Cores the embedding model may use (default: [embed] threads, 0 = every
    /// core); e.g. `--threads 1` on a machine shared with other work.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Log lines on stderr as text or as JSON (for log shippers). Level: HORT_LOG.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MigrateTarget {
    Postgres,
    Embedded,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Add, update and remove documents so the index matches the folders.
    Ingest {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Ask the index, as a principal from the configuration or as given teams and clearance.
    Query(QueryArgs),
    /// Run a workflow of agents (`[[workflows]]`) on a task, as a principal.
    Run {
        /// The workflow's name.
        workflow: String,
        /// The task.
        task: String,
        /// A principal named in the configuration (its grants and access apply).
        #[arg(long = "as")]
        as_: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the HTTP API.
    Serve {
        /// Address to listen on (default: [server] addr, else 127.0.0.1:8080).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Ingest the bundled sample corpus and serve it.
    Demo {
        #[arg(long)]
        addr: Option<String>,
    },
    /// Show what the index holds.
    Status {
        /// Also read every segment and check its checksums.
        #[arg(long)]
        verify: bool,
        #[arg(long)]
        json: bool,
    },
    /// Rewrite segments to drop deleted chunks and merge small ones.
    Compact,
    /// Print a new API key and the SHA-256 to put in hort.toml.
    Keygen,
    /// Copy documents and their vectors between the embedded index and
    /// PostgreSQL (nothing is embedded again).
    Migrate {
        /// `postgres`: the index into the database ([store] url);
        /// `embedded`: the database into the index.
        #[arg(long, value_enum)]
        to: MigrateTarget,
        /// The database URL (default: [store] url or HORT_DATABASE_URL).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, short)]
        quiet: bool,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// An MCP server over stdio for an agent acting as a configured principal.
    Mcp {
        /// The principal (from hort.toml) whose access, tools and limits apply.
        #[arg(long = "as", value_name = "NAME")]
        as_: String,
    },
    /// Agent actions waiting for a person.
    Approvals {
        #[command(subcommand)]
        cmd: ApprovalsCmd,
    },
    /// The kill switch for every MCP session.
    Agents {
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// Measurements (results go to bench/results/).
    Bench {
        #[command(subcommand)]
        suite: BenchSuite,
    },
    /// Internal: parse one PDF (or image) from stdin in an isolated process.
    #[command(name = "__pdf-worker", hide = true)]
    PdfWorker {
        /// The input is a picture to read by OCR, not a PDF.
        #[arg(long)]
        image: bool,
        /// The PDFium library to read with (else pdf-extract).
        #[arg(long)]
        pdfium: Option<PathBuf>,
        /// No pdf-extract where PDFium fails.
        #[arg(long)]
        pdfium_only: bool,
        /// Tesseract's folder: OCR for pages without text.
        #[arg(long)]
        ocr: Option<PathBuf>,
        #[arg(long, default_value = "deu+eng")]
        ocr_languages: String,
        #[arg(long, default_value_t = 300)]
        ocr_dpi: u32,
        /// No OCR is started after this many milliseconds.
        #[arg(long, default_value_t = 30_000)]
        ocr_budget_ms: u64,
    },
}

/// Metadata filters, applied inside both searches like the access filter.
#[derive(Args)]
pub struct FilterArgs {
    /// Only documents under this folder (relative to the ingested folder).
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// Only these file types, comma-separated (txt, md, html, pdf, docx, pptx, xlsx, odt, odp, ods, eml, image).
    #[arg(long = "type", value_delimiter = ',')]
    pub file_types: Option<Vec<String>>,
    /// Only documents modified at or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub modified_after: Option<String>,
    /// Only documents modified before this date.
    #[arg(long)]
    pub modified_before: Option<String>,
}

impl FilterArgs {
    /// The metadata filter, checked (errors name the flag), or `None`.
    pub fn doc_filter(self) -> Result<Option<DocFilter>> {
        let f = DocFilter {
            path_prefix: self.path_prefix,
            file_types: self.file_types,
            modified_after: self.modified_after,
            modified_before: self.modified_before,
        };
        if f.is_empty() {
            return Ok(None);
        }
        f.compile().map_err(|e| {
            let flag = match e.field {
                "path_prefix" => "--path-prefix",
                "file_types" => "--type",
                "modified_after" => "--modified-after",
                _ => "--modified-before",
            };
            anyhow::anyhow!("{flag}: {}", e.message)
        })?;
        Ok(Some(f))
    }
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain: names every edited, removed or reordered line.
    Verify {
        /// The log (default: [audit] path of the configuration).
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Check the chain even without its head file (which is what detects
        /// records cut off the end); without this flag a missing head fails.
        #[arg(long)]
        no_head: bool,
    },
}

#[derive(Subcommand)]
pub enum ApprovalsCmd {
    /// Pending (and decided) actions. Document text is shown only with
    /// `--as` a principal whose access covers the document's rule.
    List {
        /// Only actions with this status (pending, approved, rejected, executed).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
        /// The approver looking (a principal of the configuration).
        #[arg(long = "as", value_name = "NAME")]
        as_: Option<String>,
    },
    /// One action in full, as the approver `--as` may see it.
    Show {
        id: String,
        #[arg(long = "as", value_name = "NAME")]
        as_: String,
    },
    /// Let an action run (the agent's next identical call runs it once).
    Approve {
        id: String,
        /// The approver (a principal with the approver role).
        #[arg(long = "as", value_name = "NAME")]
        as_: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Refuse an action.
    Reject {
        id: String,
        #[arg(long = "as", value_name = "NAME")]
        as_: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AgentsCmd {
    /// Every MCP session of every process refuses tool calls from now on.
    Stop,
    /// Allow tool calls again.
    Resume,
    /// Whether agents are stopped.
    Status,
}

#[derive(Subcommand)]
pub enum BenchSuite {
    /// Resident memory after opening an index of N chunks (synthetic vectors).
    Open {
        #[arg(long, default_value_t = 100_000)]
        chunks: usize,
        /// Where synthetic indexes are built (and reused).
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
    /// nDCG@10 of BM25, vectors and fusion on a judged query set over a corpus.
    Quality {
        /// JSON lines: {"id", "query", "lang", "relevant": {"doc path": grade}}.
        #[arg(long, default_value = "bench/quality/nordwind.jsonl")]
        queries: PathBuf,
        /// The folder the judgments refer to (ingested into --work, incrementally).
        #[arg(long, default_value = "fixtures/corpus")]
        corpus: PathBuf,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// Also on PostgreSQL: the index is copied into a database on this
        /// server (created if missing) and searched there.
        #[arg(long)]
        pg_url: Option<String>,
        /// Also write each query's candidate lists here (JSON lines), for
        /// fitting fusion on a training split (`bench/fusion/fit.py`,
        /// `bench/fusion/fit_translation.py`).
        #[arg(long)]
        lists: Option<PathBuf>,
        /// Embedding models to compare (each gets its own index in --work);
        /// with more than one, every row of every model also goes into one
        /// table (`quality-<set>-models`). Default: [embed] model.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
    },
    /// Precision, recall and false-positive rate of the injection detector (`make datasets`).
    Injection {
        #[arg(long, default_value = "data/datasets")]
        datasets: PathBuf,
        /// Where `hort bench quality` left its indexes (their chunks are
        /// benign documents); the learned detector caches its features here.
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// Embedding models whose learned head is measured (leave one
        /// source out); none: the rules only.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "minilm-l6,multilingual-e5-small"
        )]
        models: Vec<String>,
        /// Also write the heads trained on every source into this folder
        /// (`scripts/injection/train.sh` does, into models/injection-head).
        #[arg(long)]
        train: Option<PathBuf>,
        /// The false-positive rate on benign training document chunks (questions left out) that the
        /// threshold 0.5 is set to.
        #[arg(long, default_value_t = hort::bench::detector::CALIBRATION_RATE)]
        calibration_rate: f32,
        /// Hidden units of the learned heads (0: logistic regression).
        #[arg(long, default_value_t = hort::bench::detector::HIDDEN_UNITS)]
        hidden_units: usize,
        /// Also train on German word-by-word copies of the English rows
        /// (`make datasets` writes them); the shipped heads are trained without.
        #[arg(long)]
        german_copies: bool,
        /// What a words' part (hashed words and word pairs) counts beside the vector's
        /// (0: vector and rules only, as the shipped heads; 0.5 was measured, docs/measurements.md).
        #[arg(long, default_value_t = hort::bench::detector::WORDS_FACTOR)]
        words: f32,
        /// L2 penalty of the words' part (larger: rare words count less).
        #[arg(long, default_value_t = hort::bench::detector::WORDS_L2)]
        words_l2: f32,
        /// Centre the vectors per language (the model's space, docs/multilingual.md)
        /// before the head reads them, for models that have a space (e5-small); a head
        /// written with it records the space, and hort centres what it reads.
        #[arg(long)]
        centre: bool,
        /// Set the threshold on benign document chunks as heads trained without their
        /// source score them (two halves of those sources), not as the head that trained
        /// on them does; three trainings per head.
        #[arg(long)]
        unseen_calibration: bool,
    },
    /// PDF pages per second, parsing only, per engine, beside `pdftotext`
    /// (`bench/peers/pdf.sh` on the same folder first).
    Pdf {
        /// A folder of PDFs.
        #[arg(long, default_value = "data/bench/ingest-pdf-input")]
        pdfs: PathBuf,
        /// Fill `--pdfs` with the first `--limit` PDFs of this folder (by name) first.
        #[arg(long)]
        from: Option<PathBuf>,
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Worker processes at once (default: one per core).
        #[arg(long)]
        processes: Option<usize>,
        /// `pdftotext`'s figures on the same folder.
        #[arg(long, default_value = "bench/results/peers-pdf.json")]
        peer: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Precision and recall of personal-data detection per type (generated data).
    Pii {
        #[arg(long, default_value_t = 1000)]
        per_kind: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Unfiltered HNSW recall@10 and QPS over a sweep of ef (GloVe 6B 50d; `make datasets`).
    Ann {
        #[command(flatten)]
        common: BenchCommon,
        /// The vector set: glove-50 (GloVe 6B 50d) or wordnet-384 (MiniLM
        /// embeddings of WordNet glosses; made by `hort bench ann-data`).
        #[arg(long, default_value = "glove-50")]
        set: String,
    },
    /// Makes the 384-d vector set of `hort bench ann`: the glosses of a
    /// WordNet 3.0 database folder, embedded with the configured model.
    AnnData {
        /// The WordNet `dict` folder (data.noun, data.verb, …).
        #[arg(long)]
        wordnet: PathBuf,
        /// Synsets taken (100,000 indexed + 1,000 queries).
        #[arg(long, default_value_t = 101_000)]
        limit: usize,
        #[arg(long, default_value = "data/datasets/wordnet-minilm-384.npy")]
        out: PathBuf,
    },
    /// BM25 latency of hort's keyword path against bare tantivy on the same index (SciFact).
    Keyword {
        #[arg(long, default_value = "data/beir/scifact/corpus")]
        corpus: PathBuf,
        /// JSON lines with a "query" field.
        #[arg(long, default_value = "data/beir/scifact/test.jsonl")]
        queries: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// The language means of the configured model's space (docs/multilingual.md):
    /// every chunk of the corpora embedded, averaged per language (each corpus
    /// weighs the same), written as the model's `space.json`.
    Space {
        /// Corpus folders (each ingested into --work first, for its chunks).
        #[arg(long, value_delimiter = ',', required = true)]
        corpus: Vec<PathBuf>,
        /// The name an index records; change it whenever the means change.
        #[arg(long, default_value = "centred-de-en/1")]
        tag: String,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "models/multilingual-e5-small/space.json")]
        out: PathBuf,
    },
    /// Chunks per second through the embedder, 1 and 2 model threads (SciFact chunk texts).
    Embed {
        #[arg(long, default_value = "data/beir/scifact/corpus")]
        corpus: PathBuf,
        #[arg(long, default_value_t = 2000)]
        texts: usize,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Ingest end to end against embedding alone; PDF pages per second.
    Ingest {
        #[arg(long, default_value = "data/beir/scifact/corpus")]
        corpus: PathBuf,
        /// Files taken from the corpus (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// A folder of PDFs to parse (skipped if absent).
        #[arg(long, default_value = "data/pdf-corpus/corpus")]
        pdfs: PathBuf,
        #[arg(long, default_value_t = 200)]
        pdf_limit: usize,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// /v1/search and /v1/query latency over HTTP at several index sizes (synthetic).
    Query {
        /// Index sizes in chunks, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Also on PostgreSQL (a server with pgvector): the embedded index and
        /// the database side by side, with recall@10 (as `hort bench backends`).
        #[arg(long)]
        pg_url: Option<String>,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// The answer cache: /v1/query cached vs uncached through a slow fake
    /// provider, cached throughput, and the semantic cache on EN/DE pairs.
    Cache {
        /// The folder served (ingested into --work).
        #[arg(long, default_value = "fixtures/corpus")]
        corpus: PathBuf,
        /// Question pairs that choose the similarity threshold.
        #[arg(long, default_value = "bench/cache/pairs-dev.tsv")]
        dev: PathBuf,
        /// Held-out question pairs the threshold is reported on.
        #[arg(long, default_value = "bench/cache/pairs-test.tsv")]
        test: PathBuf,
        /// Embedding models for the pairs (names under [embed] models_dir).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "minilm-l6,multilingual-e5-small"
        )]
        models: Vec<String>,
        /// The fake provider's time per answer.
        #[arg(long, default_value_t = 800)]
        provider_ms: u64,
        /// New questions (each one a provider call).
        #[arg(long, default_value_t = 60)]
        uncached: usize,
        /// Repeated questions (cache hits).
        #[arg(long, default_value_t = 500)]
        cached: usize,
        /// Seconds per throughput step.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// The embedded index and PostgreSQL + pgvector side by side at 100k
    /// chunks: /v1/search latency, vector search latency and recall@10.
    Backends {
        /// A PostgreSQL server with pgvector (a database `hort_bench_clustered_N`
        /// is created on it); default HORT_DATABASE_URL.
        #[arg(long)]
        pg_url: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        chunks: usize,
        #[arg(long, default_value_t = 500)]
        requests: usize,
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Side-by-side table, plots and the README's performance section from bench/results.
    Report {
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
        /// The README whose generated section is replaced.
        #[arg(long, default_value = "README.md")]
        readme: PathBuf,
        /// Only write bench/results/summary.md and the plots.
        #[arg(long)]
        no_readme: bool,
    },
    /// Filtered recall@10 and latency at 50/10/1/0.1 % selectivity (GloVe 6B 50d).
    Filter {
        #[command(flatten)]
        common: BenchCommon,
        #[arg(long, default_value_t = 64)]
        ef_search: usize,
        #[arg(long, default_value_t = 20_000)]
        exact_threshold: usize,
    },
}

#[derive(Args)]
pub struct BenchCommon {
    #[arg(long, default_value = "data/datasets")]
    pub datasets: PathBuf,
    #[arg(long, default_value = "data/bench")]
    pub work: PathBuf,
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
}

impl BenchCommon {
    pub fn graph(&self) -> hort::store::hnsw::GraphParams {
        hort::store::hnsw::GraphParams {
            m: self.m,
            ef_construction: self.ef_construction,
        }
    }
}

/// `hort query`: the question, who asks it, and how to answer.
#[derive(Args)]
pub struct QueryArgs {
    pub text: String,
    /// A principal named in the configuration.
    #[arg(long = "as", conflicts_with_all = ["team", "clearance"])]
    pub as_principal: Option<String>,
    /// Teams, comma-separated.
    #[arg(long, value_delimiter = ',', requires = "clearance")]
    pub team: Vec<String>,
    /// public, internal, confidential or restricted.
    #[arg(long, requires = "team")]
    pub clearance: Option<String>,
    /// Number of hits.
    #[arg(short, long)]
    pub k: Option<usize>,
    #[arg(long)]
    pub json: bool,
    /// Retrieval only: print the hits, no answer.
    #[arg(long)]
    pub no_generate: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}
