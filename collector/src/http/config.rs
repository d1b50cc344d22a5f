//! [`HttpIngestConfig`], the `[http]` section, its defaults and the resolution of the
//! credentials the ingest endpoints require.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{AuthConfig, AuthError, Credentials};
use crate::decode::oip::OipMapping;

/// Configuration of HTTP ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpIngestConfig {
    /// Largest request body in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Bearer token required in `Authorization: Bearer <token>` (default: none, open). Kept for
    /// older configurations: the same as `auth.bearer_token`; prefer `auth.bearer_token_file`.
    pub bearer_token: Option<String>,
    /// Credentials the ingest endpoints require (default: none, open): a bearer token or basic
    /// auth, from a file, an environment variable or inline ([`AuthConfig`]).
    pub auth: AuthConfig,
    /// Longest wait of a CloudEvents request for its response or the reverse (default `30s`).
    #[serde(with = "humantime_serde")]
    pub pairing_timeout: Duration,
    /// Most bytes of CloudEvents halves waiting for their pair, counted as the memory their
    /// decoded values take (at least their bodies' sizes; default 64 MiB); beyond it the oldest
    /// waiting halves expire early and are counted as unpaired.
    pub pairing_max_bytes: usize,
    /// How CloudEvents bodies map to features (model name, feature names of positional inputs).
    pub cloudevents: OipMapping,
    /// With a checkpoint, answer `202` only once the request's events are fsynced in the
    /// write-ahead log, so they survive `kill -9` (default `true`). `false` answers at once: a
    /// crash loses what was accepted since the last checkpoint.
    pub durable_ack: bool,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            bearer_token: None,
            auth: AuthConfig::default(),
            pairing_timeout: Duration::from_secs(30),
            pairing_max_bytes: crate::kafka::DEFAULT_MAX_PENDING_PAIR_BYTES,
            cloudevents: OipMapping::default(),
            durable_ack: true,
        }
    }
}

impl HttpIngestConfig {
    /// The credentials the ingest endpoints require, resolved; `None` when they are open.
    ///
    /// # Errors
    /// [`AuthError`] for an unusable secret (naming its key under `http`), or both
    /// `bearer_token` and `auth.bearer_token*` set; and for `max_body_bytes = 0`, which would
    /// refuse every request.
    pub fn credentials(&self) -> Result<Option<Credentials>, AuthError> {
        if self.max_body_bytes == 0 {
            return Err(AuthError::Invalid {
                key: "http.max_body_bytes".into(),
                message: "must be at least 1 (0 would refuse every request)".into(),
            });
        }
        let mut auth = self.auth.clone();
        if let Some(token) = &self.bearer_token {
            if auth.bearer_token.is_some()
                || auth.bearer_token_file.is_some()
                || auth.bearer_token_env.is_some()
            {
                return Err(AuthError::Invalid {
                    key: "http.bearer_token".into(),
                    message: "set either it or `http.auth.bearer_token*`, not both".into(),
                });
            }
            auth.bearer_token = Some(token.clone());
        }
        Credentials::resolve(&auth, "http.auth")
    }
}
