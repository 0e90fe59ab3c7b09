//! The accept loop. [`run`] takes an already bound listener (tests bind port
//! 0) and a shutdown future. Connections are bounded by construction: a
//! semaphore permit is taken *before* `accept`, so at most `max_connections`
//! are ever open; slow handshakes are cut off after `handshake_timeout_ms`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::identity;
use crate::problem::{self, ProxyError};
use crate::proxy::{self, AppState, Peer};
use crate::tls::ServerTls;

/// The next connection, with the permit that bounds it (taken *before*
/// `accept`), or `None` once `shutdown` resolves. Shared by the gateway and
/// the admin listener.
pub(crate) async fn next_connection<F: Future<Output = ()>>(
    listener: &TcpListener,
    limits: &Arc<Semaphore>,
    shutdown: &mut Pin<&mut F>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = tokio::select! {
        p = Arc::clone(limits).acquire_owned() => p.ok()?,
        () = shutdown.as_mut() => return None,
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, remote)) => return Some((permit, tcp, remote)),
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting and gives in-flight
/// requests `shutdown_grace_ms` to finish.
pub async fn run(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(Semaphore::new(state.server.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.server.header_read_timeout())
        .max_buf_size(state.server.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(state.server.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(state.server.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    while let Some((permit, tcp, remote)) = next_connection(&listener, &limits, &mut shutdown).await
    {
        let _ = tcp.set_nodelay(true);
        let acceptor = tls.acceptor();
        let state = Arc::clone(&state);
        let builder = Arc::clone(&builder);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let handshake =
                tokio::time::timeout(state.server.handshake_timeout(), acceptor.accept(tcp)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    // Refused certificates are reported (and audited) by the
                    // verifier; this is mostly probes and aborted connects.
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let peer = Arc::new(Peer {
                cert: identity::peer_cert(stream.get_ref().1.peer_certificates()),
            });
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                let peer = Arc::clone(&peer);
                async move {
                    // Run the request in its own task: a client that
                    // disconnects cancels hyper's future, but must not cancel
                    // the audit record of what already happened.
                    let resp = tokio::spawn(proxy::handle(state, peer, req))
                        .await
                        .unwrap_or_else(|_| {
                            problem::response(
                                &ProxyError::Internal,
                                "00000000-0000-0000-0000-000000000000",
                            )
                        });
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = state.server.shutdown_grace();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}
