//! The accept loop, shared by the gateway and the admin listener
//! ([`accept_loop`], each with its own [`ConnectionLimits`]). [`run`] takes an
//! already bound listener (tests bind port 0) and a shutdown future.
//!
//! A connection goes through two bounded phases:
//! - **handshaking**: at most `max_handshakes` connections are in their TLS
//!   handshake at once, each for at most `handshake_timeout`. When all these
//!   slots are taken, a new connection closes the one that has been
//!   handshaking longest: a real client finishes within a round trip, so a
//!   flood of idle or trickling TCP connections only ever holds these slots
//!   and cannot keep a real client waiting behind it;
//! - **established**: at most `max_connections` connections whose handshake
//!   completed are served. While all are taken, nothing more is accepted
//!   (new connections wait in the kernel's accept queue); a connection that
//!   completes its handshake meanwhile waits for one in its handshake slot.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_rustls::server::TlsStream;

use crate::gateway::identity;
use crate::gateway::proxy;
use crate::gateway::state::{AppState, Peer};
use crate::gateway::tls::ServerTls;

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Connections whose TLS handshake completed.
    pub max_connections: usize,
    /// Connections still in their TLS handshake.
    pub max_handshakes: usize,
    /// A TLS handshake that takes longer is dropped.
    pub handshake_timeout: Duration,
    /// Which listener, for the logs: `gateway` or `admin`.
    pub listener: &'static str,
}

/// A connection whose TLS handshake completed, ready to be served.
pub(crate) struct Accepted {
    pub stream: TlsStream<TcpStream>,
    pub remote: SocketAddr,
    /// Its part in the listener's graceful shutdown.
    pub watcher: Watcher,
}

/// The connections in their TLS handshake, oldest first (ids increase).
struct Handshakes {
    capacity: usize,
    state: Mutex<HandshakeSet>,
}

#[derive(Default)]
struct HandshakeSet {
    next: u64,
    /// Id of each connection in its handshake, and how to tell it to give up.
    pending: BTreeMap<u64, oneshot::Sender<()>>,
}

/// One connection's place among the handshakes; leaving it frees the slot.
struct HandshakeSlot {
    id: u64,
    set: Arc<Handshakes>,
    /// Resolves when a newer connection took this slot.
    evicted: oneshot::Receiver<()>,
}

impl Handshakes {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(HandshakeSet::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HandshakeSet> {
        // Nothing panics while holding it; a poisoned set is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection; when all are taken, the connection that
    /// has been handshaking longest is told to give up its own.
    fn enter(self: &Arc<Self>) -> HandshakeSlot {
        let (tx, evicted) = oneshot::channel();
        let mut set = self.lock();
        if set.pending.len() >= self.capacity
            && let Some((_, oldest)) = set.pending.pop_first()
        {
            let _ = oldest.send(());
        }
        let id = set.next;
        set.next += 1;
        set.pending.insert(id, tx);
        HandshakeSlot {
            id,
            set: Arc::clone(self),
            evicted,
        }
    }

    fn len(&self) -> usize {
        self.lock().pending.len()
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.set.lock().pending.remove(&self.id);
    }
}

/// The next connection, or `None` once `shutdown` resolves. Accepts only
/// while an established slot is free, so under real overload connections
/// wait in the kernel's accept queue rather than in a handshake slot.
async fn next_connection<F: Future<Output = ()>>(
    listener: &TcpListener,
    established: &Semaphore,
    shutdown: &mut Pin<&mut F>,
) -> Option<(TcpStream, SocketAddr)> {
    tokio::select! {
        p = established.acquire() => drop(p.ok()?),
        () = shutdown.as_mut() => return None,
    }
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, remote)) => return Some((tcp, remote)),
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// The TLS handshake of one connection within its slot and deadline, then
/// an established slot (waited for in the handshake slot).
async fn handshake(
    tcp: TcpStream,
    remote: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    mut slot: HandshakeSlot,
    established: Arc<Semaphore>,
    limits: ConnectionLimits,
) -> Option<(TlsStream<TcpStream>, OwnedSemaphorePermit)> {
    let listener = limits.listener;
    let stream = tokio::select! {
        r = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                // Refused certificates are reported (and audited) by the
                // verifier; this is mostly probes and aborted connects.
                tracing::debug!(listener, %remote, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::info!(listener, %remote, "TLS handshake timed out");
                return None;
            }
        },
        _ = &mut slot.evicted => {
            tracing::debug!(listener, %remote, "TLS handshake given up for a newer connection (max_handshakes)");
            return None;
        }
    };
    let permit = tokio::select! {
        p = established.acquire_owned() => p.ok()?,
        _ = &mut slot.evicted => return None,
    };
    drop(slot);
    Some((stream, permit))
}

