//! The policies being edited: each directory of `.route` files is one
//! policy, as `routec check DIR` sees it, with the editor's unsaved buffers
//! in place of the files on disk. Every change re-runs the compiler's own
//! parse and checks on the whole policy (~20 ms for 10,000 lines), so the
//! diagnostics are exactly `routec check`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lsp_types::{Diagnostic, Url};
use policy_lang::{CheckReport, Policy, SourceFile, Symbol};

use crate::diagnostics;
use crate::line_index::LineIndex;

/// One file of a policy.
#[derive(Debug)]
pub(crate) struct File {
    /// The text, or `None` when the file on disk could not be read as a
    /// policy (the load error is in `load_error`).
    pub(crate) text: Option<Arc<str>>,
    pub(crate) load_error: Option<CheckReport>,
    pub(crate) index: LineIndex,
    /// Whether the editor has it open (its buffer, not the disk, is the text).
    pub(crate) open: bool,
    /// Bumped on every change, to tell whether `symbols_of` is current.
    pub(crate) generation: u64,
    /// The names defined and used in this file, from the last text that
    /// parsed, and the generation they came from.
    pub(crate) definitions: Vec<Symbol>,
    pub(crate) references: Vec<Symbol>,
    pub(crate) symbols_of: Option<u64>,
}

impl File {
    fn new(text: Option<Arc<str>>, load_error: Option<CheckReport>, open: bool) -> Self {
        let index = text.as_deref().map(LineIndex::new).unwrap_or_default();
        File {
            text,
            load_error,
            index,
            open,
            generation: 0,
            definitions: Vec::new(),
            references: Vec::new(),
            symbols_of: None,
        }
    }

    pub(crate) fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    fn set_text(&mut self, text: Arc<str>) {
        self.index = LineIndex::new(&text);
        self.text = Some(text);
        self.load_error = None;
        self.generation += 1;
    }
}

/// One directory's policy.
#[derive(Debug, Default)]
pub(crate) struct PolicyDir {
    /// By path, in the order `policy_lang::load` reads a directory.
    pub(crate) files: BTreeMap<PathBuf, File>,
    /// The IR of the last version that passed every check, for hover and
    /// explain.
    pub(crate) policy: Option<Policy>,
    /// Files whose last published diagnostics were not empty.
    published: BTreeSet<PathBuf>,
    /// The diagnostics last published per file, with their quick fixes.
    pub(crate) diagnostics: BTreeMap<PathBuf, Vec<Diagnostic>>,
}

/// Every policy the editor has touched.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub(crate) dirs: BTreeMap<PathBuf, PolicyDir>,
}

/// Diagnostics to send: one list per file, empty to clear.
pub(crate) type Publish = Vec<(Url, Vec<Diagnostic>)>;

impl Workspace {
    /// The policy a file belongs to, reading its directory's other files
    /// from disk the first time.
    pub(crate) fn dir_of(&mut self, path: &Path) -> &mut PolicyDir {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.dirs.entry(dir).or_insert_with_key(|dir| {
            let mut policy = PolicyDir::default();
            for file in route_files(dir) {
                let loaded = read_from_disk(&file);
                policy.files.insert(file, loaded);
            }
            policy
        })
    }

    /// Reads a directory (the workspace root) so its diagnostics show before
    /// any file is opened; `None` when it holds no `.route` files.
    pub(crate) fn open_dir(&mut self, dir: &Path) -> Option<Publish> {
        if route_files(dir).is_empty() {
            return None;
        }
        let probe = dir.join("_");
        let policy = self.dir_of(&probe);
        Some(policy.analyse())
    }

    /// The editor opened or changed `path`: its buffer is now the text.
    pub(crate) fn set_text(&mut self, path: &Path, text: Arc<str>) -> Publish {
        let policy = self.dir_of(path);
        match policy.files.get_mut(path) {
            Some(file) => {
                file.open = true;
                file.set_text(text);
            }
            None => {
                let mut file = File::new(None, None, true);
                file.set_text(text);
                policy.files.insert(path.to_path_buf(), file);
            }
        }
        policy.analyse()
    }

    /// The editor closed `path`: the file on disk is the text again (or the
    /// file leaves the policy when it is not on disk, or not a `.route` file).
    pub(crate) fn close(&mut self, path: &Path) -> Publish {
        let policy = self.dir_of(path);
        let on_disk = path.is_file() && path.extension().is_some_and(|e| e == "route");
        if on_disk {
            policy.files.insert(path.to_path_buf(), read_from_disk(path));
        } else {
            policy.files.remove(path);
        }
        let mut publish = policy.analyse();
        if !on_disk && let Ok(uri) = Url::from_file_path(path) {
            publish.push((uri, Vec::new()));
        }
        publish
    }

