//! [`HttpIngest::router`]: the ingest routes, the body limit and the credentials check.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::post;

use super::cloudevents::post_cloudevent;
use super::events::post_events;
use super::state::HttpIngest;
use crate::auth::{Authenticator, authenticate};

impl HttpIngest {
    /// The ingest routes, with the body limit and, when credentials are configured, the
    /// [`authenticate`] check (a route layer: an unknown path stays `404`).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/v1/events", post(post_events))
            .route("/v1/cloudevents", post(post_cloudevent))
            .layer(DefaultBodyLimit::max(self.inner.config.max_body_bytes));
        let routes = match &self.inner.credentials {
            Some(c) => routes.route_layer(middleware::from_fn_with_state(
                Authenticator::new(c.clone(), self.inner.metrics.clone()),
                authenticate,
            )),
            None => routes,
        };
        routes.with_state(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::super::fixtures::{TWO, ingest, post};

    /// Issue 19, finding 8: with a token set, unknown paths answered 401 instead of 404.
    #[tokio::test]
    async fn with_a_token_an_unknown_path_is_still_404() {
        let (ingest, _rx) = ingest(1, Some("s3cret"));
        let app = Router::new().merge(ingest.router());
        let resp = app
            .clone()
            .oneshot(Request::post("/v1/nothing").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = app
            .oneshot(Request::post("/v1/events").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"driftwatch\""
        );
    }

    #[tokio::test]
    async fn body_limit_token_and_backpressure() {
        let (ingest, _rx) = ingest(1, Some("s3cret"));
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let auth = [("authorization", "Bearer s3cret")];
        let big = "x".repeat(2000);
        let (status, json) = post(ingest.router(), "/v1/events", &big, &auth).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
        );
        // The first request fills the one-slot channel; the next one is told to come back later.
        assert_eq!(
            post(ingest.router(), "/v1/events", TWO, &auth).await.0,
            StatusCode::ACCEPTED
        );
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &auth).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("backpressure"))
        );
    }
}
