//! The glob watcher: expands a file source's `include` globs (minus `exclude`) into the files
//! that match now, and asks `notify` to wake the reader when a folder the globs start in
//! changes, so new and renamed files are seen at once rather than at the next glob pass.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::fingerprint::DevIno;

/// A file source's globs, compiled once.
#[derive(Debug, Clone)]
pub struct Globs {
    pub include: Vec<glob::Pattern>,
    pub exclude: Vec<glob::Pattern>,
}

impl Globs {
    /// The regular files that match now, by device + inode (a file reached by two paths is one).
    pub fn expand(&self) -> HashMap<DevIno, PathBuf> {
        let mut found: HashMap<DevIno, PathBuf> = HashMap::new();
        for pattern in &self.include {
            let Ok(paths) = glob::glob(pattern.as_str()) else {
                continue;
            };
            for path in paths.flatten() {
                if self.exclude.iter().any(|p| p.matches_path(&path)) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_file() {
                    found.entry((meta.dev(), meta.ino())).or_insert(path);
                }
            }
        }
        found
    }

    /// Watches the folders the globs start in; each change sends `()` on `wake`. `None` when
    /// notifications are not available here (then the glob passes find everything, later).
    pub fn watch(
        &self,
        source: &str,
        wake: std::sync::mpsc::Sender<()>,
    ) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher;
        let mut watcher =
            match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if !matches!(event.kind, notify::EventKind::Access(_)) {
                        let _ = wake.send(());
                    }
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    warn!(source, "file notifications unavailable ({e}); polling only");
                    return None;
                }
            };
        for pattern in &self.include {
            let pattern = pattern.as_str();
            if let Some(dir) = glob_base(pattern) {
                let mode = if pattern.contains("**") {
                    notify::RecursiveMode::Recursive
                } else {
                    notify::RecursiveMode::NonRecursive
                };
                if let Err(e) = watcher.watch(&dir, mode) {
                    warn!(source, folder = %dir.display(), "cannot watch folder ({e}); polling it");
                }
            }
        }
        Some(watcher)
    }
}

/// The folder a glob starts in: its longest leading part without wildcards.
pub fn glob_base(pattern: &str) -> Option<PathBuf> {
    let mut base = PathBuf::new();
    for part in Path::new(pattern).components() {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            return Some(if base.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                base
            });
        }
        base.push(part);
    }
    base.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_base_is_the_folder_before_the_first_wildcard() {
        assert_eq!(glob_base("/var/log/*.log"), Some(PathBuf::from("/var/log")));
        assert_eq!(glob_base("/var/*/app.log"), Some(PathBuf::from("/var")));
        assert_eq!(glob_base("app.log"), Some(PathBuf::from(".")));
        assert_eq!(glob_base("*.log"), Some(PathBuf::from(".")));
    }

    #[test]
    fn excluded_files_and_folders_are_not_expanded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.log"), "a\n").unwrap();
        std::fs::write(dir.path().join("b.log"), "b\n").unwrap();
        std::fs::create_dir(dir.path().join("c.log")).unwrap();
        let pattern = |p: &str| glob::Pattern::new(&dir.path().join(p).to_string_lossy()).unwrap();
        let globs = Globs {
            include: vec![pattern("*.log")],
            exclude: vec![pattern("b.log")],
        };
        let found: Vec<PathBuf> = globs.expand().into_values().collect();
        assert_eq!(found, vec![dir.path().join("a.log")]);
    }
}
