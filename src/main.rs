//! The `hort` command line: argument parsing and output only; the work is
//! done by the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use hort::acl::{Classification, Principal};
use hort::config::Config;
use hort::embed::{self, Embedder};
use hort::ingest::{self, IngestOptions, IngestReport};
use hort::retrieve::{self, SearchParams};
use hort::store::docfilter::{CompiledDocFilter, DocFilter};
use hort::store::{migrate, IndexReader, IndexWriter, View};

#[derive(Parser)]
#[command(
    name = "hort",
    version,
    about = "Access-controlled retrieval over your documents"
)]
struct Cli {
    /// Configuration file (default: ./hort.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Index directory (default: [index] path of the configuration, else data/index).
    #[arg(long, global = true)]
    index: Option<PathBuf>,
    /// Log lines on stderr as text or as JSON (for log shippers). Level: HORT_LOG.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MigrateTarget {
    Postgres,
    Embedded,
}

#[derive(Subcommand)]
enum Cmd {
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
    Query {
        text: String,
        /// A principal named in the configuration.
        #[arg(long = "as", conflicts_with_all = ["team", "clearance"])]
        as_principal: Option<String>,
        /// Teams, comma-separated.
        #[arg(long, value_delimiter = ',', requires = "clearance")]
        team: Vec<String>,
        /// public, internal, confidential or restricted.
        #[arg(long, requires = "team")]
        clearance: Option<String>,
        /// Number of hits.
        #[arg(short, long)]
        k: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Retrieval only: print the hits, no answer.
        #[arg(long)]
        no_generate: bool,
        #[command(flatten)]
        filter: FilterArgs,
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
    /// Internal: parse one PDF from stdin in an isolated process.
    #[command(name = "__pdf-worker", hide = true)]
    PdfWorker,
}

/// Metadata filters, applied inside both searches like the access filter.
#[derive(clap::Args)]
struct FilterArgs {
    /// Only documents under this folder (relative to the ingested folder).
    #[arg(long)]
    path_prefix: Option<String>,
    /// Only these file types, comma-separated (txt, md, html, pdf).
    #[arg(long = "type", value_delimiter = ',')]
    file_types: Option<Vec<String>>,
    /// Only documents modified at or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    modified_after: Option<String>,
    /// Only documents modified before this date.
    #[arg(long)]
    modified_before: Option<String>,
}

impl FilterArgs {
    fn compile(self) -> Result<Option<CompiledDocFilter>> {
        let f = DocFilter {
            path_prefix: self.path_prefix,
            file_types: self.file_types,
            modified_after: self.modified_after,
            modified_before: self.modified_before,
        };
        if f.is_empty() {
            return Ok(None);
        }
        let compiled = f.compile().map_err(|e| {
            let flag = match e.field {
                "path_prefix" => "--path-prefix",
                "file_types" => "--type",
                "modified_after" => "--modified-after",
                _ => "--modified-before",
            };
            anyhow::anyhow!("{flag}: {}", e.message)
        })?;
        Ok(Some(compiled))
    }
}

#[derive(Subcommand)]
enum AuditCmd {
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
enum ApprovalsCmd {
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
enum AgentsCmd {
    /// Every MCP session of every process refuses tool calls from now on.
    Stop,
    /// Allow tool calls again.
    Resume,
    /// Whether agents are stopped.
    Status,
}

#[derive(Subcommand)]
enum BenchSuite {
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
    },
    /// Precision, recall and false-positive rate of the injection detector (`make datasets`).
    Injection {
        #[arg(long, default_value = "data/datasets")]
        datasets: PathBuf,
        /// Where `hort bench quality` left its indexes (their chunks are benign documents).
        #[arg(long, default_value = "data/bench")]
        work: PathBuf,
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

#[derive(clap::Args)]
struct BenchCommon {
    #[arg(long, default_value = "data/datasets")]
    datasets: PathBuf,
    #[arg(long, default_value = "data/bench")]
    work: PathBuf,
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    #[arg(long, default_value_t = 16)]
    m: usize,
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
}

impl BenchCommon {
    fn graph(&self) -> hort::store::hnsw::GraphParams {
        hort::store::hnsw::GraphParams {
            m: self.m,
            ef_construction: self.ef_construction,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    if let Cmd::PdfWorker = cli.cmd {
        return ExitCode::from(hort::ingest::loader::pdf::worker_main() as u8);
    }
    // A server logs each request (id, route, status, latency, principal;
    // never credentials); other commands only warnings.
    let default = match cli.cmd {
        Cmd::Serve { .. } | Cmd::Demo { .. } => "warn,hort=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("hort: error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn index_dir(cli_index: &Option<PathBuf>, cfg: &Config) -> PathBuf {
    cli_index.clone().unwrap_or_else(|| cfg.index_path())
}

/// Appends one record to the configured audit log (CLI actions: approvals,
/// the kill switch). The log is shared with running servers (locked appends).
fn audit_cli(cfg: &Config, endpoint: &str, principal: &str, flags: Vec<String>) {
    let Some(path) = cfg.audit.path.as_ref().map(|p| cfg.resolve(p)) else {
        return;
    };
    let rec = hort::gateway::audit::AuditRecord {
        time: hort::gateway::rfc3339_now(),
        request_id: format!("cli-{}", std::process::id()),
        principal: principal.to_string(),
        endpoint: endpoint.to_string(),
        status: 200,
        flags,
        ..Default::default()
    };
    match hort::gateway::audit::AuditLog::open(&path, cfg.audit.fsync, false).and_then(|log| {
        log.append(rec)?;
        log.flush();
        Ok(())
    }) {
        Ok(()) => {}
        Err(e) => eprintln!("hort: warning: audit log: {e}"),
    }
}

/// The principal an approver names with `--as` (none: sees no document text).
fn viewer(cfg: &Config, name: Option<&str>) -> Result<Principal> {
    match name {
        None => Ok(Principal::new(
            "cli",
            &[] as &[&str],
            Classification::Public,
        )),
        Some(n) => {
            let p = cfg
                .principal(n)
                .with_context(|| format!("no principal {n:?} in the configuration"))?;
            Ok(Principal::new(&p.name, &p.teams, p.clearance))
        }
    }
}

fn approvals(cfg: &Config, cmd: ApprovalsCmd) -> Result<ExitCode> {
    use hort::mcp::approvals::Approvals;
    let store = Approvals::open(&cfg.resolve(&cfg.mcp.approvals_dir))?;
    match cmd {
        ApprovalsCmd::List { status, json, as_ } => {
            let who = viewer(cfg, as_.as_deref())?;
            let list: Vec<_> = store
                .list()?
                .into_iter()
                .filter(|a| status.as_deref().is_none_or(|s| a.status.to_string() == s))
                .map(|a| a.view_for(&who))
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no actions");
            } else {
                for a in &list {
                    println!(
                        "{}  {:<9} {:<16} {:<12} {}  {}",
                        a.id,
                        a.status.to_string(),
                        a.tool,
                        a.principal,
                        a.created_at,
                        if a.summary.is_empty() {
                            a.arguments.to_string()
                        } else {
                            a.summary.clone()
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCmd::Show { id, as_ } => {
            let who = viewer(cfg, Some(&as_))?;
            let a = store.get(&id)?.view_for(&who);
            println!("{}", serde_json::to_string_pretty(&a)?);
            Ok(ExitCode::SUCCESS)
        }
        ApprovalsCmd::Approve { id, as_, reason } => decide(cfg, &store, &id, &as_, reason, true),
        ApprovalsCmd::Reject { id, as_, reason } => decide(cfg, &store, &id, &as_, reason, false),
    }
}

fn decide(
    cfg: &Config,
    store: &hort::mcp::approvals::Approvals,
    id: &str,
    as_: &str,
    reason: Option<String>,
    approve: bool,
) -> Result<ExitCode> {
    let p = cfg
        .principals
        .iter()
        .find(|p| p.name == as_)
        .with_context(|| format!("no principal {as_:?} in the configuration"))?;
    if !p.roles.iter().any(|r| r == "approver") {
        bail!("{as_} does not have the approver role");
    }
    let a = store.get(id)?;
    if a.principal == as_ {
        bail!("{as_} cannot decide on its own action");
    }
    let a = store.decide(id, as_, approve, reason)?;
    let word = if approve { "approved" } else { "rejected" };
    audit_cli(
        cfg,
        &format!(
            "cli:approvals/{}",
            if approve { "approve" } else { "reject" }
        ),
        as_,
        vec![format!("approval_{word}:{id}")],
    );
    println!(
        "{} {word}: {} by {} ({})",
        a.id, a.tool, a.principal, a.summary
    );
    Ok(ExitCode::SUCCESS)
}

/// The index of a benchmark corpus, one per corpus folder and model, kept in
/// `work` and brought up to date incrementally (shared by several suites).
fn bench_index(
    cfg: &Config,
    embedder: &dyn Embedder,
    corpus: &Path,
    work: &Path,
) -> Result<PathBuf> {
    let corpus_name = std::fs::canonicalize(corpus)
        .with_context(|| format!("{}: no such corpus folder", corpus.display()))?
        .parent()
        .and_then(|d| d.file_name())
        .map(|d| d.to_string_lossy().to_string())
        .unwrap_or_else(|| "corpus".into());
    let index = work.join(format!("quality-{corpus_name}-{}", cfg.embed.model));
    let mut opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    opts.progress = false;
    ingest::ingest(&index, &[corpus.to_path_buf()], embedder, &opts)?;
    Ok(index)
}

/// Reads the "query" field of each JSON line.
fn read_queries(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
        let q = v
            .get("query")
            .and_then(|q| q.as_str())
            .with_context(|| format!("{}:{}: no \"query\" field", path.display(), i + 1))?;
        out.push(q.to_string());
    }
    Ok(out)
}

fn load_embedder(cfg: &Config) -> Result<Arc<dyn Embedder>> {
    embed::from_config(&cfg.embed, |p| cfg.resolve(p)).context("loading the embedding model")
}

fn run(cli: Cli) -> Result<ExitCode> {
    let cfg = Config::discover(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Ingest { dirs, json, quiet } => {
            let index = index_dir(&cli.index, &cfg);
            let report = run_ingest(&cfg, &index, &dirs, quiet || json)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_ingest(&report, &index);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Query {
            text,
            as_principal,
            team,
            clearance,
            k,
            json,
            no_generate,
            filter,
        } => {
            let docs = filter.compile()?;
            let principal = match (as_principal, clearance) {
                (Some(name), _) => {
                    let p = cfg.principal(&name).with_context(|| {
                        format!("no principal named {name:?} in the configuration")
                    })?;
                    Principal::new(&p.name, &p.teams, p.clearance)
                }
                (None, Some(c)) => {
                    let c: Classification = c.parse()?;
                    Principal::new("cli", &team, c)
                }
                (None, None) => {
                    bail!("say who is asking: --as NAME, or --team T --clearance LEVEL")
                }
            };
            let index = index_dir(&cli.index, &cfg);
            let embedder = load_embedder(&cfg)?;
            let view = match ingest::open_database(&cfg, embedder.as_ref())? {
                Some(pg) => View::Postgres(pg),
                None => {
                    let snap = IndexReader::open(&index)?.snapshot();
                    check_model(&snap.manifest.embedder, embedder.as_ref())?;
                    View::Embedded(snap)
                }
            };
            let params = SearchParams::from_config(&cfg);
            let k = k.unwrap_or(params.k);
            if k == 0 {
                bail!("-k must be at least 1");
            }
            let req = retrieve::Request {
                query: &text,
                k,
                docs: docs.as_ref(),
            };
            let r = retrieve::search_view(&view, embedder.as_ref(), &principal, &req, &params)?;
            if !no_generate {
                let gateway = std::sync::Arc::new(hort::gateway::Gateway::new(&cfg));
                let generator = hort::generate::Generator::from_config(&cfg, gateway)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?;
                let a = rt.block_on(generator.answer(&view, &principal, &text, r.hits, None))?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&a)?);
                } else {
                    print_answer(&a);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "hits": r.hits }))?
                );
            } else if r.hits.is_empty() {
                println!(
                    "No results visible to {} (teams: {}, clearance: {}).",
                    principal.name,
                    principal.teams.join(","),
                    principal.clearance
                );
            } else {
                for (i, h) in r.hits.iter().enumerate() {
                    let page = h.page.map(|p| format!(" p.{p}")).unwrap_or_default();
                    println!(
                        "[{}] {}{} chars {}..{} ({}, score {:.4})",
                        i + 1,
                        h.doc,
                        page,
                        h.start,
                        h.end,
                        h.classification,
                        h.score
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
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Migrate { to, url, quiet } => {
            let index = index_dir(&cli.index, &cfg);
            let mut cfg = cfg.clone();
            cfg.store.backend = hort::config::Backend::Postgres;
            if let Some(u) = url {
                cfg.store.url = Some(u);
            }
            if cfg.store.url().is_none() {
                bail!("no database: give --url, set [store] url, or HORT_DATABASE_URL");
            }
            let started = std::time::Instant::now();
            let report = match to {
                MigrateTarget::Postgres => {
                    let snap = IndexReader::open(&index)?.snapshot();
                    // The database is created for the index's model, not the configured one.
                    let meta = hort::store::pg::Meta {
                        embedder: snap.manifest.embedder.clone(),
                        dim: snap.manifest.dim as usize,
                        chunker: snap.manifest.chunker.clone(),
                        m: cfg.hnsw.m,
                        ef_construction: cfg.hnsw.ef_construction,
                    };
                    let pg = hort::store::pg::PgStore::open(
                        &cfg.store.url().unwrap_or_default(),
                        None,
                        cfg.store.pool_size,
                        meta,
                    )?;
                    migrate::to_postgres(&snap, &pg, &migrate::Scope::Folders, !quiet)?
                }
                MigrateTarget::Embedded => {
                    let embedder = load_embedder(&cfg)?;
                    let pg = ingest::open_database(&cfg, embedder.as_ref())?
                        .context("no database configured")?;
                    let opts =
                        IngestOptions::from_config(&cfg, IngestOptions::subprocess_pdf(&cfg));
                    migrate::to_embedded(&pg, &index, opts.graph, opts.segment_chunks, !quiet)?
                }
            };
            println!(
                "migrated in {:.1} s: {} added, {} updated, {} removed, {} unchanged ({} chunks copied)",
                started.elapsed().as_secs_f64(),
                report.added,
                report.updated,
                report.removed,
                report.unchanged,
                report.chunks
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Serve { addr } => {
            let index = index_dir(&cli.index, &cfg);
            let addr = addr.unwrap_or_else(|| cfg.server.addr.clone());
            serve(&cfg, &index, &addr, None)
        }
        Cmd::Demo { addr } => demo(cli.config.as_deref(), cli.index.clone(), addr),
        Cmd::Status { verify, json } => {
            let index = index_dir(&cli.index, &cfg);
            let reader = IndexReader::open(&index)?;
            let snap = reader.snapshot();
            if verify {
                snap.verify()?;
            }
            let bytes: u64 = snap.manifest.segments.iter().map(|s| s.bytes).sum();
            let stored: u64 = snap.manifest.segments.iter().map(|s| s.chunks).sum();
            let no_rule = snap.docs.iter().filter(|d| d.access.is_none()).count();
            let status = serde_json::json!({
                "index": index,
                "generation": snap.generation(),
                "embedder": snap.manifest.embedder,
                "documents": snap.docs.len(),
                "documents_without_rule": no_rule,
                "chunks": snap.live_chunks(),
                "stored_chunks": stored,
                "segments": snap.segments.len(),
                "segment_bytes": bytes,
                "teams": snap.teams.len(),
                "verified": verify,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("index      {}", index.display());
                println!("generation {}", snap.generation());
                println!("model      {}", snap.manifest.embedder);
                println!(
                    "documents  {} ({} without an access rule)",
                    snap.docs.len(),
                    no_rule
                );
                println!(
                    "chunks     {} live, {} stored in {} segments ({:.1} MB)",
                    snap.live_chunks(),
                    stored,
                    snap.segments.len(),
                    bytes as f64 / 1e6
                );
                if verify {
                    println!("checksums  ok");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compact => {
            let index = index_dir(&cli.index, &cfg);
            let embedder = load_embedder(&cfg)?;
            let opts = IngestOptions::from_config(&cfg, IngestOptions::subprocess_pdf(&cfg));
            let mut w = IndexWriter::open(
                &index,
                embedder.id(),
                embedder.dim(),
                &opts.chunk.fingerprint(),
                opts.graph,
            )?;
            let stats = w.compact(true)?;
            let generation = w.commit()?;
            println!(
                "compacted {} segments, dropped {} deleted chunks (generation {generation})",
                stats.merged_segments, stats.dropped_chunks
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Audit {
            cmd: AuditCmd::Verify {
                path: None, json, ..
            },
        } if cfg.store.backend == hort::config::Backend::Postgres => {
            let embedder = load_embedder(&cfg)?;
            let pg = ingest::open_database(&cfg, embedder.as_ref())?
                .context("no database configured")?;
            let v = hort::gateway::audit::verify_shared(&pg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for p in &v.problems {
                    println!("database audit log: {p}");
                }
                println!(
                    "database audit log: {} records, {}",
                    v.records,
                    if v.problems.is_empty() {
                        "chain intact".to_string()
                    } else {
                        format!("{} problem(s): the log was altered", v.problems.len())
                    }
                );
            }
            Ok(if v.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    path,
                    json,
                    no_head,
                },
        } => {
            let path = match path.or_else(|| cfg.audit.path.as_ref().map(|p| cfg.resolve(p))) {
                Some(p) => p,
                None => {
                    eprintln!(
                        "hort: error: no audit log: give its path or set [audit] path in hort.toml"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let v = hort::gateway::audit::verify(&path, !no_head)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if v.problems.is_empty() {
                println!("{}: {} records, chain intact", path.display(), v.records);
            } else {
                for p in &v.problems {
                    println!("{}: {p}", path.display());
                }
                println!(
                    "{}: {} records, {} problem(s): the log was altered",
                    path.display(),
                    v.records,
                    v.problems.len()
                );
            }
            Ok(if v.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Mcp { as_ } => {
            let (principal, roles) = hort::mcp::principal_from_config(&cfg, &as_)
                .with_context(|| format!("no principal {as_:?} in the configuration"))?;
            let index = index_dir(&cli.index, &cfg);
            let embedder = load_embedder(&cfg)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(async {
                let (reader, st) = hort::server::open_node(&cfg, &index, embedder)?;
                let st = Arc::new(st);
                // Pick up commits of concurrent ingests, as `serve` does.
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                    loop {
                        tick.tick().await;
                        let r = reader.clone();
                        let _ = tokio::task::spawn_blocking(move || r.refresh()).await;
                    }
                });
                let session = hort::mcp::Session::new(
                    format!("stdio-{}", std::process::id()),
                    principal,
                    roles,
                );
                hort::mcp::serve_stdio(st, session).await?;
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Approvals { cmd } => approvals(&cfg, cmd),
        Cmd::Agents { cmd } => {
            let ks = hort::mcp::KillSwitch::new(&cfg);
            match cmd {
                AgentsCmd::Stop => {
                    ks.stop("cli").context("writing the stop file")?;
                    audit_cli(
                        &cfg,
                        "cli:agents/stop",
                        "cli",
                        vec!["agents_stopped".into()],
                    );
                    println!("agents stopped: every MCP session refuses tool calls (hort agents resume to undo)");
                }
                AgentsCmd::Resume => {
                    ks.resume().context("removing the stop file")?;
                    audit_cli(
                        &cfg,
                        "cli:agents/resume",
                        "cli",
                        vec!["agents_resumed".into()],
                    );
                    println!("agents resumed");
                }
                AgentsCmd::Status => {
                    println!(
                        "{}",
                        if ks.is_stopped() {
                            "stopped"
                        } else {
                            "running"
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Keygen => {
            let mut bytes = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
                .context("reading /dev/urandom")?;
            let key: String = format!(
                "hort_{}",
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            println!("api key:        {key}");
            println!("api_key_sha256 = \"{}\"", hort::server::key_hash_hex(&key));
            println!("\nGive the key to its owner; put only the hash in hort.toml.");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench { suite } => match suite {
            BenchSuite::Open {
                chunks,
                work,
                out,
                queries,
            } => {
                hort::bench::open::run(&work, chunks, &out, queries)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Quality {
                queries,
                corpus,
                work,
                out,
                pg_url,
            } => {
                let judged =
                    hort::bench::quality::load_queries(&queries).map_err(anyhow::Error::msg)?;
                let embedder = load_embedder(&cfg)?;
                // One index per corpus and model, reused (and updated) between runs.
                let index = bench_index(&cfg, embedder.as_ref(), &corpus, &work)?;
                let snap = IndexReader::open(&index)?.snapshot();
                let stem = queries
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("set")
                    .to_string();
                let mut name = format!("quality-{stem}-{}", cfg.embed.model);
                let view = match pg_url {
                    None => View::Embedded(snap.clone()),
                    Some(url) => {
                        let db_name: String =
                            format!("hort_bench_quality_{stem}_{}", cfg.embed.model)
                                .chars()
                                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                                .collect();
                        let db = hort::bench::backends::database(&url, &db_name)
                            .map_err(anyhow::Error::msg)?;
                        let pg = hort::store::pg::PgStore::open(
                            &db,
                            None,
                            2,
                            hort::store::pg::Meta {
                                embedder: snap.manifest.embedder.clone(),
                                dim: snap.manifest.dim as usize,
                                chunker: snap.manifest.chunker.clone(),
                                ..Default::default()
                            },
                        )?;
                        migrate::to_postgres(&snap, &pg, &migrate::Scope::Folders, true)?;
                        name.push_str("-postgres");
                        View::Postgres(Arc::new(pg))
                    }
                };
                hort::bench::quality::report(
                    &snap,
                    &view,
                    embedder.as_ref(),
                    &judged,
                    &queries.display().to_string(),
                    &name,
                    SearchParams::from_config(&cfg),
                    &out,
                )
                .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Injection {
                datasets,
                work,
                out,
            } => {
                hort::bench::injection::run(&datasets, &work, &out).map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Pii { per_kind, out } => {
                hort::bench::pii::run(&out, per_kind).map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Keyword {
                corpus,
                queries,
                rounds,
                work,
                out,
            } => {
                let embedder = load_embedder(&cfg)?;
                let index = bench_index(&cfg, embedder.as_ref(), &corpus, &work)?;
                let snap = IndexReader::open(&index)?.snapshot();
                let qs = read_queries(&queries)?;
                hort::bench::keyword::export(&snap, &qs, &work.join("keyword-export"))
                    .map_err(anyhow::Error::msg)?;
                hort::bench::keyword::run(&snap, &corpus.display().to_string(), &qs, rounds, &out)
                    .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Embed {
                corpus,
                texts,
                work,
                out,
            } => {
                let embedder = load_embedder(&cfg)?;
                let index = bench_index(&cfg, embedder.as_ref(), &corpus, &work)?;
                drop(embedder);
                let snap = IndexReader::open(&index)?.snapshot();
                let mut all = Vec::new();
                for d in snap.docs.iter() {
                    if all.len() >= texts {
                        break;
                    }
                    let chunks = snap.doc_chunks(d)?;
                    let room = texts - all.len();
                    all.extend(chunks.into_iter().take(room).map(|(_, t)| t.to_string()));
                }
                hort::bench::embed::write_inputs(&all, &work.join("embed-inputs.jsonl"))
                    .map_err(anyhow::Error::msg)?;
                let files = embed::model_files(&cfg.embed, |p| cfg.resolve(p))?
                    .context("the hash embedder has no model to measure")?;
                // MiniLM's results are the ones compared with the peers.
                let name = match cfg.embed.model.as_str() {
                    "minilm-l6" => "embed".to_string(),
                    m => format!("embed-{m}"),
                };
                hort::bench::embed::run(&files, &all, cfg.embed.batch_size, &out, &name)
                    .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Ingest {
                corpus,
                limit,
                pdfs,
                pdf_limit,
                work,
                out,
            } => {
                let embedder = load_embedder(&cfg)?;
                let mut opts =
                    IngestOptions::from_config(&cfg, IngestOptions::subprocess_pdf(&cfg));
                opts.progress = false;
                let args = hort::bench::ingest::IngestBenchArgs {
                    corpus: &corpus,
                    limit,
                    pdfs: pdfs.is_dir().then_some(pdfs.as_path()),
                    pdf_limit,
                    work: &work,
                    out: &out,
                };
                hort::bench::ingest::run(&args, embedder.as_ref(), &opts)
                    .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Query {
                sizes,
                requests,
                work,
                out,
                pg_url,
            } => {
                let embedder = load_embedder(&cfg)?;
                match pg_url {
                    None => {
                        hort::bench::query::run(embedder, &sizes, requests, &work, &out)
                            .map_err(anyhow::Error::msg)?;
                    }
                    Some(url) => {
                        for &n in &sizes {
                            hort::bench::backends::run(
                                embedder.clone(),
                                &url,
                                n,
                                requests,
                                &work,
                                &out,
                            )
                            .map_err(anyhow::Error::msg)?;
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Backends {
                pg_url,
                chunks,
                requests,
                work,
                out,
            } => {
                let url = pg_url
                    .or_else(|| std::env::var("HORT_DATABASE_URL").ok())
                    .context("give --pg-url (or HORT_DATABASE_URL); `make pg` starts a server")?;
                let embedder = load_embedder(&cfg)?;
                hort::bench::backends::run(embedder, &url, chunks, requests, &work, &out)
                    .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Report {
                out,
                readme,
                no_readme,
            } => {
                let md = hort::bench::report::run(&out, (!no_readme).then_some(readme.as_path()))
                    .map_err(anyhow::Error::msg)?;
                print!("{md}");
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Ann { common } => {
                hort::bench::ann::run_ann(
                    &common.datasets,
                    &common.work,
                    &common.out,
                    common.graph(),
                )
                .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
            BenchSuite::Filter {
                common,
                ef_search,
                exact_threshold,
            } => {
                let params = SearchParams {
                    ef_search,
                    exact_threshold,
                    ..SearchParams::default()
                };
                hort::bench::ann::run_filter(
                    &common.datasets,
                    &common.work,
                    &common.out,
                    common.graph(),
                    params,
                )
                .map_err(anyhow::Error::msg)?;
                Ok(ExitCode::SUCCESS)
            }
        },
        Cmd::PdfWorker => Ok(ExitCode::SUCCESS),
    }
}

fn print_answer(a: &hort::generate::Answer) {
    println!("{}\n", a.answer);
    for c in &a.citations {
        let page = c.page.map(|p| format!(" p.{p}")).unwrap_or_default();
        println!(
            "[{}] {}{} chars {}..{}: \"{}\"",
            c.n,
            c.doc,
            page,
            c.start,
            c.end,
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

fn check_model(index_model: &str, embedder: &dyn Embedder) -> Result<()> {
    if index_model != embedder.id() {
        bail!(
            "the index was built with embedding model {index_model}, but {} is configured; \
             configure the same model or re-ingest into a new index",
            embedder.id()
        );
    }
    Ok(())
}

fn run_ingest(cfg: &Config, index: &Path, dirs: &[PathBuf], quiet: bool) -> Result<IngestReport> {
    let embedder = load_embedder(cfg)?;
    // Connect first: a wrong URL or model should fail before the work.
    let pg = ingest::open_database(cfg, embedder.as_ref())?;
    let mut opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    opts.progress = !quiet;
    let report = ingest::ingest(index, dirs, embedder.as_ref(), &opts)?;
    if let Some(pg) = pg {
        // The staging index now matches the folders; make the database match it.
        let roots = dirs
            .iter()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .map(|d| d.to_string_lossy().to_string())
            .collect();
        let snap = IndexReader::open(index)?.snapshot();
        let s = migrate::to_postgres(&snap, &pg, &migrate::Scope::Roots(roots), !quiet)?;
        if !quiet {
            eprintln!(
                "database: {} added, {} updated, {} removed, {} unchanged ({} chunks written)",
                s.added, s.updated, s.removed, s.unchanged, s.chunks
            );
        }
    }
    Ok(report)
}

fn print_ingest(r: &IngestReport, index: &Path) {
    let mut out = std::io::stdout().lock();
    let _ =
        writeln!(
        out,
        "ingested into {}: {} added, {} updated, {} unchanged, {} removed, {} access rules changed",
        index.display(), r.added, r.updated, r.unchanged, r.removed, r.access_updated
    );
    let _ = writeln!(
        out,
        "{} chunks in the index ({} embedded now, {} pages read) in {:.1} s",
        r.chunks, r.embedded, r.pages, r.seconds
    );
    if !r.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{} files skipped (unsupported type, hidden, links)",
            r.skipped.len()
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

fn serve(cfg: &Config, index: &Path, addr: &str, banner: Option<String>) -> Result<ExitCode> {
    let embedder = load_embedder(cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        hort::server::serve(cfg, index, addr, embedder, |local| {
            eprintln!("hort: serving {} on http://{local}", index.display());
            if let Some(b) = banner {
                println!("{}", b.replace("{addr}", &local.to_string()));
            }
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The sample corpus and its configuration, found beside the working
/// directory or the executable (`target/release/hort` in a checkout).
fn find_fixtures() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("fixtures")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            candidates.push(root.join("fixtures"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.join("hort.toml").is_file())
}

fn demo(config: Option<&Path>, index: Option<PathBuf>, addr: Option<String>) -> Result<ExitCode> {
    let fixtures = find_fixtures().context("cannot find fixtures/ (run from the repository)")?;
    let cfg_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| fixtures.join("hort.toml"));
    let cfg = Config::load(&cfg_path)?;
    let index = index.unwrap_or_else(|| cfg.index_path());
    let corpus = fixtures.join("corpus");
    eprintln!(
        "hort: ingesting the sample corpus {} into {}",
        corpus.display(),
        index.display()
    );
    // The demo's own index: rebuild it when the configured model changed
    // (any other index refuses a different model and asks for a re-ingest).
    if let Ok(Some(m)) = hort::store::manifest::Manifest::read(&index.join("MANIFEST")) {
        let built_with = m.embedder;
        // The id from the model's definition: no need to load the model twice.
        let configured = match embed::model_files(&cfg.embed, |p| cfg.resolve(p))? {
            Some(files) => files.id,
            None => load_embedder(&cfg)?.id().to_string(),
        };
        if built_with != configured {
            eprintln!(
                "hort: the demo index was built with {built_with}; rebuilding it with {configured}"
            );
            std::fs::remove_dir_all(&index)
                .with_context(|| format!("removing {}", index.display()))?;
        }
    }
    let report = run_ingest(&cfg, &index, &[corpus], false)?;
    print_ingest(&report, &index);
    let addr = addr.unwrap_or_else(|| cfg.server.addr.clone());
    let banner = std::fs::read_to_string(fixtures.join("demo-banner.txt")).ok();
    serve(&cfg, &index, &addr, banner)
}
