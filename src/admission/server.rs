//! The server: bind, TLS, reloads, readiness, graceful shutdown on SIGTERM.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum_server::{Handle, tls_rustls::RustlsAcceptor};

use super::{
    AppState, DEFAULT_REQUEST_TIMEOUT,
    audit::{Audit, AuditSink},
    error::ServeError,
    reload::{self, Reloader, TlsFiles},
    router,
};
use crate::policy::set::{PolicySet, PolicySource};

/// The certificate chain and key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// How `ciguard serve` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The policy files or directory (watched).
    pub policies: PolicySource,
    /// The certificate and key (watched). `None` serves plain HTTP, for development only.
    pub tls: Option<Tls>,
    /// The listen address.
    pub addr: SocketAddr,
    /// Where audit lines go.
    pub audit: AuditSink,
    /// The longest a request may take, reading its body included; also the TLS
    /// handshake and header read timeouts.
    pub request_timeout: Duration,
    /// After SIGTERM, how long to keep serving while `/readyz` fails, so the Service
    /// stops routing to this pod before it stops listening.
    pub shutdown_delay: Duration,
    /// Then, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

impl Config {
    /// A configuration with the defaults: audit to stdout, 4 s request timeout, no
    /// shutdown delay, 20 s grace.
    pub fn new(policies: PolicySource, tls: Option<Tls>, addr: SocketAddr) -> Self {
        Config {
            policies,
            tls,
            addr,
            audit: AuditSink::Stdout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// The admission webhook server.
#[derive(Debug)]
pub struct Server {
    config: Config,
    state: Arc<AppState>,
    reloader: Reloader,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl Server {
    /// Loads the policies and the certificate; fails if either is unusable.
    pub fn new(config: Config) -> Result<Self, ServeError> {
        let files = config
            .policies
            .read()
            .map_err(|e| ServeError::Policies(e.into()))?;
        let policies = PolicySet::parse(&files).map_err(ServeError::Policies)?;
        let tls = config
            .tls
            .as_ref()
            .map(|t| TlsFiles::load(&t.cert, &t.key))
            .transpose()?;
        let rustls = tls.as_ref().map(|t| t.config.clone());
        let audit = Audit::open(&config.audit)?;
        reload::log_loaded(&policies, &files);
        let state =
            Arc::new(AppState::with_policies(policies, audit).with_request_timeout(config.request_timeout));
        let reloader = Reloader::new(state.clone(), config.policies.clone(), files, tls);
        Ok(Server {
            config,
            state,
            reloader,
            tls: rustls,
        })
    }

    /// The shared state.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server {
            config,
            state,
            reloader,
            tls,
        } = self;
        let addr = config.addr;
        let handle: Handle<SocketAddr> = Handle::new();
        let (watcher, reload_task) = reload::spawn(reloader);
        let shutdown = tokio::spawn(shutdown_on_signal(handle.clone(), state.clone(), config.clone()));
        let ready = tokio::spawn(ready_when_listening(handle.clone(), state.clone(), tls.is_some()));
        let app = router(state.clone()).into_make_service();
        let timeout = config.request_timeout;
        let result = match tls {
            Some(tls) => {
                let acceptor = RustlsAcceptor::new(tls).handshake_timeout(timeout);
                let mut server = axum_server::bind(addr).acceptor(acceptor).handle(handle);
                server.http_builder().http1().header_read_timeout(timeout);
                server.serve(app).await
            }
            None => {
                tracing::warn!("serving PLAIN HTTP without TLS: for development only");
                let mut server = axum_server::bind(addr).handle(handle);
                server.http_builder().http1().header_read_timeout(timeout);
                server.serve(app).await
            }
        };
        drop(watcher);
        reload_task.abort();
        shutdown.abort();
        ready.abort();
        state.set_ready(false);
        state.audit().close();
        tracing::info!("stopped");
        result.map_err(|source| ServeError::Serve { addr, source })
    }
}

async fn ready_when_listening(handle: Handle<SocketAddr>, state: Arc<AppState>, tls: bool) {
    if let Some(addr) = handle.listening().await {
        tracing::info!(%addr, tls, "listening");
        state.set_ready(true);
    }
}

async fn shutdown_on_signal(handle: Handle<SocketAddr>, state: Arc<AppState>, config: Config) {
    let signal = wait_for_signal().await;
    tracing::info!(
        signal,
        delay = ?config.shutdown_delay,
        grace = ?config.shutdown_grace,
        "shutting down: not ready, then draining in-flight requests"
    );
    state.set_ready(false);
    tokio::time::sleep(config.shutdown_delay).await;
    handle.graceful_shutdown(Some(config.shutdown_grace));
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn wait_for_signal() -> &'static str {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
