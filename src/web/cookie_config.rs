//! The session cookie's name and attributes.

use cookie::{Cookie, SameSite};

/// How the session cookie is named and what attributes it carries.
///
/// The defaults are the strict ones: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`,
/// and so the `__Host-` name prefix, which tells browsers to refuse the cookie unless it is
/// Secure, host-only and for the whole site. No `Max-Age`: the cookie ends with the browser
/// session, and Redis decides how long the session lives.
///
/// ```
/// use redis_sessions::web::CookieConfig;
/// let config = CookieConfig::default();
/// assert_eq!(config.cookie_name(), "__Host-session");
/// assert_eq!(CookieConfig::default().with_secure(false).cookie_name(), "session");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Name before the prefix. Default `"session"`.
    pub name: String,
    /// `Secure` (sent over HTTPS only; browsers also allow it on `http://localhost`). Default true.
    pub secure: bool,
    /// `HttpOnly` (hidden from JavaScript). Default true.
    pub http_only: bool,
    /// `SameSite`. Default `Lax`.
    pub same_site: SameSite,
    /// `Path`. Default `/`.
    pub path: String,
    /// `Domain`. Default none (host-only).
    pub domain: Option<String>,
    /// Give the cookie a `Max-Age` equal to the session's remaining absolute lifetime, so it
    /// survives a browser restart ("remember me"). Default false.
    pub persistent: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "session".to_owned(),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            persistent: false,
        }
    }
}

impl CookieConfig {
    /// Sets the name (before the prefix). Default `"session"`.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// assert_eq!(CookieConfig::default().with_name("sid").cookie_name(), "__Host-sid");
    /// ```
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets `Secure`. Default true. Turn it off only for plain-HTTP development.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// assert!(!CookieConfig::default().with_secure(false).secure);
    /// ```
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets `HttpOnly`. Default true.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// assert!(!CookieConfig::default().with_http_only(false).http_only);
    /// ```
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite`. Default `Lax`.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// use cookie::SameSite;
    /// assert_eq!(CookieConfig::default().with_same_site(SameSite::Strict).same_site, SameSite::Strict);
    /// ```
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets `Path`. Default `/`. Any other path gives up the `__Host-` prefix for `__Secure-`.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// assert_eq!(CookieConfig::default().with_path("/app").cookie_name(), "__Secure-session");
    /// ```
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets `Domain`. Default none. A domain gives up the `__Host-` prefix for `__Secure-`.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// let config = CookieConfig::default().with_domain("example.com");
    /// assert_eq!(config.cookie_name(), "__Secure-session");
    /// ```
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Sets whether the cookie outlives the browser session. Default false.
    ///
    /// ```
    /// # use redis_sessions::web::CookieConfig;
    /// assert!(CookieConfig::default().with_persistent(true).persistent);
    /// ```
    pub fn with_persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// The cookie's full name: `__Host-` + name when Secure, host-only and for `/`; `__Secure-`
    /// + name when Secure otherwise; the bare name without Secure.
    pub fn cookie_name(&self) -> String {
        format!("{}{}", self.name_prefix(), self.name)
    }

    fn name_prefix(&self) -> &'static str {
        match (self.secure, self.domain.is_none() && self.path == "/") {
            (true, true) => "__Host-",
            (true, false) => "__Secure-",
            (false, _) => "",
        }
    }

    /// The `Set-Cookie` value that hands out `token`, living `max_age_secs` when persistent
    /// (this config's, or the session's own: `remember`).
    pub(crate) fn issue(&self, token: &str, max_age_secs: i64, remember: bool) -> String {
        let mut cookie = self.base(token.to_owned());
        if self.persistent || remember {
            cookie.set_max_age(cookie::time::Duration::seconds(max_age_secs.max(0)));
        }
        cookie.to_string()
    }

    /// The `Set-Cookie` value that makes the browser drop the cookie.
    pub(crate) fn clear(&self) -> String {
        let mut cookie = self.base(String::new());
        cookie.make_removal();
        cookie.to_string()
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::build((self.cookie_name(), value))
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site)
            .path(self.path.clone())
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie
    }

    /// This cookie's value among a request's `Cookie` headers. Runs on every request, so it
    /// compares names in place rather than building the full name.
    pub(crate) fn find<'a>(&self, headers: impl Iterator<Item = &'a str>) -> Option<String> {
        let prefix = self.name_prefix();
        headers
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name().strip_prefix(prefix) == Some(self.name.as_str()))
            .map(|cookie| cookie.value().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cookies_carry_the_secure_defaults() {
        let set = CookieConfig::default().issue("tok", 60, false);
        for part in ["__Host-session=tok", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!set.contains("Domain") && !set.contains("Max-Age"), "{set}");
        let persistent = CookieConfig::default().with_persistent(true).issue("tok", 60, false);
        assert!(persistent.contains("Max-Age=60"), "{persistent}");
        let remembered = CookieConfig::default().issue("tok", 90, true);
        assert!(remembered.contains("Max-Age=90"), "a session's own expiry: {remembered}");
        let cleared = CookieConfig::default().clear();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn finds_its_cookie_among_others() {
        let config = CookieConfig::default();
        let headers = ["a=1; __Host-session=abc", "b=2"];
        assert_eq!(config.find(headers.into_iter()).as_deref(), Some("abc"));
        assert_eq!(
            config.find(["session=abc"].into_iter()),
            None,
            "the prefix is part of the name"
        );
    }
}
