//! Serving the router: plain HTTP, or HTTPS when the config names a certificate and key
//! (`server.tls_certfile`, `server.tls_keyfile`), with client certificates required when it
//! also names a CA (`server.tls_cafile`, mutual TLS). SIGINT and SIGTERM stop accepting and let
//! requests in flight finish. Accepted connections get TCP_NODELAY, so streamed events leave
//! as they are written.
//!
//! Plain HTTP is served by [`crate::serving_threads`]: each thread runs its own single-threaded
//! runtime accepting from the same socket, so a connection lives on one thread. HTTPS is
//! served on the calling (multi-threaded) runtime.
//!
//! Failures here are start-up failures (a port in use, an unreadable certificate) and name
//! what to fix; a broken TLS handshake only drops that connection.

use crate::serving_threads;
use axum::Router;
use axum::serve::ListenerExt;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long requests in flight may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Certificate files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub cafile: Option<PathBuf>,
}

/// Binds `address`, failing with a message that names it.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {address}: {error}. Choose another port with --port or $OGX_PORT."
        )
    })
}

/// Serves `router` on `listener` until SIGINT or SIGTERM.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsFiles>,
) -> anyhow::Result<()> {
    match tls {
        None => serve_on_threads(listener, router).await,
        Some(files) => serve_tls(listener, router, tls_config(&files)?).await,
    }
}

/// Plain HTTP on [`serving_threads::count`] threads, each with a single-threaded runtime and
/// its own handle on the listening socket. The calling runtime waits for the shutdown signal,
/// tells every thread, and returns once each has finished its requests in flight.
async fn serve_on_threads(listener: TcpListener, router: Router) -> anyhow::Result<()> {
    let listener = listener.into_std()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::new();
    for index in 1..=serving_threads::count() {
        let listener = listener.try_clone()?;
        let (router, mut stopped) = (router.clone(), stopped.clone());
        let (done, finished) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start serving thread {index}: {e}"))?;
        std::thread::Builder::new()
            .name(format!("ogx-serve-{index}"))
            .spawn(move || {
                serving_threads::enter(index);
                let served = runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let stop = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    serve_plain(listener, router, stop).await
                });
                let _ = done.send(served);
            })
            .map_err(|e| anyhow::anyhow!("cannot start serving thread {index}: {e}"))?;
        threads.push(finished);
    }
    drop(stopped);
    let mut running: futures::stream::FuturesUnordered<_> = threads.into_iter().collect();
    let mut outcome = Ok(());
    // A thread that ends before the signal (it cannot serve) stops the others too.
    tokio::select! {
        () = shutdown_signal() => {}
        Some(early) = running.next() => outcome = thread_outcome(early),
    }
    let _ = stop.send(true);
    while let Some(finished) = running.next().await {
        if let Err(error) = thread_outcome(finished) {
            outcome = outcome.and(Err(error));
        }
    }
    outcome
}

fn thread_outcome(
    finished: Result<anyhow::Result<()>, tokio::sync::oneshot::error::RecvError>,
) -> anyhow::Result<()> {
    finished.unwrap_or_else(|_| Err(anyhow::anyhow!("a serving thread stopped unexpectedly")))
}

/// Serves plain HTTP on `listener` until `stop` resolves, then lets requests in flight finish.
async fn serve_plain(
    listener: TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // TCP_NODELAY: each server-sent event is a small write of its own; with Nagle's
    // algorithm the second one would wait for the client's (delayed) ACK of the first.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {error}");
        }
    });
    // The peer's address reaches handlers as `ConnectInfo` (upstream_header's trusted
    // proxies, per-address quotas).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await?;
    Ok(())
}

async fn serve_tls(
    listener: TcpListener,
    router: Router,
    config: rustls::ServerConfig,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("could not set TCP_NODELAY: {error}");
        }
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%peer, "TLS handshake failed: {error}");
                    return;
                }
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, "connection ended with an error: {error}");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    Ok(())
}

/// Reads the certificate, key and optional client CA into a rustls config.
pub fn tls_config(files: &TlsFiles) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs(&files.certfile, "server.tls_certfile")?;
    let key = read_key(&files.keyfile)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.cafile {
        None => builder.with_no_client_auth(),
        Some(cafile) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(cafile, "server.tls_cafile")? {
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("server.tls_cafile {}: {e}", cafile.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| anyhow::anyhow!("server.tls_cafile {}: {e}", cafile.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        anyhow::anyhow!(
            "server.tls_keyfile {} does not match server.tls_certfile: {e}",
            files.keyfile.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(
    path: &Path,
    key: &str,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("{key} {}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            anyhow::anyhow!("{key} {}: not a PEM certificate file: {e}", path.display())
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "{key} {}: no PEM certificate found in the file",
            path.display()
        );
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<rustls::pki_types::PrivateKeyDer<'static>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("server.tls_keyfile {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| anyhow::anyhow!("server.tls_keyfile {}: {e}", path.display()))?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "server.tls_keyfile {}: no PEM private key found in the file",
                path.display()
            )
        })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}
