//! The status view: [`AlertsView`], a shared snapshot of the engine's pending and firing alerts
//! that a status page served from another task reads.

use std::sync::{Arc, PoisonError, RwLock};

use super::state::ActiveAlert;

/// A shared, read-only view of the engine's pending and firing alerts, refreshed after every
/// evaluation. Cloning shares it; hand it to a status page.
#[derive(Debug, Clone, Default)]
pub struct AlertsView {
    inner: Arc<RwLock<Vec<ActiveAlert>>>,
}

impl AlertsView {
    /// The pending and firing alerts, sorted by fingerprint.
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the snapshot (after every evaluation).
    pub(super) fn publish(&self, alerts: Vec<ActiveAlert>) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = alerts;
    }
}
