//! The server: bind, TLS, reloads, readiness, graceful shutdown on SIGTERM, and the
//! connection discipline of SPEC §4: a connection that completes no request head within
//! [`Config::HEAD_TIMEOUT`] of being accepted (TLS handshake included) is closed; an idle
//! keep-alive connection stays open [`Config::IDLE_TIMEOUT`]; at most
//! `max_connections` are open at once. At the limit, the oldest connection with no
//! request in flight is closed to make room (one that never sent a request head first,
//! then the longest idle), so idle or half-open connections cannot keep a well-formed
//! request out; only when every open connection has a request in flight does the accept
//! loop wait.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
};

use super::{
    AppState, DEFAULT_REQUEST_TIMEOUT,
    audit::{Audit, AuditSink},
    error::ServeError,
    reload::{self, Reloader, TlsFiles},
    router,
};
use crate::policy::set::{PolicySet, PolicySource};

/// File descriptors kept for everything but connections: the policy and certificate
/// files, the watcher, the audit log, the runtime.
const RESERVED_FDS: u64 = 64;

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
    /// The longest a request may take, reading its body included (the TLS handshake
    /// and the request head have [`Config::head_timeout`]).
    pub request_timeout: Duration,
    /// After SIGTERM, how long to keep serving while `/readyz` fails, so the Service
    /// stops routing to this pod before it stops listening.
    pub shutdown_delay: Duration,
    /// Then, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
    /// The most connections open at once (`--max-connections`).
    pub max_connections: usize,
    /// A connection must complete its first request head this soon after being
    /// accepted, TLS handshake included.
    pub head_timeout: Duration,
    /// An idle keep-alive connection is closed after this long with no request.
    pub idle_timeout: Duration,
}

impl Config {
    /// The default `--max-connections`.
    pub const MAX_CONNECTIONS: usize = 1000;
    /// No request head this long after accept (TLS handshake included): closed.
    pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
    /// Idle keep-alive connections are closed after this long: longer than client-go's
    /// 90 s idle pool, so a reused connection is never closed under the API server.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

    /// A configuration with the defaults: audit to stdout, 4 s request timeout, no
    /// shutdown delay, 20 s grace, 1,000 connections, 5 s to the first request head,
    /// 120 s keep-alive.
    pub fn new(policies: PolicySource, tls: Option<Tls>, addr: SocketAddr) -> Self {
        Config {
            policies,
            tls,
            addr,
            audit: AuditSink::Stdout,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            max_connections: Self::MAX_CONNECTIONS,
            head_timeout: Self::HEAD_TIMEOUT,
            idle_timeout: Self::IDLE_TIMEOUT,
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
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Serve { addr, source })?;
        let max_connections = open_file_budget(config.max_connections);
        let limits = Limits {
            head: config.head_timeout,
            idle: config.idle_timeout,
            max_connections,
        };
        let (watcher, reload_task) = reload::spawn(reloader);
        let registry = Arc::new(Registry::default());
        let (drain, draining) = watch::channel(false);
        if tls.is_none() {
            tracing::warn!("serving PLAIN HTTP without TLS: for development only");
        }
        let local = listener.local_addr().unwrap_or(addr);
        let tls_on = tls.is_some();
        let accept = tokio::spawn(accept_loop(
            listener,
            router(state.clone()),
            tls,
            limits,
            registry.clone(),
            draining,
        ));
        tracing::info!(addr = %local, tls = tls_on, max_connections, "listening");
        state.set_ready(true);

        let signal = wait_for_signal().await;
        tracing::info!(
            signal,
            delay = ?config.shutdown_delay,
            grace = ?config.shutdown_grace,
            "shutting down: not ready, then draining in-flight requests"
        );
        state.set_ready(false);
        tokio::time::sleep(config.shutdown_delay).await;
        drain.send_replace(true);
        let _ = accept.await;
        if tokio::time::timeout(config.shutdown_grace, registry.wait_empty())
            .await
            .is_err()
        {
            tracing::warn!(
                open = registry.len(),
                "grace period over; closing the remaining connections"
            );
        }
        drop(watcher);
        reload_task.abort();
        state.audit().close();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Raises the soft open-file limit so `max_connections` connections fit, and returns
/// the number of connections that do fit: the hard limit caps both.
fn open_file_budget(max_connections: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(RESERVED_FDS);
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let mut have = soft;
    if soft < wanted {
        let raised = wanted.min(hard);
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        ) {
            Ok(()) => {
                tracing::info!(from = soft, to = raised, "raised the open-file limit");
                have = raised;
            }
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        }
    }
    if have >= wanted {
        return max_connections;
    }
    let fit = usize::try_from(have.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(1);
    tracing::warn!(
        max_connections,
        open_file_limit = have,
        serving = fit,
        "the open-file limit is too low for --max-connections; serving fewer"
    );
    fit
}

/// The connection limits in force.
#[derive(Debug, Clone, Copy)]
struct Limits {
    head: Duration,
    idle: Duration,
    max_connections: usize,
}

/// What a connection has done, read by its watchdog and by eviction.
#[derive(Debug)]
struct Activity {
    accepted: Instant,
    /// Request heads received.
    heads: AtomicU64,
    /// Requests being answered.
    inflight: AtomicUsize,
    /// When the last request finished, in ms after `accepted`.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            accepted: Instant::now(),
            heads: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn idle_since(&self) -> Instant {
        self.accepted + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    /// When the connection is to be closed, if nothing happens; `None` while a request
    /// is in flight (the request timeout bounds that).
    fn close_at(&self, limits: Limits) -> Option<Instant> {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.heads.load(Ordering::Acquire) == 0 {
            Some(self.accepted + limits.head)
        } else {
            Some(self.idle_since() + limits.idle)
        }
    }

    /// Eviction order: connections that never sent a head first, oldest first; then the
    /// longest idle. `None` while a request is in flight.
    fn eviction_key(&self) -> Option<(bool, Instant)> {
        if self.inflight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if self.heads.load(Ordering::Acquire) == 0 {
            Some((false, self.accepted))
        } else {
            Some((true, self.idle_since()))
        }
    }
}

/// Marks one request in flight; dropping it marks the connection idle again.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.heads.fetch_add(1, Ordering::AcqRel);
        activity.inflight.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct Entry {
    activity: Arc<Activity>,
    close: Arc<Notify>,
    /// Asked to close; it stays counted until its task has dropped the socket.
    closing: bool,
}

/// The open connections.
#[derive(Debug, Default)]
struct Registry {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
    closed: Notify,
}

/// Removes a connection from the registry when its task ends.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn register(self: &Arc<Self>, entry: Entry) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, entry);
        Registered {
            registry: self.clone(),
            id,
        }
    }

    fn remove(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.closed.notify_waiters();
        }
    }

