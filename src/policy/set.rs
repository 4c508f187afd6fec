//! Several policies served and configured together (`--policy P…` or `--policy-dir DIR`):
//! read as one set, valid only as a whole.
//!
//! ```
//! use ciguard::policy::set::{PolicySet, PolicySource};
//!
//! let source = PolicySource::Files(vec!["examples/policies/gitlab-runner.yaml".into()]);
//! let set = PolicySet::load(&source).unwrap();
//! assert_eq!(set.names().collect::<Vec<_>>(), ["gitlab-runner"]);
//! assert!(set.only().is_some());
//! ```

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{PolicyError, PolicyErrors, ValidPolicy, load, selector::is_dns_subdomain};

/// The extensions of policy files in a `--policy-dir`.
pub const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// The longest policy name: the webhook `<name>.validate.ciguard.io` must stay a DNS
/// subdomain (253 characters).
pub const MAX_NAME: usize = 253 - ".validate.ciguard.io".len();

/// Where the policies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// These files (`--policy`, repeatable).
    Files(Vec<PathBuf>),
    /// Every `*.yaml`, `*.yml` and `*.json` directly in this directory (`--policy-dir`);
    /// hidden entries (a mounted ConfigMap's `..data`) are skipped.
    Dir(PathBuf),
}

/// One problem with a set of policies.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// A policy file could not be read.
    #[error("failed to read policy '{path}'")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy directory could not be listed.
    #[error("failed to list the policy directory '{path}'")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy directory holds no policy file.
    #[error("no policy file (*.yaml, *.yml, *.json) in '{0}'")]
    Empty(PathBuf),
    /// A policy file is invalid.
    #[error("failed to load the policy from '{path}'")]
    Policy {
        /// The file.
        path: PathBuf,
        /// Every error, with file:line:col.
        #[source]
        source: PolicyErrors,
    },
    /// A policy's name cannot name its paths and webhooks.
    #[error(
        "'{path}': metadata.name \"{name}\" cannot name the policy's paths and webhooks: expected a DNS subdomain (lowercase letters, digits, '-' and '.') of at most {MAX_NAME} characters"
    )]
    Name {
        /// The file.
        path: PathBuf,
        /// The name.
        name: String,
    },
    /// Two policies have the same name.
    #[error("policy name \"{name}\" is used by both '{first}' and '{second}'")]
    Duplicate {
        /// The name.
        name: String,
        /// The file read first.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
}

/// Every problem found in a set, in file order.
#[derive(Debug)]
pub struct SetErrors(pub Vec<SetError>);

