//! What a failed session operation answers: a short page (503 with `Retry-After` when Redis is
//! unavailable, 401 for a stolen token's reuse, 500 otherwise), and the error logged once with
//! its causes.

/// Lets handlers use `?` on session operations: the response of [`error_response`] (503 with
/// `Retry-After` when Redis is unavailable, 401 for a reused token, 500 otherwise, a short text
/// body), and the error
/// logged once at ERROR with its causes. An application that wants its own error pages maps
/// the error in its handler instead of using `?` on it, and gives the layer its page for
/// failures after the handler with
/// [`SessionLayer::with_error_page`](super::SessionLayer::with_error_page).
impl axum::response::IntoResponse for crate::Error {
    fn into_response(self) -> axum::response::Response {
        log_failure(&self);
        error_response(&self).map(axum::body::Body::from)
    }
}

/// The response a session failure gets unless the application renders its own: 503 Service
/// Unavailable with `Retry-After` when Redis cannot be reached or refused for a passing reason
/// ([`Error::is_unavailable`](crate::Error::is_unavailable)), 401 Unauthorized for
/// [`Error::TokenReused`](crate::Error::TokenReused) (the session was revoked: log in again),
/// 500 otherwise; the body names the
/// kind of failure in a few words, for the visitor, and nothing of its cause.
///
/// ```
/// let response = redis_sessions::web::error_response(&redis_sessions::Error::SessionGone);
/// assert_eq!(response.status(), 500);
/// assert_eq!(response.body(), "The session has ended; reload the page.");
/// ```
pub fn error_response(error: &crate::Error) -> http::Response<String> {
    let mut response = http::Response::new(visitor_text(error).to_owned());
    *response.status_mut() = status(error);
    let headers = response.headers_mut();
    let text = http::HeaderValue::from_static("text/plain; charset=utf-8");
    headers.insert(http::header::CONTENT_TYPE, text);
    if error.is_unavailable() {
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

/// Seconds a 503 asks the client to wait before it tries again: a restart or a failover of
/// Redis takes seconds.
const RETRY_AFTER_SECS: &str = "5";

/// The status a failed session operation answers with: 503 when Redis cannot be reached, 401
/// when a retired token was reused (the session is revoked: the visitor must log in), 500
/// otherwise.
fn status(error: &crate::Error) -> http::StatusCode {
    if error.is_unavailable() {
        http::StatusCode::SERVICE_UNAVAILABLE
    } else if matches!(error, crate::Error::TokenReused { .. }) {
        http::StatusCode::UNAUTHORIZED
    } else {
        http::StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// What a visitor is told: the kind of failure, nothing of its cause.
fn visitor_text(error: &crate::Error) -> &'static str {
    match error {
        _ if error.is_unavailable() => "The session store is unavailable; try again shortly.",
        crate::Error::SessionGone => "The session has ended; reload the page.",
        crate::Error::TooLarge { .. } => "The session would grow over its limit.",
        crate::Error::TokenReused { .. } => {
            "This session was ended for your security; log in again."
        }
        _ => "The session could not be handled.",
    }
}

/// Logs a failure once, at ERROR, with every cause in its chain.
pub(super) fn log_failure(error: &crate::Error) {
    let mut causes = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push_str(": ");
        causes.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %error, causes = %causes, "session operation failed");
}
