//! One short function per command, each calling the library: the service
//! layer for what a front end does (query, serve, mcp, approvals, agents),
//! the ingest pipeline and the store's factory for maintenance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::args::{AgentsCmd, ApprovalsCmd, AuditCmd, Cli, Cmd, MigrateTarget, QueryArgs};
use crate::output::{print_answer, print_hits, print_ingest};
use hort::acl::{Classification, Principal};
use hort::config::{Backend, Config};
use hort::embed::{self, Embedder};
use hort::ingest::{self, IngestOptions, IngestReport};
use hort::service::{self, Call, Query, Service};
use hort::store::{self, Store};

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let mut cfg = Config::discover(cli.config.as_deref())?;
    if let Some(t) = cli.threads {
        if t > 1024 {
            bail!("--threads must be between 0 (every core) and 1024");
        }
        cfg.embed.threads = t;
    }
    let index = cli.index.clone().unwrap_or_else(|| cfg.index_path());
    match cli.cmd {
        Cmd::Ingest { dirs, json, quiet } => ingest_cmd(&cfg, &index, &dirs, json, quiet),
        Cmd::Query(q) => query(&cfg, &index, q),
        Cmd::Run {
            workflow,
            task,
            as_,
            json,
        } => run_workflow(&cfg, &index, &workflow, &task, &as_, json),
        Cmd::Serve { addr } => {
            let addr = addr.unwrap_or_else(|| cfg.server.addr.clone());
            serve(&cfg, &index, &addr, None)
        }
        Cmd::Demo { addr } => demo(cli.config.as_deref(), cli.index.clone(), addr),
        Cmd::Status { verify, json } => status(&cfg, &index, verify, json),
        Cmd::Compact => compact(&cfg, &index),
        Cmd::Keygen => keygen(),
        Cmd::Migrate { to, url, quiet } => migrate(&cfg, &index, to, url, quiet),
        Cmd::Audit {
            cmd:
                AuditCmd::Verify {
                    path,
                    json,
                    no_head,
                },
        } => audit_verify(&cfg, path.as_deref(), json, no_head),
        Cmd::Mcp { as_ } => mcp(&cfg, &index, &as_),
        Cmd::Approvals { cmd } => approvals(&cfg, cmd),
        Cmd::Agents { cmd } => agents(&cfg, cmd),
        Cmd::Bench { suite } => crate::bench::run(&cfg, suite),
        Cmd::PdfWorker { .. } => Ok(ExitCode::SUCCESS),
    }
}

pub fn load_embedder(cfg: &Config) -> Result<Arc<dyn Embedder>> {
    embed::from_config(&cfg.embed, |p| cfg.resolve(p)).context("loading the embedding model")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What `hort ingest` writes into, for its summary.
fn store_label(cfg: &Config, index: &Path) -> String {
    match cfg.store.backend {
        Backend::Embedded => index.display().to_string(),
        Backend::Postgres => "the database".to_string(),
    }
}

/// Opens the configured store for writing (an empty embedded index is
/// made if there is none).
fn open_store(cfg: &Config, index: &Path, embedder: &dyn Embedder) -> Result<Arc<dyn Store>> {
    Ok(store::open(
        cfg,
        index,
        &service::store_spec(cfg, embedder),
        true,
    )?)
}

/// Makes the store match the folders.
pub fn run_ingest(
    cfg: &Config,
    index: &Path,
    dirs: &[PathBuf],
    quiet: bool,
) -> Result<IngestReport> {
    // A missing folder fails before an index is created for nothing; then
    // the store: a wrong URL or model fails before the work.
    ingest::folders(dirs)?;
    let embedder = load_embedder(cfg)?;
    let store = open_store(cfg, index, embedder.as_ref())?;
    let mut opts = IngestOptions::from_config(cfg, IngestOptions::subprocess_pdf(cfg));
    opts.progress = !quiet;
    Ok(ingest::ingest_into(
        store.as_ref(),
        dirs,
        embedder.as_ref(),
        &opts,
    )?)
}

fn ingest_cmd(
    cfg: &Config,
    index: &Path,
    dirs: &[PathBuf],
    json: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let report = run_ingest(cfg, index, dirs, quiet || json)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_ingest(&report, &store_label(cfg, index));
    }
    Ok(ExitCode::SUCCESS)
}

