//! Hot reload of the policy and of the certificate and key.
//!
//! The *directories* holding the files are watched, not the files: Kubernetes updates a
//! mounted ConfigMap or Secret by swapping the `..data` symlink, which a watch on the
//! old file never sees. After a burst of events settles, each file is read again and
//! compared with what was last read; only a real change reloads. A policy that does not
//! load, or a certificate and key that do not form a pair, is logged and counted in
//! `ciguard_reload_errors_total`, and the last good one keeps serving. A periodic
//! re-check covers events a file system may not deliver.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum_server::tls_rustls::RustlsConfig;
use notify::{
    EventKind, RecommendedWatcher, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode},
};
use tokio::{sync::mpsc, task::JoinHandle, time::Instant};

use super::{AppState, error::ServeError, metrics::Target, tls};
use crate::policy::set::{self, Files, PolicySet, PolicySource};

/// Quiet time after the last event before files are read.
const SETTLE: Duration = Duration::from_millis(100);
/// The longest a stream of events may delay a reload.
const MAX_SETTLE: Duration = Duration::from_secs(1);
/// The periodic re-check.
const RESYNC: Duration = Duration::from_secs(60);

/// Logs the policies of a set, each with its file.
pub(crate) fn log_loaded(policies: &PolicySet, files: &Files) {
    for p in policies.iter() {
        tracing::info!(policy = p.name(), path = %p.source, "policy loaded");
    }
    if files.len() > 1 {
        tracing::info!(count = policies.len(), "policies loaded as one set");
    }
}

/// A watched file and what was last read from it (`None`: the last read failed).
#[derive(Debug)]
struct Watched {
    path: PathBuf,
    last: Option<Vec<u8>>,
}

impl Watched {
    fn new(path: PathBuf, bytes: Vec<u8>) -> Self {
        Watched {
            path,
            last: Some(bytes),
        }
    }

    /// Reads the file again; `true` when its content changed. A read error is logged when
    /// it starts, and counts as a change only then.
    fn refresh(&mut self, target: Target) -> bool {
        match std::fs::read(&self.path) {
            Ok(bytes) if self.last.as_ref() == Some(&bytes) => false,
            Ok(bytes) => {
                self.last = Some(bytes);
                true
            }
            Err(e) => {
                let first = self.last.take().is_some();
                if first {
                    tracing::error!(target = target.as_str(), path = %self.path.display(), error = %e,
                        "failed to read; the last good one keeps serving");
                }
                first
            }
        }
    }
}

/// The certificate and key, and the live TLS configuration they feed.
#[derive(Debug)]
pub(crate) struct TlsFiles {
    pub(crate) config: RustlsConfig,
    cert: Watched,
    key: Watched,
}

impl TlsFiles {
    /// Loads a certificate and key.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Self, ServeError> {
        let err = |source| ServeError::Tls {
            cert: cert.into(),
            key: key.into(),
            source,
        };
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| {
                err(tls::TlsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            })
        };
        let (cert_pem, key_pem) = (read(cert)?, read(key)?);
        let config = tls::server_config(&cert_pem, &key_pem).map_err(err)?;
        Ok(TlsFiles {
            config: RustlsConfig::from_config(config),
            cert: Watched::new(cert.into(), cert_pem),
            key: Watched::new(key.into(), key_pem),
        })
    }
}

/// Re-reads the policies and the certificate and swaps in what changed.
#[derive(Debug)]
pub(crate) struct Reloader {
    state: Arc<AppState>,
    policies: PolicySource,
    /// What was last read of the policies (`None`: the last read failed).
    last: Option<Files>,
    tls: Option<TlsFiles>,
}

impl Reloader {
    pub(crate) fn new(
        state: Arc<AppState>,
        policies: PolicySource,
        files: Files,
        tls: Option<TlsFiles>,
    ) -> Self {
        Reloader {
            state,
            policies,
            last: Some(files),
            tls,
        }
    }