impl fmt::Display for SetErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
            match e {
                SetError::Read { source, .. } | SetError::ReadDir { source, .. } => write!(f, ": {source}")?,
                SetError::Policy { source, .. } => {
                    for line in source.to_string().lines() {
                        write!(f, "\n  {line}")?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl std::error::Error for SetErrors {}

impl From<SetError> for SetErrors {
    fn from(e: SetError) -> Self {
        SetErrors(vec![e])
    }
}

/// The text of every policy file of a source, in order: what a reload compares.
pub type Files = Vec<(PathBuf, Vec<u8>)>;

impl PolicySource {
    /// The policy files now: the given ones, or the directory's, sorted by name.
    pub fn paths(&self) -> Result<Vec<PathBuf>, SetError> {
        match self {
            PolicySource::Files(files) => Ok(files.clone()),
            PolicySource::Dir(dir) => {
                let read_dir_error = |source| SetError::ReadDir {
                    path: dir.clone(),
                    source,
                };
                let mut paths = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(read_dir_error)? {
                    let path = entry.map_err(read_dir_error)?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(".");
                    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                    if !name.starts_with('.') && EXTENSIONS.contains(&extension) && path.is_file() {
                        paths.push(path);
                    }
                }
                paths.sort();
                if paths.is_empty() {
                    return Err(SetError::Empty(dir.clone()));
                }
                Ok(paths)
            }
        }
    }

    /// Reads every policy file.
    pub fn read(&self) -> Result<Files, SetError> {
        self.paths()?
            .into_iter()
            .map(|path| match std::fs::read(&path) {
                Ok(bytes) => Ok((path, bytes)),
                Err(source) => Err(SetError::Read { path, source }),
            })
            .collect()
    }

    /// The directories to watch for changes.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match self {
            PolicySource::Dir(dir) => vec![dir.clone()],
            PolicySource::Files(files) => files.iter().map(|f| parent(f)).collect(),
        }
    }
}

/// The directory of a file (`.` for a bare file name).
pub fn parent(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Policies by name: each served at `/mutate/<name>` and `/validate/<name>`.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// Sorted by name, names unique.
    policies: Vec<Arc<ValidPolicy>>,
}

impl PolicySet {
    /// A set of one policy, whatever its name.
    pub fn single(policy: ValidPolicy) -> Self {
        PolicySet {
            policies: vec![Arc::new(policy)],
        }
    }

    /// Reads and validates every policy of a source.
    pub fn load(source: &PolicySource) -> Result<Self, SetErrors> {
        Self::parse(&source.read()?)
    }

    /// Validates policy files already read; every error of every file is reported.
    pub fn parse(files: &[(PathBuf, Vec<u8>)]) -> Result<Self, SetErrors> {
        let mut errors = Vec::new();
        let mut loaded: Vec<(&Path, ValidPolicy)> = Vec::new();
        for (path, bytes) in files {
            match parse_one(path, bytes) {
                Ok(policy) => loaded.push((path, policy)),
                Err(source) => errors.push(SetError::Policy {
                    path: path.clone(),
                    source,
                }),
            }
        }
        for (path, policy) in &loaded {
            let name = policy.name();
            if name.len() > MAX_NAME || !is_dns_subdomain(name) {
                errors.push(SetError::Name {
                    path: path.to_path_buf(),
                    name: name.into(),
                });
            }
        }
        let mut by_name: Vec<&(&Path, ValidPolicy)> = loaded.iter().collect();
        by_name.sort_by(|a, b| a.1.name().cmp(b.1.name()));
        for pair in by_name.windows(2) {
            if let [(first, a), (second, b)] = pair
                && a.name() == b.name()
            {
                errors.push(SetError::Duplicate {
                    name: a.name().into(),
                    first: first.to_path_buf(),
                    second: second.to_path_buf(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(SetErrors(errors));
        }
        let mut policies: Vec<Arc<ValidPolicy>> = loaded.into_iter().map(|(_, p)| Arc::new(p)).collect();
        policies.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(PolicySet { policies })
    }

    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ValidPolicy>> {
        self.policies
            .binary_search_by(|p| p.name().cmp(name))
            .ok()
            .map(|i| &self.policies[i])
    }

    /// The policy, when there is exactly one (served at `/mutate` and `/validate` too).
    pub fn only(&self) -> Option<&Arc<ValidPolicy>> {
        match self.policies.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The policies, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ValidPolicy>> {
        self.policies.iter()
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name())
    }

    /// How many policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether the set is empty (never, once loaded from a source).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// Validates the text of one policy file.
fn parse_one(path: &Path, bytes: &[u8]) -> Result<ValidPolicy, PolicyErrors> {
    let name = path.display().to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::Read {
        path: name.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    load::from_str(text, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str) -> Vec<u8> {
        format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: {name}}}\n")
            .into_bytes()
    }

    fn files(list: &[(&str, Vec<u8>)]) -> Files {
        list.iter().map(|(p, b)| (PathBuf::from(p), b.clone())).collect()
    }

    #[test]
    fn policies_by_name() {
        let set = PolicySet::parse(&files(&[
            ("b.yaml", policy("team-b")),
            ("a.yaml", policy("team-a")),
        ]))
        .unwrap();
        assert_eq!(set.names().collect::<Vec<_>>(), ["team-a", "team-b"]);
        assert_eq!(set.get("team-b").unwrap().source, "b.yaml");
        assert!(set.get("team-c").is_none());
        assert!(set.only().is_none());
    }

    #[test]
    fn every_error_of_the_set_is_reported() {
        let errors = PolicySet::parse(&files(&[
            ("a.yaml", policy("team-a")),
            ("b.yaml", policy("Team B")),
            ("c.yaml", policy("team-a")),
            ("d.yaml", b"kind: Nope\n".to_vec()),
        ]))
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines[0], "failed to load the policy from 'd.yaml'", "{errors}");
        assert!(lines[1].starts_with("  d.yaml:1:1: "), "{errors}");
        assert!(
            errors.contains("'b.yaml': metadata.name \"Team B\" cannot name the policy's paths and webhooks"),
            "{errors}"
        );
        assert!(
            errors.ends_with("policy name \"team-a\" is used by both 'a.yaml' and 'c.yaml'"),
            "{errors}"
        );
    }

    #[test]
    fn a_directory_lists_policy_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), policy("b")).unwrap();
        std::fs::write(dir.path().join("a.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("README.md"), b"").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), b"").unwrap();
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let source = PolicySource::Dir(dir.path().into());
        let names: Vec<_> = source
            .paths()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.yml"]);
        let empty = tempfile::tempdir().unwrap();
        let e = PolicySource::Dir(empty.path().into()).paths().unwrap_err();
        assert!(matches!(e, SetError::Empty(_)), "{e}");
    }
}