/// The asker: a principal of the configuration, or given teams and clearance.
fn asker(
    cfg: &Config,
    name: Option<String>,
    team: Vec<String>,
    clearance: Option<String>,
) -> Result<Principal> {
    match (name, clearance) {
        (Some(name), _) => {
            let p = cfg
                .principal(&name)
                .with_context(|| format!("no principal named {name:?} in the configuration"))?;
            Ok(Principal::new(&p.name, &p.teams, p.clearance))
        }
        (None, Some(c)) => {
            let c: Classification = c.parse()?;
            Ok(Principal::new("cli", &team, c))
        }
        (None, None) => bail!("say who is asking: --as NAME, or --team T --clearance LEVEL"),
    }
}

/// `hort query`: the same use cases as `/v1/search` and `/v1/query` —
/// validation, reranking, budgets and spending, the audit record.
/// A use case's error as the operator at the terminal sees it: in full
/// (a remote client gets only `internal error` for the same failure).
#[allow(clippy::too_many_arguments)]
fn detailed(e: service::Error) -> anyhow::Error {
    anyhow::anyhow!(e.detail())
}

fn query(cfg: &Config, index: &Path, args: QueryArgs) -> Result<ExitCode> {
    let QueryArgs {
        text,
        as_principal,
        team,
        clearance,
        k,
        json,
        no_generate,
        filter,
    } = args;
    let who = &asker(cfg, as_principal, team, clearance)?;
    let text = text.as_str();
    let filter = filter.doc_filter()?;
    let svc = Arc::new(Service::open(cfg, load_embedder(cfg)?, index, false)?);
    let call = Call::new(&format!("cli-{}", std::process::id()), "cli:query");
    call.set_principal(&who.name);
    let q = Query {
        text,
        k,
        filter: filter.as_ref(),
    };
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        // The principal's limits hold whichever front end it uses.
        svc.admit(who, None).map_err(detailed)?;
        if no_generate {
            let found = svc.search(&call, who, q).await.map_err(detailed)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({ "hits": found.hits }))?
                );
            } else {
                print_hits(&found.hits, who);
            }
        } else {
            let a = svc.ask(&call, who, q, None).await.map_err(detailed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                print_answer(&a);
            }
        }
        Ok::<_, anyhow::Error>(())
    });
    let status = match &outcome {
        Ok(()) => 200,
        Err(_) => 400,
    };
    call.finish(&svc, status, outcome.as_ref().err().map(|e| e.to_string()));
    svc.flush();
    outcome.map(|()| ExitCode::SUCCESS)
}

