//! The shop's HTML: the page, the session card, readable times.

use std::time::{SystemTime, UNIX_EPOCH};

use redis_sessions::{Metadata, UserSession};

/// What the shop sells: name and price.
const TEAS: [(&str, &str); 4] = [
    ("Darjeeling", "€ 9.50"),
    ("Sencha", "€ 8.00"),
    ("Lapsang souchong", "€ 7.20"),
    ("Earl Grey", "€ 6.80"),
];

/// The shop: who is logged in, this request's flash messages, the catalogue and the cart.
pub(crate) fn shop(user: Option<&str>, flashes: &[String], cart: &[String]) -> String {
    let who = match user {
        Some(user) => format!(
            "<span>Logged in as <b>{}</b></span>\
             <form method=\"post\" action=\"/logout\"><button class=\"quiet\">Log out</button></form>",
            escape(user)
        ),
        None => "<span>Not logged in.</span>\
                 <form method=\"post\" action=\"/login\" class=\"login\">\
                 <input name=\"username\" placeholder=\"username\" aria-label=\"username\">\
                 <input name=\"password\" type=\"password\" placeholder=\"any password\" \
                 aria-label=\"password\"><label class=\"small\"><input type=\"checkbox\" \
                 name=\"remember\"> remember me</label><button>Log in</button></form>"
            .to_owned(),
    };
    let catalogue: String = TEAS
        .iter()
        .map(|(name, price)| {
            format!(
                "<li class=\"product\"><h3>{name}</h3><p class=\"price\">{price}</p>\
                 <form method=\"post\" action=\"/cart\"><input type=\"hidden\" name=\"item\" \
                 value=\"{name}\"><button>Add to cart</button></form></li>"
            )
        })
        .collect();
    let body = format!(
        "{flash}<main><section><h2>Teas</h2><ul class=\"catalogue\">{catalogue}</ul>\
         <form method=\"post\" action=\"/cart\" class=\"other\"><input name=\"item\" \
         placeholder=\"something else\" aria-label=\"item\"><button class=\"quiet\">Add</button>\
         </form></section><aside><h2>Cart</h2>{cart}\
         <p class=\"small\"><a href=\"/sessions\">Your session</a></p></aside></main>",
        flash = flash_list(flashes),
        cart = cart_list(cart),
    );
    layout("Teapot &amp; Co.", &who, &body)
}

/// The flash messages, styled as notices; nothing when there are none.
fn flash_list(flashes: &[String]) -> String {
    if flashes.is_empty() {
        return String::new();
    }
    let items: String = flashes.iter().map(|f| format!("<li>{}</li>", escape(f))).collect();
    format!("<ul class=\"flash\" role=\"status\">{items}</ul>")
}

/// The cart's lines, one per item with its count (the cart is sorted).
fn cart_list(cart: &[String]) -> String {
    if cart.is_empty() {
        return "<p class=\"muted\">Empty.</p>".to_owned();
    }
    let mut lines = String::new();
    for item in cart.chunk_by(|a, b| a == b) {
        let name = escape(&item[0]);
        lines.push_str(&format!(
            "<li><span>{name}</span><span class=\"count\">× {}</span>\
             <form method=\"post\" action=\"/cart/remove\"><input type=\"hidden\" name=\"item\" \
             value=\"{name}\"><button class=\"quiet\" aria-label=\"remove one {name}\">−</button>\
             </form></li>",
            item.len()
        ));
    }
    format!("<ul class=\"cart\">{lines}</ul><p class=\"small\">{} items</p>", cart.len())
}

/// The logged-in user's sessions, and which one is this visitor's.
pub(crate) struct Devices {
    pub(crate) list: Vec<UserSession>,
    pub(crate) current: Option<String>,
}

/// "Your devices": one row per session of the user, each with a button that logs it out, and
/// one for every device but this one. Nothing for a visitor who is not logged in.
fn devices(devices: &Devices, now_ms: i64) -> String {
    if devices.list.is_empty() {
        return String::new();
    }
    let mut rows = String::new();
    for device in &devices.list {
        let this = devices.current.as_deref() == Some(device.id.as_str());
        let seen = device.last_seen_ms.map_or("unknown".to_owned(), |at| when(at, now_ms));
        rows.push_str(&format!(
            "<li class=\"device\"><span><b>{label}</b>{mark}<br><span class=\"small\">signed \
             in {created}, last seen {seen}</span></span><form method=\"post\" \
             action=\"/sessions/revoke\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
             <button class=\"quiet\">Log out</button></form></li>",
            label = escape(&device.label),
            mark = if this { " (this device)" } else { "" },
            created = when(device.created_ms, now_ms),
            id = escape(&device.id),
        ));
    }
    format!(
        "<h2>Your devices</h2><ul class=\"devices\">{rows}</ul><form method=\"post\" \
         action=\"/sessions/revoke-others\"><button>Log out everywhere else</button></form>"
    )
}

/// The session card: what Redis holds about the visitor's session, and never its contents;
/// then the user's devices.
pub(crate) fn session(
    found: Option<(Metadata, String)>,
    user: &Devices,
    flashes: &[String],
    now_ms: i64,
) -> String {
    let body = match found {
        None => "<p>No session: nothing stored yet, so no cookie and no Redis key.</p>".to_owned(),
        Some((meta, fingerprint)) => format!(
            "<dl class=\"card\"><dt>fingerprint</dt><dd><code>{fingerprint}</code></dd>\
             <dt>created</dt><dd>{}</dd>\
             <dt>idle TTL</dt><dd>ends {} unless the session is used{}</dd>\
             <dt>absolute deadline</dt><dd>{}, whatever happens</dd></dl>\
             <p class=\"small\">The fingerprint is safe to log: it cannot open the session.</p>",
            when(meta.created_ms, now_ms),
            relative(meta.ttl_ms),
            match meta.idle_timeout_ms {
                Some(_) => " (remembered: its own timeouts)",
                None => "",
            },
            when(meta.deadline_ms, now_ms),
        ),
    };
    let back = "<a href=\"/\">Back to the shop</a>";
    let (flash, devices) = (flash_list(flashes), devices(user, now_ms));
    layout("Your session", back, &format!("{flash}<main><section>{body}{devices}</section></main>"))
}

fn layout(title: &str, header: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\">\
         <header><h1><a href=\"/\">{title}</a></h1><nav>{header}</nav></header>{body}\
         <footer>Sessions kept in Redis by redis-sessions.</footer></html>"
    )
}

/// Milliseconds since the Unix epoch, on this host's clock.
pub(crate) fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A moment as a UTC date and time, and how far from now.
fn when(at_ms: i64, now_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    let date = format!("{year}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC");
    format!("{date} ({})", relative(at_ms - now_ms))
}

/// A span of time in words: "in 29 min", "3 s ago".
fn relative(ms: i64) -> String {
    let secs = ms.abs() / 1000;
    let span = match secs {
        0..=89 => format!("{secs} s"),
        90..=5399 => format!("{} min", (secs + 30) / 60),
        5400..=129_599 => format!("{} h", (secs + 1800) / 3600),
        _ => format!("{} days", (secs + 43_200) / 86_400),
    };
    if ms < 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_and_spans() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let now = 1_796_644_800_000; // 2026-12-07 12:00:00 UTC
        assert_eq!(when(now - 180_000, now), "2026-12-07 11:57:00 UTC (3 min ago)");
        assert_eq!(relative(1_740_000), "in 29 min");
        assert_eq!(relative(86_400_000), "in 24 h");
        assert_eq!(relative(30 * 86_400_000), "in 30 days");
    }
}
