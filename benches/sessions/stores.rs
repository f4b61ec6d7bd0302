//! The stores the benchmark compares, each as one or more app instances behind one interface.

use std::sync::{Arc, Mutex};

use redis_sessions::SessionStore;

use crate::naive::Naive;
use crate::ours;
use crate::profile::Profile;

/// What one cycle does.
#[derive(Clone, Copy)]
pub enum Kind {
    Read,
    Save,
    Regenerate,
    Flash,
}

/// How redis-sessions' handlers use the session they load.
#[derive(Clone, Copy)]
pub struct Handlers {
    /// `load_only` with the attributes a request uses, instead of `load`.
    pub partial: bool,
    /// Read cycles decode every attribute, not only two.
    pub read_all: bool,
}

/// A store's app instances: each has its own connections, and a cycle runs on one of them.
#[derive(Clone)]
pub enum Store {
    /// redis-sessions; with `true`, each session is logged in as one of 1,000 users when it is
    /// created (bound, in its user's index).
    Ours(Arc<[SessionStore]>, bool),
    Naive(Arc<[Naive]>),
}

pub type Outcome = Result<bool, String>;

impl Store {
    pub async fn create(&self, profile: &Profile) -> Result<String, String> {
        match self {
            Store::Ours(stores, bound) => {
                let store = &stores[0];
                let mut session = store.create().await.map_err(|e| e.to_string())?;
                profile.insert_into(&mut session).map_err(|e| e.to_string())?;
                store.save(&mut session).await.map_err(|e| e.to_string())?;
                if *bound {
                    let user = format!("user-{}", rand::random::<u16>() % 1000);
                    let login = redis_sessions::Login::new(user).with_label("benchmark");
                    store.login(&mut session, &login).await.map_err(|e| e.to_string())?;
                }
                Ok(session.token().expose().to_owned())
            }
            Store::Naive(stores) => stores[0].create(profile).await.map_err(|e| e.to_string()),
        }
    }

    /// Runs one cycle of `kind` on the session in `slot`, on app instance `instance`; false
    /// when the session was not there.
    pub async fn cycle(
        &self,
        kind: Kind,
        slot: &Mutex<String>,
        n: u64,
        instance: usize,
        handlers: Handlers,
    ) -> Outcome {
        let token = slot.lock().map_err(|e| e.to_string())?.clone();
        let err = |e: &dyn std::fmt::Display| e.to_string();
        match self {
            Store::Ours(stores, _) => {
                let s = &stores[instance % stores.len()];
                match kind {
                    Kind::Read => {
                        ours::read_request(s, &token, handlers).await.map_err(|e| err(&e))
                    }
                    Kind::Save => ours::save_request(s, &token, n, handlers.partial)
                        .await
                        .map_err(|e| err(&e)),
                    Kind::Flash => ours::flash_request(s, &token).await.map_err(|e| err(&e)),
                    Kind::Regenerate => {
                        let new = ours::regenerate_request(s, &token).await.map_err(|e| err(&e))?;
                        Ok(replace(slot, new))
                    }
                }
            }
            Store::Naive(stores) => {
                let s = &stores[instance % stores.len()];
                match kind {
                    Kind::Read => s.read_request(&token).await.map_err(|e| err(&e)),
                    Kind::Save => s.save_request(&token, n).await.map_err(|e| err(&e)),
                    Kind::Flash => s.flash_request(&token).await.map_err(|e| err(&e)),
                    Kind::Regenerate => {
                        let new = s.regenerate_request(&token).await.map_err(|e| err(&e))?;
                        Ok(replace(slot, new))
                    }
                }
            }
        }
    }
}

fn replace(slot: &Mutex<String>, new: Option<String>) -> bool {
    match (new, slot.lock()) {
        (Some(new), Ok(mut token)) => {
            *token = new;
            true
        }
        _ => false,
    }
}
