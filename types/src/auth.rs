//! Who may call a group of endpoints: the `[http.auth]` (event and label ingest) and
//! `[webhook.auth]` (Alertmanager's webhook) sections of the configuration.
//!
//! Secrets come from a file (a mounted Kubernetes Secret) or an environment variable; an inline
//! value is accepted for tests and local runs. None of them is ever taken from the command line,
//! where `ps` would show it. The collector resolves and checks them (`collector::auth`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Credentials an endpoint group requires. Empty (the default): the endpoints are open.
///
/// A request is let in when it carries any one of the configured credentials: `Authorization:
/// Bearer <token>` (RFC 6750; the scheme is case-insensitive) or `Authorization: Basic
/// <base64(user:password)>` (RFC 7617), which is what Alertmanager's `http_config` sends with
/// `authorization` or `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token, inline. Default: none. Prefer `bearer_token_file` or `bearer_token_env`.
    pub bearer_token: Option<String>,
    /// File whose content (surrounding whitespace trimmed) is the bearer token. Default: none.
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding the bearer token. Default: none.
    pub bearer_token_env: Option<String>,
    /// HTTP basic authentication. Default: none.
    pub basic_auth: Option<BasicAuthConfig>,
}

impl AuthConfig {
    /// Whether any credential is configured.
    pub fn is_configured(&self) -> bool {
        self.bearer_token.is_some()
            || self.bearer_token_file.is_some()
            || self.bearer_token_env.is_some()
            || self.basic_auth.is_some()
    }
}

/// HTTP basic authentication: a user name and exactly one source of its password.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// The password, inline. Prefer `password_file` or `password_env`.
    #[serde(default)]
    pub password: Option<String>,
    /// File whose content (surrounding whitespace trimmed) is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}