    /// The directories to watch.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.policies.dirs();
        if let Some(t) = &self.tls {
            dirs.extend([set::parent(&t.cert.path), set::parent(&t.key.path)]);
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Reloads whatever changed.
    pub(crate) fn check(&mut self) {
        self.check_policy();
        self.check_tls();
    }

    /// Reads every policy file again; when anything changed (a file's text, a file added
    /// or removed in `--policy-dir`), loads the whole set and swaps it in, or keeps the
    /// last good set. A read error is logged and counted when it starts.
    fn check_policy(&mut self) {
        let metrics = self.state.metrics();
        let files = match self.policies.read() {
            Ok(files) => files,
            Err(e) => {
                if self.last.take().is_some() {
                    let source = std::error::Error::source(&e).map(ToString::to_string);
                    tracing::error!(error = %e, source, "failed to read the policies; the last good set keeps serving");
                    metrics.reload(Target::Policy, false);
                }
                return;
            }
        };
        if self.last.as_ref() == Some(&files) {
            return;
        }
        match PolicySet::parse(&files) {
            Ok(policies) => {
                log_loaded(&policies, &files);
                let names: Vec<&str> = policies.names().collect();
                tracing::info!(policies = %names.join(", "), "policies reloaded");
                self.state.set_policies(policies);
                metrics.reload(Target::Policy, true);
            }
            Err(errors) => {
                tracing::error!(errors = %errors,
                    "new policy rejected; the last good set of policies keeps serving");
                metrics.reload(Target::Policy, false);
            }
        }
        self.last = Some(files);
    }

    fn check_tls(&mut self) {
        let Some(t) = &mut self.tls else { return };
        let cert_changed = t.cert.refresh(Target::Certificate);
        let key_changed = t.key.refresh(Target::Certificate);
        if !cert_changed && !key_changed {
            return;
        }
        let metrics = self.state.metrics();
        let (Some(cert), Some(key)) = (&t.cert.last, &t.key.last) else {
            metrics.reload(Target::Certificate, false);
            return;
        };
        match tls::server_config(cert, key) {
            Ok(config) => {
                t.config.reload_from_config(config);
                tracing::info!(cert = %t.cert.path.display(), "certificate reloaded");
                metrics.reload(Target::Certificate, true);
            }
            Err(e) => {
                tracing::warn!(cert = %t.cert.path.display(), error = %e,
                    "new certificate and key rejected (half-written?); the last good pair keeps serving");
                metrics.reload(Target::Certificate, false);
            }
        }
    }
}

/// Watches the directories and runs the reloader; the watcher stops when dropped. When
/// the directories cannot be watched (e.g. the inotify limits are reached), the error is
/// logged and only the periodic re-check runs.
pub(crate) fn spawn(mut reloader: Reloader) -> (Option<RecommendedWatcher>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher = match watch(&reloader.dirs(), tx) {
        Ok(w) => Some(w),
        Err(e) => {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            tracing::error!(error = %e, source, every = ?RESYNC, "file changes will only be seen by the periodic re-check");
            None
        }
    };
    let task = tokio::spawn(async move {
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        let mut watching = true;
        loop {
            tokio::select! {
                event = rx.recv(), if watching => match event {
                    Some(()) => settle(&mut rx).await,
                    None => watching = false,
                },
                _ = resync.tick() => {}
            }
            reloader.check();
        }
    });
    (watcher, task)
}

/// A watcher on `dirs` that sends `()` for every event that may change a file.
fn watch(dirs: &[PathBuf], tx: mpsc::UnboundedSender<()>) -> Result<RecommendedWatcher, ServeError> {
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match event {
            Ok(e) => !matches!(
                e.kind,
                EventKind::Access(
                    AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
                )
            ),
            Err(e) => {
                tracing::warn!(error = %e, "file watch error");
                true
            }
        };
        if relevant {
            let _ = tx.send(());
        }
    };
    let watch_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServeError::Watch { path, source }
    };
    let first = dirs.first().cloned().unwrap_or_default();
    let mut watcher = notify::recommended_watcher(handler).map_err(watch_error(&first))?;
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(watch_error(dir))?;
    }
    Ok(watcher)
}

/// Waits until no event came for [`SETTLE`], at most [`MAX_SETTLE`].
async fn settle(rx: &mut mpsc::UnboundedReceiver<()>) {
    let deadline = Instant::now() + MAX_SETTLE;
    while Instant::now() < deadline {
        match tokio::time::timeout(SETTLE, rx.recv()).await {
            Ok(Some(())) => continue,
            _ => break,
        }
    }
}
