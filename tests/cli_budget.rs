//! `routec budget status` and `routec budget unlock` against a real SQLite
//! store that a ledger (as a router would) has spent into.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use router_core::Usd;
use router_runtime::{BudgetLedger, ReserveError, Spend, SqliteStore};

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policies/seed.route")
}

fn routec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routec")).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_halt_and_unlock_lifts_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budget.db");
    let url = format!("sqlite:{}", db.display());
    let policy = policy_lang::compile_path(seed()).unwrap().into_policy();
    let id = policy.workload_id("content_summary").unwrap();
    {
        let ledger = BudgetLedger::builder(&policy, Arc::new(SqliteStore::open(&db).await.unwrap())).build();
        let all = Spend {
            tokens: 5_000_000,
            usd: Usd::ZERO,
        };
        ledger.reserve(id, all).await.unwrap().commit(all).await.unwrap();
        assert!(matches!(
            ledger
                .reserve(
                    id,
                    Spend {
                        tokens: 1,
                        usd: Usd::ZERO
                    }
                )
                .await,
            Err(ReserveError::Halted(_))
        ));
    }
    let seed = seed();
    let seed = seed.to_str().unwrap();

    let out = routec(&["budget", "status", "--store", &url, "--policy", seed]);
    assert_eq!(out.status.code(), Some(1), "a halted workload exits 1: {out:?}");
    let table = text(&out);
    let row = table.lines().find(|l| l.starts_with("content_summary")).unwrap();
    for cell in ["tokens_per_day", "5000000", "halted", "alerted"] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("audit_report") && l.contains("unbudgeted")),
        "{table}"
    );

    let out = routec(&["budget", "unlock", "content_summary", "--store", &url, "--policy", seed]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        text(&out).contains("unlocked `content_summary`: tokens_per_day lifted"),
        "{out:?}"
    );

    let out = routec(&[
        "budget", "status", "--store", &url, "--policy", seed, "--format", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let limits = &json["workloads"][1]["limits"][0];
    assert_eq!(json["workloads"][1]["workload"], "content_summary");
    assert_eq!(limits["committed"], 5_000_000);
    assert_eq!(limits["halted"], false);
    assert_eq!(limits["unlocked"], true);
}

#[test]
fn an_unreachable_store_and_an_unknown_workload_are_usage_errors() {
    let seed = seed();
    let seed = seed.to_str().unwrap();
    let out = routec(&[
        "budget",
        "status",
        "--store",
        "redis://:hunter2@127.0.0.1:1/0",
        "--policy",
        seed,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("budget store `redis://127.0.0.1:1/0` is unavailable"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    let out = routec(&["budget", "unlock", "nope", "--store", "memory:", "--policy", seed]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the policy has no workload `nope`"));
}