/// `hort run`: a workflow on a task, each step on stderr as it happens.
fn run_workflow(
    cfg: &Config,
    index: &Path,
    workflow: &str,
    task: &str,
    as_: &str,
    json: bool,
) -> Result<ExitCode> {
    let svc = Arc::new(Service::open(cfg, load_embedder(cfg)?, index, false)?);
    let (who, roles) = svc
        .principal(as_)
        .with_context(|| format!("no principal {as_:?} in the configuration"))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<hort::service::runs::Step>();
    let rt = runtime()?;
    let report = rt.block_on(async {
        let printer = tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                let indent = "  ".repeat(s.depth as usize);
                let target = s.target.map(|t| format!(" {t}")).unwrap_or_default();
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.detail)
                };
                eprintln!(
                    "{indent}[{}] {}{target} → {}{detail}",
                    s.agent, s.kind, s.outcome
                );
            }
        });
        let r = svc
            .run_workflow(&who, &roles, workflow, task, Some(tx))
            .await
            .map_err(detailed);
        let _ = printer.await;
        r
    });
    svc.flush();
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(a) = &report.answer {
            println!("{a}\n");
        }
        let status = serde_json::to_value(report.status)?;
        println!(
            "run {}: {}{} — {} model turns, {} tool calls, {} tokens, {:.4} USD, {:.1} s",
            report.id,
            status.as_str().unwrap_or(""),
            report
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            report.usage.steps,
            report.usage.actions,
            report.usage.tokens,
            report.usage.cost_usd,
            report.usage.seconds
        );
        for f in &report.flags {
            if !f.starts_with("run:") {
                println!("flag: {f}");
            }
        }
    }
    Ok(match report.status {
        hort::service::runs::RunStatus::Done => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

pub fn serve(cfg: &Config, index: &Path, addr: &str, banner: Option<String>) -> Result<ExitCode> {
    let embedder = load_embedder(cfg)?;
    runtime()?.block_on(async {
        hort::server::serve(cfg, index, addr, embedder, |local| {
            eprintln!("hort: serving on http://{local}");
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
    // The id from the model's definition: no need to load the model twice.
    let configured = || -> Result<String> {
        Ok(match embed::model_files(&cfg.embed, |p| cfg.resolve(p))? {
            Some(files) => files.id,
            None => load_embedder(&cfg)?.id().to_string(),
        })
    };
    if let Some((built_with, configured)) = discard_index_of_other_model(&index, configured)? {
        eprintln!(
            "hort: the demo index was built with {built_with}; rebuilding it with {configured}"
        );
    }
    let report = run_ingest(&cfg, &index, &[corpus], false)?;
    print_ingest(&report, &store_label(&cfg, &index));
    let addr = addr.unwrap_or_else(|| cfg.server.addr.clone());
    let banner = std::fs::read_to_string(fixtures.join("demo-banner.txt")).ok();
    serve(&cfg, &index, &addr, banner)
}

/// Removes the embedded index at `index` if another model, or the same
/// model's vectors in another space (`embed::space`), made it than the one
/// `model_id` names (asked only if there is an index); returns what it held
/// and what the model records now. For indexes hort builds for itself (the
/// demo's, the benches'): any other index refuses and asks for a re-ingest.
pub fn discard_index_of_other_model(
    index: &Path,
    model_id: impl FnOnce() -> Result<String>,
) -> Result<Option<(String, String)>> {
    let Ok(Some(m)) = store::manifest::Manifest::read(&index.join(store::manifest::FILE)) else {
        return Ok(None);
    };
    let configured = embed::space::index_id(&model_id()?);
    if m.embedder == configured {
        return Ok(None);
    }
    std::fs::remove_dir_all(index).with_context(|| format!("removing {}", index.display()))?;
    Ok(Some((m.embedder, configured)))
}

fn status(cfg: &Config, index: &Path, verify: bool, json: bool) -> Result<ExitCode> {
    let svc = Service::open(cfg, load_embedder(cfg)?, index, false)?;
    let view = svc.reader();
    if verify {
        view.verify_files()?;
    }
    let s = view.stats()?;
    let (model, dim) = view.model();
    let readers = match hort::ingest::IngestOptions::subprocess_pdf(cfg) {
        hort::ingest::loader::PdfIsolation::Subprocess { engines, .. } => engines.describe(),
        hort::ingest::loader::PdfIsolation::InProcess { .. } => {
            "pdf-extract in process (the hort binary could not be found)".to_string()
        }
    };
    let status = serde_json::json!({
        "index": index,
        "backend": svc.backend(),
        "generation": s.generation,
        "embedder": model,
        "dimension": dim,
        "documents": s.documents,
        "documents_without_rule": s.unruled,
        "chunks": s.chunks,
        "segments": s.segments,
        "segment_bytes": s.bytes,
        "teams": s.teams,
        "injection_detector": svc.injection_detector(),
        "pdf_readers": readers,
        "verified": verify,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("store      {} ({})", store_label(cfg, index), svc.backend());
        println!("generation {}", s.generation);
        println!("model      {model}");
        println!(
            "documents  {} ({} without an access rule)",
            s.documents, s.unruled
        );
        println!(
            "chunks     {} in {} segments ({:.1} MB)",
            s.chunks,
            s.segments,
            s.bytes as f64 / 1e6
        );
        println!("injection  {}", svc.injection_detector());
        println!("pdf        {readers}");
        if verify {
            println!("checksums  ok");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn compact(cfg: &Config, index: &Path) -> Result<ExitCode> {
    let embedder = load_embedder(cfg)?;
    let store = store::open(
        cfg,
        index,
        &service::store_spec(cfg, embedder.as_ref()),
        false,
    )?;
    let mut w = store.writer()?;
    let stats = w.compact(true)?;
    let generation = w.commit()?;
    println!(
        "compacted {} segments, dropped {} deleted chunks (generation {generation})",
        stats.merged_segments, stats.dropped_chunks
    );
    Ok(ExitCode::SUCCESS)
}

fn keygen() -> Result<ExitCode> {
    let mut bytes = [0u8; 32];
    hort::text::system_random(&mut bytes).context("reading /dev/urandom")?;
    let key: String = format!(
        "hort_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    println!("api key:        {key}");
    println!("api_key_sha256 = \"{}\"", hort::auth::key_hash_hex(&key));
    println!("\nGive the key to its owner; put only the hash in hort.toml.");
    Ok(ExitCode::SUCCESS)
}

/// Copies between the embedded index and PostgreSQL, vectors included.
fn migrate(
    cfg: &Config,
    index: &Path,
    to: MigrateTarget,
    url: Option<String>,
    quiet: bool,
) -> Result<ExitCode> {
    let mut db = cfg.clone();
    db.store.backend = Backend::Postgres;
    if let Some(u) = url {
        db.store.url = Some(u);
    }
    if db.store.url().is_none() {
        bail!("no database: give --url, set [store] url, or HORT_DATABASE_URL");
    }
    let mut embedded = cfg.clone();
    embedded.store.backend = Backend::Embedded;
    let (from, into) = match to {
        MigrateTarget::Postgres => (&embedded, &db),
        MigrateTarget::Embedded => (&db, &embedded),
    };
    // The source is read as it is; the target is made for its model
    // (nothing is embedded again).
    let src_spec = match to {
        MigrateTarget::Postgres => {
            let m = store::manifest::Manifest::read(&index.join(store::manifest::FILE))?
                .ok_or_else(|| store::StoreError::NotFound(index.to_path_buf()))?;
            store::Spec {
                embedder: m.embedder,
                dim: m.dim as usize,
                chunker: m.chunker,
            }
        }
        MigrateTarget::Embedded => {
            let embedder = load_embedder(cfg)?;
            service::store_spec(cfg, embedder.as_ref())
        }
    };
    let started = std::time::Instant::now();
    let src = store::open(from, index, &src_spec, false)?;
    let reader = src.reader();
    let (model, dim) = reader.model();
    let spec = store::Spec {
        embedder: model,
        dim,
        chunker: src_spec.chunker.clone(),
    };
    let dst = store::open(into, index, &spec, true)?;
    let mut w = dst.writer()?;
    let r = store::migrate::copy(reader.as_ref(), w.as_mut(), !quiet)?;
    println!(
        "migrated in {:.1} s: {} added, {} updated, {} removed, {} unchanged ({} chunks copied)",
        started.elapsed().as_secs_f64(),
        r.added,
        r.updated,
        r.removed,
        r.unchanged,
        r.chunks
    );
    Ok(ExitCode::SUCCESS)
}

fn audit_verify(cfg: &Config, path: Option<&Path>, json: bool, no_head: bool) -> Result<ExitCode> {
    let Some((what, v)) = hort::gateway::verify_audit(cfg, path, !no_head)? else {
        eprintln!("hort: error: no audit log: give its path or set [audit] path in hort.toml");
        return Ok(ExitCode::from(2));
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for p in &v.problems {
            println!("{what}: {p}");
        }
        if v.problems.is_empty() {
            println!("{what}: {} records, chain intact", v.records);
        } else {
            println!(
                "{what}: {} records, {} problem(s): the log was altered",
                v.records,
                v.problems.len()
            );
        }
    }
    Ok(if v.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn mcp(cfg: &Config, index: &Path, name: &str) -> Result<ExitCode> {
    let svc = Arc::new(Service::open(cfg, load_embedder(cfg)?, index, false)?);
    let (principal, roles) = svc
        .principal(name)
        .with_context(|| format!("no principal {name:?} in the configuration"))?;
    runtime()?.block_on(async {
        // Pick up commits of concurrent ingests, as `serve` does.
        let refresher = svc.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                let r = refresher.clone();
                let _ = tokio::task::spawn_blocking(move || r.refresh()).await;
            }
        });
        let session =
            hort::mcp::Session::new(format!("stdio-{}", std::process::id()), principal, roles);
        hort::mcp::serve_stdio(svc, session).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The principal and roles an operator names with `--as`; with no name,
/// one who sees no document text.
fn viewer(cfg: &Config, name: Option<&str>) -> Result<(Principal, Vec<String>)> {
    match name {
        None => Ok((
            Principal::new("cli", &[] as &[&str], Classification::Public),
            Vec::new(),
        )),
        Some(n) => {
            let p = cfg
                .principal(n)
                .with_context(|| format!("no principal {n:?} in the configuration"))?;
            Ok((
                Principal::new(&p.name, &p.teams, p.clearance),
                p.roles.clone(),
            ))
        }
    }
}

/// Records a CLI action in the audit log (shared with running servers).
fn audit_cli(cfg: &Config, call: &Call) {
    match hort::gateway::open(cfg) {
        Ok(g) => {
            if let Err(e) = call.record(&g, 200, None) {
                eprintln!("hort: warning: audit log: {e}");
            }
            g.flush();
        }
        Err(e) => eprintln!("hort: warning: audit log: {e}"),
    }
}

fn approvals(cfg: &Config, cmd: ApprovalsCmd) -> Result<ExitCode> {
    let store = service::approvals::Approvals::open(&cfg.resolve(&cfg.mcp.approvals_dir))?;
    match cmd {
        ApprovalsCmd::List { status, json, as_ } => {
            let (who, _) = viewer(cfg, as_.as_deref())?;
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
                    let what = if a.summary.is_empty() {
                        a.arguments.to_string()
                    } else {
                        a.summary.clone()
                    };
                    println!(
                        "{}  {:<9} {:<16} {:<12} {}  {what}",
                        a.id, a.status, a.tool, a.principal, a.created_at
                    );
                }
            }
        }
        ApprovalsCmd::Show { id, as_ } => {
            let (who, _) = viewer(cfg, Some(&as_))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&store.get(&id)?.view_for(&who))?
            );
        }
        ApprovalsCmd::Approve { id, as_, reason } => decide(cfg, &store, &id, &as_, reason, true)?,
        ApprovalsCmd::Reject { id, as_, reason } => decide(cfg, &store, &id, &as_, reason, false)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn decide(
    cfg: &Config,
    store: &service::approvals::Approvals,
    id: &str,
    name: &str,
    reason: Option<String>,
    approve: bool,
) -> Result<()> {
    let (who, roles) = viewer(cfg, Some(name))?;
    let verb = if approve { "approve" } else { "reject" };
    let call = Call::new(
        &format!("cli-{}", std::process::id()),
        &format!("cli:approvals/{verb}"),
    );
    call.set_principal(name);
    let a = service::decide(store, &call, &who, &roles, id, approve, reason).map_err(detailed)?;
    audit_cli(cfg, &call);
    println!(
        "{} {}: {} by {} ({})",
        a.id, a.status, a.tool, a.principal, a.summary
    );
    Ok(())
}

fn agents(cfg: &Config, cmd: AgentsCmd) -> Result<ExitCode> {
    let ks = service::KillSwitch::new(cfg);
    let call = |verb: &str, flag: &str| {
        let c = Call::new(
            &format!("cli-{}", std::process::id()),
            &format!("cli:agents/{verb}"),
        );
        c.set_principal("cli");
        c.add_flag(flag);
        c
    };
    match cmd {
        AgentsCmd::Stop => {
            ks.stop("cli").context("writing the stop file")?;
            audit_cli(cfg, &call("stop", "agents_stopped"));
            println!(
                "agents stopped: every MCP session refuses tool calls (hort agents resume to undo)"
            );
        }
        AgentsCmd::Resume => {
            ks.resume().context("removing the stop file")?;
            audit_cli(cfg, &call("resume", "agents_resumed"));
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
