//! TEMPORARY stand-in, replaced by the real cache on merge.
#![allow(missing_docs)]
use crate::{
    AccessToken, Error,
    token::{DynTokenSource, TokenSource},
};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct TokenCache {
    source: Arc<dyn DynTokenSource>,
    current: Arc<Mutex<Option<Arc<AccessToken>>>>,
}
impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}
impl TokenCache {
    pub fn new(source: impl TokenSource) -> Self {
        Self {
            source: Arc::new(source),
            current: Default::default(),
        }
    }
    pub fn cached(&self) -> Option<Arc<AccessToken>> {
        self.current.lock().unwrap().clone()
    }
    pub async fn token(&self) -> Result<Arc<AccessToken>, Error> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let t = Arc::new(self.source.fetch_boxed().await?);
        *self.current.lock().unwrap() = Some(t.clone());
        Ok(t)
    }
    pub fn invalidate(&self, token: &AccessToken) {
        let mut c = self.current.lock().unwrap();
        if c.as_ref().is_some_and(|t| t.same_token(token)) {
            *c = None
        }
    }
}
