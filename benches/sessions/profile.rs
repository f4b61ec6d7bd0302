//! The session the benchmark stores: about 800 bytes in 10 attributes, as a web shop keeps.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CartItem {
    pub sku: String,
    pub qty: u32,
    pub price_cents: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Preferences {
    pub theme: String,
    pub language: String,
    pub timezone: String,
    pub newsletter: bool,
}

/// The whole session, as the naive baseline stores it (one blob).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Profile {
    pub user_id: u64,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
    pub csrf_token: String,
    pub cart: Vec<CartItem>,
    pub preferences: Preferences,
    pub recently_viewed: Vec<String>,
    pub last_order: String,
    pub visits: u32,
    pub flash: Vec<String>,
}

impl Profile {
    pub fn random(rng: &mut impl Rng) -> Self {
        let id: u64 = rng.random_range(1..10_000_000);
        let hex = |rng: &mut dyn rand::RngCore, n: usize| -> String {
            (0..n).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect()
        };
        Profile {
            user_id: id,
            name: format!("Customer Number {id:08}"),
            email: format!("customer.{id:08}@mail.example.com"),
            roles: vec!["customer".into(), "newsletter".into(), "beta-tester".into()],
            csrf_token: hex(rng, 43),
            cart: (0..4)
                .map(|i| CartItem { sku: format!("SKU-{:08}", id + i), qty: 1, price_cents: 1999 })
                .collect(),
            preferences: Preferences {
                theme: "dark".into(),
                language: "en-GB".into(),
                timezone: "Europe/London".into(),
                newsletter: true,
            },
            recently_viewed: (0..6).map(|i| format!("/products/item-{:08}", id + i)).collect(),
            last_order: format!("ORD-{}", hex(rng, 24)),
            visits: 1,
            flash: Vec::new(),
        }
    }

    /// Every attribute decoded from a redis-sessions session (a handler that reads them all).
    pub fn read_from(session: &redis_sessions::Session) -> redis_sessions::Result<Profile> {
        fn get<T: serde::de::DeserializeOwned + Default>(
            session: &redis_sessions::Session,
            name: &str,
        ) -> redis_sessions::Result<T> {
            Ok(session.get(name)?.unwrap_or_default())
        }
        Ok(Profile {
            user_id: get(session, "user_id")?,
            name: get(session, "name")?,
            email: get(session, "email")?,
            roles: get(session, "roles")?,
            csrf_token: get(session, "csrf_token")?,
            cart: get(session, "cart")?,
            preferences: session.get("preferences")?.unwrap_or_else(Preferences::default),
            recently_viewed: get(session, "recently_viewed")?,
            last_order: get(session, "last_order")?,
            visits: get(session, "visits")?,
            flash: Vec::new(),
        })
    }

    /// The attributes, as redis-sessions stores them (one per field; flash is separate).
    pub fn insert_into(&self, session: &mut redis_sessions::Session) -> redis_sessions::Result<()> {
        session.insert("user_id", &self.user_id)?;
        session.insert("name", &self.name)?;
        session.insert("email", &self.email)?;
        session.insert("roles", &self.roles)?;
        session.insert("csrf_token", &self.csrf_token)?;
        session.insert("cart", &self.cart)?;
        session.insert("preferences", &self.preferences)?;
        session.insert("recently_viewed", &self.recently_viewed)?;
        session.insert("last_order", &self.last_order)?;
        session.insert("visits", &self.visits)
    }
}

/// The change a saving request makes: the cart gets an item (and stays short).
pub fn change_cart(cart: &mut Vec<CartItem>, n: u64) {
    cart.push(CartItem { sku: format!("SKU-{n:08}"), qty: 1, price_cents: 999 });
    if cart.len() > 5 {
        cart.remove(0);
    }
}

/// A page view remembered (the list stays short).
pub fn view(viewed: &mut Vec<String>, n: u64) {
    viewed.push(format!("/products/item-{n:08}"));
    if viewed.len() > 6 {
        viewed.remove(0);
    }
}

/// Which attribute saving cycle `n` changes: the cart, the recently viewed list, the visit
/// counter, the CSRF token or the last order, in turn (from about 10 to about 170 bytes).
pub fn changed_attribute(n: u64) -> &'static str {
    ["cart", "recently_viewed", "visits", "csrf_token", "last_order"][(n % 5) as usize]
}

/// The CSRF token cycle `n` sets.
pub fn new_csrf(n: u64) -> String {
    format!("{n:043}")
}

/// The last order cycle `n` records.
pub fn new_order(n: u64) -> String {
    format!("ORD-{n:024}")
}

/// The flash message of a flash cycle.
pub const FLASH: &str = "Your cart was updated.";

/// Applies cycle `n`'s change to the whole profile (the naive store's way).
pub fn change_profile(profile: &mut Profile, n: u64) {
    match changed_attribute(n) {
        "cart" => change_cart(&mut profile.cart, n),
        "recently_viewed" => view(&mut profile.recently_viewed, n),
        "visits" => profile.visits += 1,
        "csrf_token" => profile.csrf_token = new_csrf(n),
        _ => profile.last_order = new_order(n),
    }
}
