//! The tower layer: a [`Session`] in every request's extensions, finished after the handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::{error, warn};

use super::handle::{CookieAction, Session};
use super::CookieConfig;
use crate::SessionStore;

/// Gives every request a [`Session`] (through the extractor) and finishes it after the
/// handler: saves the changes, pushes flash messages, sets or clears the cookie.
///
/// ```
/// use redis_sessions::web::{CookieConfig, SessionLayer};
/// # fn demo(store: redis_sessions::SessionStore) {
/// let layer = SessionLayer::new(store).with_cookie(CookieConfig::default().with_name("sid"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    store: SessionStore,
    cookie: Arc<CookieConfig>,
    warned: Arc<AtomicBool>,
}

impl SessionLayer {
    /// A layer over `store`, with the secure cookie defaults of [`CookieConfig::default`].
    pub fn new(store: SessionStore) -> Self {
        SessionLayer {
            store,
            cookie: Arc::new(CookieConfig::default()),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the cookie's name and attributes. Default [`CookieConfig::default`].
    ///
    /// ```
    /// # use redis_sessions::web::{CookieConfig, SessionLayer};
    /// # fn demo(store: redis_sessions::SessionStore) {
    /// let layer = SessionLayer::new(store).with_cookie(CookieConfig::default().with_secure(false));
    /// # }
    /// ```
    pub fn with_cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = Arc::new(cookie);
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let (store, cookie, warned) =
            (self.store.clone(), self.cookie.clone(), self.warned.clone());
        SessionService { inner, store, cookie, warned }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    store: SessionStore,
    cookie: Arc<CookieConfig>,
    /// Whether the plain-HTTP warning was logged, once for the layer.
    warned: Arc<AtomicBool>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let cookies = request.headers().get_all(COOKIE).iter().filter_map(|v| v.to_str().ok());
        let session = Session::new(self.store.clone(), self.cookie.find(cookies));
        request.extensions_mut().insert(session.clone());
        // The host to warn about, and the flag that keeps the warning to once: looked at only
        // while a warning may still be due.
        let plain_http = match self.cookie.secure && !self.warned.load(Ordering::Relaxed) {
            true => super::plain_http::remote_plain_http_host(request.uri(), request.headers())
                .map(|host| (host, self.warned.clone())),
            false => None,
        };
        // The clone that was made ready goes into the future; a fresh clone stays for next time.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let cookie = self.cookie.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            let response = finish(session, response, &cookie).await;
            if let Some((host, warned)) = plain_http.filter(|_| sets_cookie(&response, &cookie)) {
                if !warned.swap(true, Ordering::Relaxed) {
                    warn!(
                        host,
                        "a Secure session cookie went out over plain HTTP to a host that is not \
                         loopback: browsers drop it, so sessions will not stick. Serve HTTPS (or \
                         set X-Forwarded-Proto at the proxy that ends it); to develop over plain \
                         HTTP on this host, use CookieConfig::default().with_secure(false)"
                    );
                }
            }
            Ok(response)
        })
    }
}

/// True when `response` sets (or clears) the session cookie.
fn sets_cookie<B>(response: &Response<B>, cookie: &CookieConfig) -> bool {
    let prefix = format!("{}=", cookie.cookie_name());
    let set = response.headers().get_all(SET_COOKIE);
    set.iter().any(|value| value.as_bytes().starts_with(prefix.as_bytes()))
}

/// Finishes the session and applies the cookie decision to the response.
async fn finish<B: Default>(
    session: Session,
    mut response: Response<B>,
    cookie: &CookieConfig,
) -> Response<B> {
    let (action, accessed) = session.finish().await;
    let action = match action {
        Ok(action) => action,
        Err(e) => {
            super::log_failure(&e);
            let mut failed = Response::new(B::default());
            *failed.status_mut() = super::status(&e);
            super::add_retry_after(&e, failed.headers_mut());
            return failed;
        }
    };
    let headers = response.headers_mut();
    if accessed {
        // The page depends on who asked: no shared cache may serve it to someone else.
        headers.append(VARY, HeaderValue::from_static("cookie"));
        if !headers.contains_key(CACHE_CONTROL) {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }
    let set_cookie = match action {
        CookieAction::Keep => return response,
        CookieAction::Issue { token, max_age_secs } => cookie.issue(&token, max_age_secs),
        CookieAction::Clear => cookie.clear(),
    };
    match HeaderValue::from_str(&set_cookie) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        // Only a CookieConfig with characters a header cannot carry gets here; say so rather
        // than hand out a session nobody can return to without a trace.
        Err(_) => error!("the session cookie is not a valid header value: check CookieConfig"),
    }
    response
}
