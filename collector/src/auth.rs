//! Authentication of the endpoints that change state or trigger actions: event ingest
//! (`/v1/events`, `/v1/cloudevents`) and, wired by the binary, Alertmanager's webhook
//! (`/v1/alertmanager`).
//!
//! [`Credentials::resolve`] turns an [`AuthConfig`] into the secrets to compare with, once, at
//! start (an empty token, an unreadable file or an unset variable is an error naming the key);
//! [`authenticate`] is the axum middleware that checks each request. Comparisons are constant
//! time: the SHA-256 digests of the given and the expected secret are compared with [`subtle`],
//! so neither the content nor the length of the secret shows in the timing. The middleware is
//! meant for `Router::route_layer`, so a path that does not exist still answers `404`, not `401`.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use telemetry::Emit;
pub use types::auth::{AuthConfig, BasicAuthConfig};

use crate::telemetry::events::RequestRejected;
use crate::telemetry::{CollectorMetrics, Refusal, RejectReason};

/// A configuration of credentials that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A value is empty, ambiguous or malformed.
    #[error("invalid setting `{key}`: {message}")]
    Invalid {
        /// The configuration key, e.g. `http.auth.bearer_token_file`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A secret file cannot be read.
    #[error("invalid setting `{key}`: cannot read {}: {source}", path.display())]
    File {
        /// The configuration key.
        key: String,
        /// The file.
        path: std::path::PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

/// A secret, kept as its SHA-256 digest; its `Debug` never shows it.
#[derive(Clone)]
struct Secret([u8; 32]);

impl Secret {
    fn new(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// Constant-time comparison of digests (equal length whatever the input's).
    fn matches(&self, given: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(given).into();
        bool::from(self.0.ct_eq(&given))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The resolved credentials of one endpoint group.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The bearer token.
    bearer: Option<Secret>,
    /// `user:password`, as Basic authentication encodes it.
    basic: Option<Secret>,
}

/// Why a request was refused (a bounded label value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization` header, or one of a scheme that is not configured.
    Missing,
    /// Credentials of a configured scheme that do not match.
    Wrong,
}

impl Rejection {
    /// The message of the `401` answer.
    pub fn message(self) -> &'static str {
        match self {
            Rejection::Missing => {
                "missing credentials: send `Authorization: Bearer <token>` or the configured basic auth"
            }
            Rejection::Wrong => "wrong credentials",
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Reads one secret from exactly one of its sources: inline, file or environment variable.
fn secret(
    key: &str,
    inline: (&str, Option<&String>),
    file: (&str, Option<&Path>),
    env: (&str, Option<&String>),
) -> Result<Option<Vec<u8>>, AuthError> {
    let given: Vec<&str> = [
        inline.1.map(|_| inline.0),
        file.1.map(|_| file.0),
        env.1.map(|_| env.0),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        return Err(invalid(
            &format!("{key}.{}", given[0]),
            format!("set only one of `{}`", given.join("`, `")),
        ));
    }
    let (name, value) = if let Some(v) = inline.1 {
        // Trimmed like the file and variable forms: a header's token is trimmed too, so an
        // untrimmed secret could never match.
        (inline.0, v.trim().to_string())
    } else if let Some(path) = file.1 {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::File {
            key: format!("{key}.{}", file.0),
            path: path.to_path_buf(),
            source,
        })?;
        (file.0, text.trim().to_string())
    } else if let Some(var) = env.1 {
        let value = std::env::var(var).map_err(|e| {
            invalid(
                &format!("{key}.{}", env.0),
                format!("environment variable `{var}`: {e}"),
            )
        })?;
        (env.0, value.trim().to_string())
    } else {
        return Ok(None);
    };
    if value.is_empty() {
        return Err(invalid(
            &format!("{key}.{name}"),
            "is empty (an empty secret would refuse every request; remove the key to leave the endpoints open)",
        ));
    }
    Ok(Some(value.into_bytes()))
}

impl Credentials {
    /// Resolves `config` (the section at `key`, e.g. `http.auth`); `None` when nothing is
    /// configured (the endpoints are open).
    ///
    /// # Errors
    /// [`AuthError::Invalid`] for an empty secret, two sources of one secret, an unset variable,
    /// a user name with a `:` (RFC 7617); [`AuthError::File`] for an unreadable secret file.
    pub fn resolve(config: &AuthConfig, key: &str) -> Result<Option<Self>, AuthError> {
        let bearer = secret(
            key,
            ("bearer_token", config.bearer_token.as_ref()),
            ("bearer_token_file", config.bearer_token_file.as_deref()),
            ("bearer_token_env", config.bearer_token_env.as_ref()),
        )?;
        let basic = match &config.basic_auth {
            None => None,
            Some(b) => {
                let key = format!("{key}.basic_auth");
                if b.username.is_empty() || b.username.contains(':') {
                    return Err(invalid(
                        &format!("{key}.username"),
                        "must be non-empty and without `:` (RFC 7617)",
                    ));
                }
                let password = secret(
                    &key,
                    ("password", b.password.as_ref()),
                    ("password_file", b.password_file.as_deref()),
                    ("password_env", b.password_env.as_ref()),
                )?
                .ok_or_else(|| {
                    invalid(
                        &format!("{key}.password_file"),
                        "basic_auth needs one of `password`, `password_file`, `password_env`",
                    )
                })?;
                let mut pair = format!("{}:", b.username).into_bytes();
                pair.extend(password);
                Some(Secret::new(&pair))
            }
        };
        Ok((bearer.is_some() || basic.is_some()).then(|| Self {
            bearer: bearer.as_deref().map(Secret::new),
            basic,
        }))
    }

    /// Checks a request's `Authorization` header. The scheme is matched case-insensitively
    /// (RFC 9110 section 11.1); the secret in constant time.
    ///
    /// # Errors
    /// The [`Rejection`] to answer `401` with.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(Rejection::Missing);
        };
        let (scheme, given) = value.trim().split_once(' ').unwrap_or((value, ""));
        let given = given.trim();
        let expected = if scheme.eq_ignore_ascii_case("bearer") {
            self.bearer.as_ref().map(|s| (s, given.as_bytes().to_vec()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(given)
                .unwrap_or_default();
            self.basic.as_ref().map(|s| (s, decoded))
        } else {
            None
        };
        match expected {
            None => Err(Rejection::Missing),
            Some((secret, given)) if secret.matches(&given) => Ok(()),
            Some(_) => Err(Rejection::Wrong),
        }
    }
}

/// The state of the [`authenticate`] middleware.
#[derive(Debug, Clone)]
pub struct Authenticator {
    credentials: Arc<Credentials>,
    metrics: CollectorMetrics,
}

impl Authenticator {
    /// Checks requests against `credentials`, counting refusals in
    /// `driftwatch_http_rejected_total{reason="unauthorized"}`.
    pub fn new(credentials: Credentials, metrics: CollectorMetrics) -> Self {
        Self {
            credentials: Arc::new(credentials),
            metrics,
        }
    }
}

/// axum middleware: `401` with `WWW-Authenticate` unless the request carries the credentials.
/// Use with `Router::route_layer(axum::middleware::from_fn_with_state(authenticator,
/// authenticate))`.
pub async fn authenticate(
    State(auth): State<Authenticator>,
    request: Request,
    next: Next,
) -> Response {
    match auth.credentials.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(rejection) => {
            let reason = RejectReason::Refused(Refusal::Unauthorized);
            auth.metrics.emit(RequestRejected { reason });
            let mut response = crate::response::error(
                StatusCode::UNAUTHORIZED,
                reason.as_str(),
                rejection.message().to_string(),
                None,
            );
            let challenge = match (&auth.credentials.bearer, &auth.credentials.basic) {
                (Some(_), _) => "Bearer realm=\"driftwatch\"",
                (None, _) => "Basic realm=\"driftwatch\"",
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            response.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    fn bearer(token: &str) -> AuthConfig {
        AuthConfig {
            bearer_token: Some(token.into()),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn nothing_configured_leaves_the_endpoints_open() {
        assert!(
            Credentials::resolve(&AuthConfig::default(), "webhook.auth")
                .unwrap()
                .is_none()
        );
    }

    /// Issue 19, finding 8: a lowercase `bearer` scheme was refused.
    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_exact() {
        let c = Credentials::resolve(&bearer("s3cret"), "k")
            .unwrap()
            .unwrap();
        for ok in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert_eq!(c.check(&headers(ok)), Ok(()), "{ok}");
        }
        assert_eq!(c.check(&headers("Bearer s3cre")), Err(Rejection::Wrong));
        assert_eq!(c.check(&headers("Bearer s3cret2")), Err(Rejection::Wrong));
        assert_eq!(c.check(&headers("Bearer")), Err(Rejection::Wrong));
        assert_eq!(c.check(&headers("Basic czNjcmV0")), Err(Rejection::Missing));
        assert_eq!(c.check(&HeaderMap::new()), Err(Rejection::Missing));
    }

    #[test]
    fn basic_auth_as_alertmanager_sends_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "hunter2\n").unwrap();
        let config = AuthConfig {
            basic_auth: Some(BasicAuthConfig {
                username: "alertmanager".into(),
                password_file: Some(file),
                ..BasicAuthConfig::default()
            }),
            ..AuthConfig::default()
        };
        let c = Credentials::resolve(&config, "webhook.auth")
            .unwrap()
            .unwrap();
        // base64("alertmanager:hunter2")
        let good = "Basic YWxlcnRtYW5hZ2VyOmh1bnRlcjI=";
        assert_eq!(c.check(&headers(good)), Ok(()));
        // base64("alertmanager:hunter3")
        assert_eq!(
            c.check(&headers("Basic YWxlcnRtYW5hZ2VyOmh1bnRlcjM=")),
            Err(Rejection::Wrong)
        );
        assert_eq!(
            c.check(&headers("Basic !!not base64")),
            Err(Rejection::Wrong)
        );
        assert_eq!(c.check(&headers("Bearer hunter2")), Err(Rejection::Missing));
    }

    /// Issue 19, finding 8: `bearer_token = ""` passed `check-config` and then refused all ingest.
    #[test]
    fn unusable_secrets_are_errors_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let blank = dir.path().join("blank");
        std::fs::write(&blank, "  \n").unwrap();
        let cases: Vec<(AuthConfig, &str)> = vec![
            (bearer(""), "`http.auth.bearer_token`: is empty"),
            (
                AuthConfig {
                    bearer_token_file: Some(blank),
                    ..AuthConfig::default()
                },
                "`http.auth.bearer_token_file`: is empty",
            ),
            (
                AuthConfig {
                    bearer_token_file: Some(dir.path().join("absent")),
                    ..AuthConfig::default()
                },
                "`http.auth.bearer_token_file`: cannot read",
            ),
            (
                AuthConfig {
                    bearer_token_env: Some("DRIFTWATCH_TEST_UNSET_TOKEN_VARIABLE".into()),
                    ..AuthConfig::default()
                },
                "environment variable `DRIFTWATCH_TEST_UNSET_TOKEN_VARIABLE`",
            ),
            (
                AuthConfig {
                    bearer_token: Some("a".into()),
                    bearer_token_env: Some("B".into()),
                    ..AuthConfig::default()
                },
                "set only one of `bearer_token`, `bearer_token_env`",
            ),
            (
                AuthConfig {
                    basic_auth: Some(BasicAuthConfig {
                        username: "a:b".into(),
                        password: Some("p".into()),
                        ..BasicAuthConfig::default()
                    }),
                    ..AuthConfig::default()
                },
                "`http.auth.basic_auth.username`",
            ),
            (
                AuthConfig {
                    basic_auth: Some(BasicAuthConfig {
                        username: "a".into(),
                        ..BasicAuthConfig::default()
                    }),
                    ..AuthConfig::default()
                },
                "basic_auth needs one of",
            ),
        ];
        for (config, needle) in cases {
            let err = Credentials::resolve(&config, "http.auth").unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let c = Credentials::resolve(&bearer("s3cret"), "k")
            .unwrap()
            .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
