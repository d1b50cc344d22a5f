//! Readiness: [`Readiness`], the shared ready / not-ready state that `GET /readyz` answers.

use std::sync::{Arc, PoisonError, RwLock};

/// Whether the process is ready to serve: shared between the component that decides it (e.g. the
/// binary once sources are connected and state restored) and `GET /readyz`. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Readiness {
    state: Arc<RwLock<Result<(), String>>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// Not ready, with the reason `starting`.
    pub fn new() -> Self {
        Self {
            state: Arc::new(RwLock::new(Err("starting".to_string()))),
        }
    }

    /// Marks the process ready: `GET /readyz` answers 200.
    pub fn set_ready(&self) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Ok(());
    }

    /// Marks the process not ready: `GET /readyz` answers 503 with `reason`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Err(reason.into());
    }

    /// `Ok(())` when ready, else the reason.
    pub fn status(&self) -> Result<(), String> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
