//! What triggers a reload: SIGHUP, and changes to the policy or keys files.
//!
//! Why watch parent directories: editors and deploy tools replace a file
//! by writing a new one and renaming it over the old, which a watch on the
//! file itself (an inode) stops seeing. Why debounce: one save is several
//! events (create, write, rename), and a `git checkout` touches many files;
//! the reload waits until the files have been quiet for a moment, then
//! runs once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::live::Live;
use crate::server::{Gateway, StartError};

/// How long the files must be quiet before a reload runs.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Reload triggers running in the background; dropping this stops them.
#[derive(Debug)]
pub struct ReloadTriggers {
    _watcher: Option<RecommendedWatcher>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for ReloadTriggers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Gateway {
    /// Reloads on SIGHUP (Unix) and, if `watch_files`, whenever the policy
    /// or keys file changes. A built-in policy has nothing to reload.
    ///
    /// # Errors
    /// [`StartError::Watch`] when the signal handler or file watcher cannot
    /// be installed.
    pub fn reload_triggers(&self, watch_files: bool) -> Result<ReloadTriggers, StartError> {
        let live = Arc::clone(self.live());
        let (tx, rx) = mpsc::channel::<()>(1);
        let mut tasks = vec![tokio::spawn(debounced_reloads(Arc::clone(&live), rx))];
        tasks.push(sighup(tx.clone())?);
        let watcher = if watch_files { watch_files_of(&live, tx)? } else { None };
        Ok(ReloadTriggers {
            _watcher: watcher,
            tasks,
        })
    }
}

#[cfg(unix)]
fn sighup(tx: mpsc::Sender<()>) -> Result<JoinHandle<()>, StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(|e| StartError::Watch(format!("SIGHUP: {e}")))?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    }))
}

#[cfg(not(unix))]
fn sighup(_tx: mpsc::Sender<()>) -> Result<JoinHandle<()>, StartError> {
    Ok(tokio::spawn(async {}))
}

/// Runs one reload per burst of triggers.
async fn debounced_reloads(live: Arc<Live>, mut rx: mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {
        // Wait for quiet: every new trigger restarts the wait.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(())) => {}
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // The outcome is logged and counted by `reload` itself.
        let _ = live.reload().await;
    }
}

/// The files whose changes matter: the policy file (or the `.route` files
/// of the policy directory) and the keys file.
#[derive(Debug)]
struct Interest {
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

impl Interest {
    fn matches(&self, path: &Path) -> bool {
        let path = normalise(path);
        self.files.contains(&path)
            || (path.extension().is_some_and(|e| e == "route") && path.parent().is_some_and(|d| self.dirs.contains(d)))
    }
}

fn normalise(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        // A deleted file cannot be canonicalised; its directory can.
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir).map_or_else(|_| path.to_owned(), |d| d.join(name)),
            _ => path.to_owned(),
        }
    })
}

fn watch_files_of(live: &Live, tx: mpsc::Sender<()>) -> Result<Option<RecommendedWatcher>, StartError> {
    let mut interest = Interest {
        files: HashSet::new(),
        dirs: HashSet::new(),
    };
    let mut watch_dirs = HashSet::new();
    let paths = live.source.path().into_iter().chain(live.keys_path.as_deref());
    for path in paths {
        let path = normalise(path);
        if path.is_dir() {
            interest.dirs.insert(path.clone());
            watch_dirs.insert(path);
        } else if let Some(dir) = path.parent() {
            watch_dirs.insert(dir.to_owned());
            interest.files.insert(path);
        }
    }
    if watch_dirs.is_empty() {
        return Ok(None);
    }
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event.paths.iter().any(|p| interest.matches(p)) {
            // Full: a reload is already pending, which will see this change.
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| StartError::Watch(e.to_string()))?;
    for dir in &watch_dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| StartError::Watch(format!("{}: {e}", dir.display())))?;
    }
    tracing::info!(dirs = ?watch_dirs, "watching for policy and keys changes");
    Ok(Some(watcher))
}
