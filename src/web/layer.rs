//! The tower layer: a [`WebSession`] in every request's extensions, finished after the handler.

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

use super::cookie_config::CookieConfig;
use super::error_page::{self, error_response};
use super::handle::{CookieAction, Cookies, WebSession};
use crate::SessionStore;

/// Gives every request a [`WebSession`] (through the extractor) and finishes it after the
/// handler: saves the changes, pushes flash messages, sets or clears the cookie.
///
/// ```
/// use redis_sessions::web::{CookieConfig, SessionLayer};
/// # fn demo(store: redis_sessions::SessionStore) {
/// let layer = SessionLayer::new(store).with_cookie(CookieConfig::default().with_name("sid"));
/// # }
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    store: SessionStore,
    /// The stateless mode, when the layer was made for it.
    cookies: Option<Cookies>,
    cookie: Arc<CookieConfig>,
    error_page: ErrorPage,
    warned: Arc<AtomicBool>,
}

/// Renders the response that replaces the handler's when the session cannot be finished after
/// it (see [`SessionLayer::with_error_page`]).
pub(crate) type ErrorPage = Arc<dyn Fn(&crate::Error) -> Response<String> + Send + Sync>;

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store`, with the secure cookie defaults of [`CookieConfig::default`].
    pub fn new(store: SessionStore) -> Self {
        SessionLayer {
            store,
            cookies: None,
            cookie: Arc::new(CookieConfig::default()),
            error_page: Arc::new(error_response),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A layer for stateless sessions: each session is its cookie, signed (and sealed, when
    /// the store has encryption keys), and handlers use the same [`WebSession`] as with
    /// [`new`](Self::new). See [`crate::stateless`].
    ///
    /// ```
    /// use redis_sessions::stateless::{JwtKey, StatelessSessions};
    /// use redis_sessions::web::SessionLayer;
    /// # fn demo(store: redis_sessions::SessionStore) -> redis_sessions::Result<()> {
    /// let sessions = StatelessSessions::new(store, JwtKey::hs256("2026-12", &[7u8; 32])?)?;
    /// let layer = SessionLayer::stateless(sessions);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "stateless")]
    pub fn stateless(sessions: crate::stateless::StatelessSessions) -> Self {
        let store = sessions.store().clone();
        let cookies = Some(Cookies { sessions, budget: 0 });
        SessionLayer { cookies, ..SessionLayer::new(store) }
    }

    /// Sets the page that replaces the handler's response when the session cannot be saved
    /// after it (Redis unavailable, the session ended by a concurrent request): the handler's
    /// response would report a change that was lost. The failure is logged either way. Default
    /// [`error_response`]: 503 with `Retry-After` or 500, and a short
    /// text.
    ///
    /// ```
    /// use redis_sessions::web::{error_response, SessionLayer};
    /// # fn demo(store: redis_sessions::SessionStore) {
    /// let layer = SessionLayer::new(store).with_error_page(|error| {
    ///     let mut page = error_response(error); // status and Retry-After as by default
    ///     *page.body_mut() = format!("<h1>Sorry</h1><p>{}</p>", page.body());
    ///     page.headers_mut().insert("content-type", "text/html".parse().unwrap());
    ///     page
    /// });
    /// # }
    /// ```
    pub fn with_error_page(
        mut self,
        render: impl Fn(&crate::Error) -> Response<String> + Send + Sync + 'static,
    ) -> Self {
        self.error_page = Arc::new(render);
        self
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
        let cookies = self.cookies.as_ref().map(|cookies| cookies.named(&cookie.cookie_name()));
        let error_page = self.error_page.clone();
        SessionService { inner, store, cookies, cookie, error_page, warned }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    store: SessionStore,
    cookies: Option<Cookies>,
    cookie: Arc<CookieConfig>,
    error_page: ErrorPage,
    /// Whether the plain-HTTP warning was logged, once for the layer.
    warned: Arc<AtomicBool>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("store", &self.store)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let cookies = request.headers().get_all(COOKIE).iter().filter_map(|v| v.to_str().ok());
        let found = self.cookie.find(cookies);
        let session = WebSession::new(self.store.clone(), self.cookies.clone(), found);
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
        let (cookie, error_page) = (self.cookie.clone(), self.error_page.clone());
        Box::pin(async move {
            let response = inner.call(request).await?;
            let response = finish(session, response, &cookie, &error_page).await;
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
async fn finish<B: From<String>>(
    session: WebSession,
    mut response: Response<B>,
    cookie: &CookieConfig,
    error_page: &ErrorPage,
) -> Response<B> {
    let (action, accessed) = session.finish().await;
    let action = match action {
        Ok(action) => action,
        Err(e) => {
            error_page::log_failure(&e);
            return error_page(&e).map(B::from);
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
        CookieAction::Issue { token, max_age_secs, persistent } => {
            cookie.issue(&token, max_age_secs, persistent)
        }
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