    /// A file changed on disk: re-read it unless the editor has it open.
    pub(crate) fn changed_on_disk(&mut self, path: &Path) -> Option<Publish> {
        let dir = path.parent()?;
        let policy = self.dirs.get_mut(dir)?;
        if policy.files.get(path).is_some_and(|f| f.open) {
            return None;
        }
        if path.is_file() {
            policy.files.insert(path.to_path_buf(), read_from_disk(path));
        } else {
            policy.files.remove(path);
        }
        Some(policy.analyse())
    }

    /// The file at `path` and its policy, if the server knows it.
    pub(crate) fn file(&self, path: &Path) -> Option<(&PolicyDir, &File)> {
        let policy = self.dirs.get(path.parent()?)?;
        Some((policy, policy.files.get(path)?))
    }
}

impl PolicyDir {
    /// Re-runs parse and every check on the current texts and returns the
    /// diagnostics to publish, clearing files that no longer have any.
    pub(crate) fn analyse(&mut self) -> Publish {
        let paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        let mut sources = Vec::new();
        let mut source_paths = Vec::new();
        for (path, file) in &self.files {
            if let Some(text) = &file.text {
                sources.push(SourceFile::new(path.display().to_string(), Arc::clone(text)));
                source_paths.push(path.clone());
            }
        }
        let report = match policy_lang::parse(&sources) {
            Ok(ast) => {
                let symbols = ast.symbols();
                for file in self.files.values_mut() {
                    file.definitions.clear();
                    file.references.clear();
                    file.symbols_of = Some(file.generation);
                }
                for sym in symbols.definitions() {
                    if let Some(file) = source_paths.get(sym.file()).and_then(|p| self.files.get_mut(p)) {
                        file.definitions.push(sym.clone());
                    }
                }
                for sym in symbols.references() {
                    if let Some(file) = source_paths.get(sym.file()).and_then(|p| self.files.get_mut(p)) {
                        file.references.push(sym.clone());
                    }
                }
                let (policy, report) = policy_lang::check_and_lower(&ast);
                // Only a policy that passed is kept: ids in one that did not
                // may point nowhere. Until the next one passes, the last one
                // that did answers hovers by name.
                if report.passed() {
                    self.policy = Some(policy);
                }
                report
            }
            Err(report) => {
                // Some file does not parse. Files that changed since their
                // names were read are parsed alone, so navigation keeps
                // working in every file that does parse.
                for (path, file) in &mut self.files {
                    if file.symbols_of == Some(file.generation) {
                        continue;
                    }
                    let Some(text) = &file.text else { continue };
                    let alone = SourceFile::new(path.display().to_string(), Arc::clone(text));
                    if let Ok(ast) = policy_lang::parse(std::slice::from_ref(&alone)) {
                        let symbols = ast.symbols();
                        file.definitions = symbols.definitions().to_vec();
                        file.references = symbols.references().to_vec();
                        file.symbols_of = Some(file.generation);
                    }
                }
                report
            }
        };
        let mut by_file: BTreeMap<PathBuf, Vec<Diagnostic>> = BTreeMap::new();
        diagnostics::convert(&report, &sources, &source_paths, self, &mut by_file);
        for (path, file) in &self.files {
            if let Some(load) = &file.load_error {
                by_file
                    .entry(path.clone())
                    .or_default()
                    .extend(diagnostics::file_level(load));
            }
        }
        let mut publish = Vec::new();
        let mut now_published = BTreeSet::new();
        self.diagnostics.clear();
        for path in paths {
            let list = by_file.remove(&path).unwrap_or_default();
            if !list.is_empty() {
                self.diagnostics.insert(path.clone(), list.clone());
            }
            let had = self.published.contains(&path);
            if list.is_empty() && !had {
                continue;
            }
            if !list.is_empty() {
                now_published.insert(path.clone());
            }
            if let Ok(uri) = Url::from_file_path(&path) {
                publish.push((uri, list));
            }
        }
        self.published = now_published;
        publish
    }

    /// Every definition in the policy.
    pub(crate) fn definitions(&self) -> impl Iterator<Item = (&PathBuf, &File, &Symbol)> {
        self.files
            .iter()
            .flat_map(|(p, f)| f.definitions.iter().map(move |s| (p, f, s)))
    }

    /// Every use of a name in the policy.
    pub(crate) fn references(&self) -> impl Iterator<Item = (&PathBuf, &File, &Symbol)> {
        self.files
            .iter()
            .flat_map(|(p, f)| f.references.iter().map(move |s| (p, f, s)))
    }
}

/// The `.route` files of a directory (not its subdirectories), as
/// `policy_lang::load` lists them.
fn route_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "route") && p.is_file())
        .collect();
    out.sort();
    out
}

/// A file read by the compiler's own loader, so a file that is too large or
/// not UTF-8 gets `routec check`'s diagnostic.
fn read_from_disk(path: &Path) -> File {
    match policy_lang::load(&[path]) {
        Ok(files) => match files.into_iter().next() {
            Some(f) => File::new(Some(Arc::from(f.text())), None, false),
            None => File::new(None, None, false),
        },
        Err(report) => File::new(None, Some(report), false),
    }
}
