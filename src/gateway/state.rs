//! What every request of the gateway shares, built once by the lifecycle.

use std::sync::Arc;

use crate::audit::Auditor;
use crate::config::ServerConfig;
use crate::gateway::identity::{IdentityError, PeerCert};
use crate::gateway::upstream::Upstream;
use crate::policy::PolicyStore;
use crate::registers::Registers;

/// Shared state of the gateway, built once by `serve`/`demo`/tests.
pub struct AppState {
    pub server: ServerConfig,
    pub policy: Arc<PolicyStore>,
    pub upstream: Upstream,
    pub audit: Auditor,
    pub metrics: Arc<crate::gateway::metrics::Metrics>,
    pub registers: Registers,
}

/// What the connection established about the peer.
#[derive(Debug, Clone)]
pub struct Peer {
    pub cert: Result<PeerCert, IdentityError>,
}
