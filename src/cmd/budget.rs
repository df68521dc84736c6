//! `routec budget`: read and unlock workload budgets in a budget store.
//!
//! The limits come from the policy; the spend from the store the routers
//! share (`memory:`, `sqlite:/path/file.db`, `redis://host:port/db`).
//! `status` shows, per workload and limit, the cap, committed and reserved
//! spend, what remains, and whether the limit halts the workload or alerted;
//! `unlock` lifts a halted workload's limits until they roll over.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use router_core::{Policy, Usd};
use router_runtime::{BudgetLedger, LimitKind, LimitStatus, WorkloadStatus, store_from_url};

use crate::exit;

/// Arguments of `routec budget`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(clap::Subcommand, Debug)]
enum BudgetCommand {
    /// Show every workload's limits, spend and halts (exit 0, 1 when a workload is halted, 2 on errors)
    Status {
        /// The budget store: `memory:`, `sqlite:/path/file.db` or `redis://host:port/db`
        #[arg(long)]
        store: String,
        /// The policy: a `.route` file or a directory of them
        #[arg(long)]
        policy: PathBuf,
        /// Output format (JSON dollar amounts are in nano-dollars)
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Lift the limits that halt WORKLOAD until each rolls over (spend is still counted)
    Unlock {
        /// The workload to unlock
        workload: String,
        /// The budget store: `memory:`, `sqlite:/path/file.db` or `redis://host:port/db`
        #[arg(long)]
        store: String,
        /// The policy: a `.route` file or a directory of them
        #[arg(long)]
        policy: PathBuf,
    },
}

/// How `status` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// A table.
    Human,
    /// JSON: `{"store": …, "workloads": [{"workload": …, "limits": [...]}]}`.
    Json,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    let result = match args.command {
        BudgetCommand::Status { store, policy, format } => rt.block_on(status(&store, &policy, format)),
        BudgetCommand::Unlock {
            workload,
            store,
            policy,
        } => rt.block_on(unlock(&workload, &store, &policy)),
    };
    match result {
        Ok((text, code)) => {
            print!("{text}");
            code
        }
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

async fn open(store: &str, policy: &Path) -> Result<BudgetLedger, String> {
    let policy = load_policy(policy)?;
    let store = store_from_url(store).await.map_err(|e| e.to_string())?;
    Ok(BudgetLedger::builder(&policy, store).build())
}

/// Compiles the policy; on errors, the first diagnostic and a pointer to
/// `routec check` (which renders them all).
fn load_policy(path: &Path) -> Result<Policy, String> {
    match policy_lang::compile_path(path) {
        Ok(compiled) => Ok(compiled.into_policy()),
        Err(report) => {
            let first = report
                .diagnostics()
                .next()
                .map(|d| d.to_string())
                .unwrap_or_else(|| "it does not compile".to_owned());
            Err(format!(
                "policy `{}` has errors ({first}); run `routec check {}` for details",
                path.display(),
                path.display()
            ))
        }
    }
}

async fn status(store: &str, policy: &Path, format: Format) -> Result<(String, u8), String> {
    let ledger = open(store, policy).await?;
    let workloads = ledger.status().await.map_err(|e| e.to_string())?;
    let code = if workloads.iter().any(WorkloadStatus::halted) {
        exit::FAILED
    } else {
        exit::OK
    };
    let text = match format {
        Format::Json => {
            let doc = serde_json::json!({ "store": ledger.store().describe(), "workloads": workloads });
            let mut s = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        Format::Human => render_table(&ledger.store().describe(), &workloads),
    };
    Ok((text, code))
}

async fn unlock(workload: &str, store: &str, policy: &Path) -> Result<(String, u8), String> {
    let ledger = open(store, policy).await?;
    let Some(id) = ledger.workload_id(workload) else {
        return Err(format!("the policy has no workload `{workload}`"));
    };
    let lifted = ledger.unlock(id).await.map_err(|e| e.to_string())?;
    let text = if lifted.is_empty() {
        format!("workload `{workload}` is not halted; nothing to unlock\n")
    } else {
        let names: Vec<&str> = lifted.iter().map(|l| l.as_str()).collect();
        format!(
            "unlocked `{workload}`: {} lifted until the period rolls over (spend is still counted)\n",
            names.join(", ")
        )
    };
    Ok((text, exit::OK))
}

fn amount(limit: LimitKind, n: u64) -> String {
    if limit.is_usd() {
        Usd::from_nanos(n).to_string()
    } else {
        n.to_string()
    }
}

fn state(l: &LimitStatus) -> String {
    let mut s = if l.halted {
        "halted".to_owned()
    } else if l.unlocked {
        "unlocked".to_owned()
    } else {
        "ok".to_owned()
    };
    if l.alert_fired {
        s.push_str(", alerted");
    }
    s
}

fn render_table(store: &str, workloads: &[WorkloadStatus]) -> String {
    let header = [
        "WORKLOAD",
        "LIMIT",
        "PERIOD",
        "CAP",
        "COMMITTED",
        "RESERVED",
        "REMAINING",
        "STATE",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for w in workloads {
        if w.limits.is_empty() {
            rows.push([
                w.workload.clone(),
                "-".into(),
                "-".into(),
                "unbudgeted".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        for l in &w.limits {
            rows.push([
                w.workload.clone(),
                l.limit.to_string(),
                l.period.clone(),
                amount(l.limit, l.cap),
                amount(l.limit, l.committed),
                amount(l.limit, l.reserved),
                amount(l.limit, l.remaining),
                state(l),
            ]);
        }
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!("budget store `{store}`\n");
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for r in &rows {
        line(r);
    }
    out
}