/// Accepts, handshakes and hands every established connection to `serve`
/// (in its own task, holding its permit) until `shutdown` resolves; then
/// drops the listener. Graceful shutdown of the served connections is the
/// caller's, through `graceful`.
pub(crate) async fn accept_loop<S, Fut>(
    listener: TcpListener,
    tls: &ServerTls,
    limits: ConnectionLimits,
    graceful: &GracefulShutdown,
    shutdown: impl Future<Output = ()>,
    serve: S,
) where
    S: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let established = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Handshakes::new(limits.max_handshakes));
    let serve = Arc::new(serve);
    tokio::pin!(shutdown);
    while let Some((tcp, remote)) = next_connection(&listener, &established, &mut shutdown).await {
        let _ = tcp.set_nodelay(true);
        // Entered here, in accept order, so "oldest" is exact.
        let slot = handshakes.enter();
        let acceptor = tls.acceptor();
        let established = Arc::clone(&established);
        let serve = Arc::clone(&serve);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Some((stream, _permit)) =
                handshake(tcp, remote, acceptor, slot, established, limits).await
            else {
                return;
            };
            serve(Accepted {
                stream,
                remote,
                watcher,
            })
            .await;
        });
    }
    tracing::debug!(
        listener = limits.listener,
        handshaking = handshakes.len(),
        "stopped accepting"
    );
}

/// Serves until `shutdown` resolves, then stops accepting and gives in-flight
/// requests `shutdown_grace_ms` to finish.
pub async fn run(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) {
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
    let limits = ConnectionLimits {
        max_connections: state.server.max_connections,
        max_handshakes: state.server.max_handshakes,
        handshake_timeout: state.server.handshake_timeout(),
        listener: "gateway",
    };
    let serving = Arc::clone(&state);
    accept_loop(listener, &tls, limits, &graceful, shutdown, move |conn| {
        serve_connection(Arc::clone(&serving), Arc::clone(&builder), conn)
    })
    .await;
    let grace = state.server.shutdown_grace();
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}

/// Serves the requests of one established gateway connection.
async fn serve_connection(
    state: Arc<AppState>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    conn: Accepted,
) {
    let Accepted {
        stream,
        remote,
        watcher,
    } = conn;
    let peer = Arc::new(Peer {
        cert: identity::peer_cert(stream.get_ref().1.peer_certificates()),
    });
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        let peer = Arc::clone(&peer);
        async move {
            let resp = proxy::guarded(state, peer, req, proxy::handle).await;
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_set_of_handshakes_gives_up_the_oldest() {
        let set = Arc::new(Handshakes::new(2));
        let mut a = set.enter();
        let mut b = set.enter();
        assert!(a.evicted.try_recv().is_err() && b.evicted.try_recv().is_err());
        let mut c = set.enter();
        assert!(a.evicted.try_recv().is_ok(), "the oldest gives up its slot");
        assert!(b.evicted.try_recv().is_err() && c.evicted.try_recv().is_err());
        assert_eq!(set.len(), 2);
        // An evicted connection leaving does not free a slot twice.
        drop(a);
        assert_eq!(set.len(), 2);
        // A handshake that ends frees its slot: the next one evicts nobody.
        drop(b);
        let mut d = set.enter();
        assert!(c.evicted.try_recv().is_err() && d.evicted.try_recv().is_err());
        assert_eq!(set.len(), 2);
        drop((c, d));
        assert_eq!(set.len(), 0);
    }
}
