//! Telling, as far as a request shows, that it came over plain HTTP to a host that is not
//! loopback: there browsers drop a `Secure` cookie (and any `__Host-` one), so a session seems
//! not to work at all, with nothing in any log. The layer warns once when it issues such a
//! cookie for such a request.

use std::net::IpAddr;

use http::header::{FORWARDED, HOST};
use http::{HeaderMap, Uri};

/// The request's host, when it reached the app over plain HTTP and the host is not loopback.
/// HTTPS shows in the URI's scheme, or, behind a proxy that ends TLS, in `X-Forwarded-Proto`
/// or `Forwarded: proto=`. Browsers treat `localhost` and loopback addresses as secure
/// contexts, so a `Secure` cookie set over plain HTTP works there.
pub(super) fn remote_plain_http_host(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if uri.scheme_str() == Some("https") || forwarded_https(headers) {
        return None;
    }
    let host = headers.get(HOST).and_then(|value| value.to_str().ok()).or(uri.host())?;
    (!is_loopback(host)).then(|| host.to_owned())
}

/// True when a proxy says the client spoke HTTPS to it.
fn forwarded_https(headers: &HeaderMap) -> bool {
    let said =
        |value: &str, https: &dyn Fn(&str) -> bool| value.split(',').any(|v| https(v.trim()));
    let x_forwarded = headers.get_all("x-forwarded-proto").iter().filter_map(|v| v.to_str().ok());
    let forwarded = headers.get_all(FORWARDED).iter().filter_map(|v| v.to_str().ok());
    x_forwarded.into_iter().any(|v| said(v, &|proto| proto.eq_ignore_ascii_case("https")))
        || forwarded.into_iter().any(|v| {
            said(v, &|element| {
                element.split(';').any(|pair| {
                    pair.trim().split_once('=').is_some_and(|(name, value)| {
                        name.trim().eq_ignore_ascii_case("proto")
                            && value.trim().trim_matches('"').eq_ignore_ascii_case("https")
                    })
                })
            })
        })
}

/// `localhost`, a name under it, or a loopback address, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(), // [::1]:8080
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(host: &str, extra: &[(&'static str, &str)]) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().expect("header"));
        for (name, value) in extra {
            headers.append(*name, value.parse().expect("header"));
        }
        remote_plain_http_host(&Uri::from_static("/"), &headers)
    }

    #[test]
    fn loopback_hosts_and_https_behind_a_proxy_are_not_warned_about() {
        for loopback in ["localhost:3000", "app.localhost", "127.0.0.1:8080", "[::1]:80", "[::1]"] {
            assert_eq!(host(loopback, &[]), None, "{loopback}");
        }
        assert_eq!(host("shop.example", &[("x-forwarded-proto", "https")]), None);
        assert_eq!(host("shop.example", &[("forwarded", "for=1.2.3.4;proto=https")]), None);
        assert_eq!(host("shop.example", &[("forwarded", "by=a, Proto=\"HTTPS\"")]), None);
    }

    #[test]
    fn plain_http_to_any_other_host_is() {
        assert_eq!(host("192.168.1.20:3000", &[]).as_deref(), Some("192.168.1.20:3000"));
        assert_eq!(
            host("shop.example", &[("x-forwarded-proto", "http")]).as_deref(),
            Some("shop.example")
        );
        assert_eq!(host("[fe80::1]:80", &[]).as_deref(), Some("[fe80::1]:80"));
    }
}