    /// Asks the connection first in eviction order to close; false when every connection
    /// has a request in flight or is closing already. The connection stays counted until
    /// its task has closed the socket, so the count is the descriptors really open.
    fn evict_one(&self) -> bool {
        let mut open = self.lock();
        let victim = open
            .iter()
            .filter(|(_, e)| !e.closing)
            .filter_map(|(id, e)| Some((e.activity.eviction_key()?, *id)))
            .min()
            .map(|(_, id)| id);
        match victim.and_then(|id| open.get_mut(&id)) {
            Some(entry) => {
                entry.closing = true;
                entry.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Waits until a connection closes (or returns at once if fewer than `max` are open).
    async fn wait_below(&self, max: usize) {
        let closed = self.closed.notified();
        tokio::pin!(closed);
        closed.as_mut().enable();
        if self.len() < max {
            return;
        }
        closed.await;
    }

    async fn wait_empty(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.len() == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Accepts until the drain starts; each connection gets its own task.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    limits: Limits,
    registry: Arc<Registry>,
    mut draining: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog below does the head and idle timeouts for both protocols.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = draining.wait_for(|&d| d) => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors (the hard limit is lower than it should be): free
                // one from an idle connection. Either way, back off instead of spinning.
                let errno = e.raw_os_error().map(rustix::io::Errno::from_raw_os_error);
                let evicted = matches!(errno, Some(rustix::io::Errno::MFILE | rustix::io::Errno::NFILE))
                    && registry.evict_one();
                tracing::warn!(error = %e, evicted, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // At the limit: ask one idle connection to close, and wait until a socket is
        // really closed (a busy machine may take a while to run the closing task).
        while registry.len() >= limits.max_connections {
            registry.evict_one();
            tokio::select! {
                biased;
                _ = draining.wait_for(|&d| d) => return,
                () = registry.wait_below(limits.max_connections) => {}
            }
        }
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let close = Arc::new(Notify::new());
        let registered = registry.register(Entry {
            activity: activity.clone(),
            close: close.clone(),
            closing: false,
        });
        let conn = Conn {
            app: app.clone(),
            builder: builder.clone(),
            activity,
            close,
            limits,
            draining: draining.clone(),
        };
        let tls = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.get_inner()));
        tokio::spawn(async move {
            let _registered = registered;
            conn.run(tcp, tls).await;
        });
    }
}

/// One connection's task.
struct Conn {
    app: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    activity: Arc<Activity>,
    close: Arc<Notify>,
    limits: Limits,
    draining: watch::Receiver<bool>,
}

impl Conn {
    async fn run(mut self, tcp: TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.http(tcp).await;
        };
        let deadline = tokio::time::Instant::from_std(self.activity.accepted + self.limits.head);
        let close = self.close.clone();
        let stream = tokio::select! {
            biased;
            () = close.notified() => return,
            _ = self.draining.wait_for(|&d| d) => return,
            r = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => match r {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake not done in time; closed");
                    return;
                }
            },
        };
        self.http(stream).await;
    }

    async fn http<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let tower = TowerToHyperService::new(self.app.clone());
        let activity = self.activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::start(&activity);
            let response = hyper::service::Service::call(&tower, request);
            async move {
                let response = response.await;
                drop(busy);
                response
            }
        });
        let builder = self.builder.clone();
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        let close = self.close.clone();
        let mut draining = false;
        let mut check = self.activity.accepted + self.limits.head;
        loop {
            tokio::select! {
                biased;
                _ = conn.as_mut() => return,
                () = close.notified() => return,
                _ = self.draining.wait_for(|&d| d), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(check)) => {
                    match self.activity.close_at(self.limits) {
                        // A request in flight: look again later.
                        None => check = Instant::now() + self.limits.head,
                        Some(at) if at <= Instant::now() => {
                            tracing::debug!(
                                requests = self.activity.heads.load(Ordering::Relaxed),
                                "closing a connection with no request in time"
                            );
                            return;
                        }
                        Some(at) => check = at,
                    }
                }
            }
        }
    }
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
