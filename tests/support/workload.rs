//! A small mixed workload that touches every operation.

use redis_sessions::SessionStore;

/// Creates, saves, loads, regenerates and flashes a few sessions; returns every token used.
pub async fn workload(store: &SessionStore) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..5 {
        let mut session = store.create().await.expect("create");
        tokens.push(session.token().expose().to_owned());
        session.insert("user", &format!("user{i}")).expect("insert");
        store.save(&mut session).await.expect("save");
        store.push_flash(&session, "hello").await.expect("push");
        store.load_and_pop_flash(session.token().expose()).await.expect("load");
        tokens.push(store.regenerate(&mut session).await.expect("regenerate").expose().to_owned());
        session.insert("after", &i).expect("insert");
        store.save(&mut session).await.expect("save");
        if i % 2 == 0 {
            store.destroy(&session).await.expect("destroy");
        }
    }
    tokens
}
