//! The registry login of one run, and the one refresh it may get.
//!
//! Credentials come from the caller (an ECR `GetAuthorizationToken`, a
//! Docker config login, or none) and may have a [`Refresh`] source. When the
//! registry refuses them, [`Auth::refresh`] fetches new ones, with three
//! rules:
//!
//! - **Single flight.** Requests that saw the same credentials refused share
//!   one refresh: the first one runs it, the others wait for it and then
//!   retry with its result. Each request says which credentials it sent (a
//!   [`Snapshot`]), so a request that was refused with credentials already
//!   replaced simply retries with the new ones.
//! - **At most one refresh per run.** Credentials refused again after the
//!   refresh are an error, never a loop. The expiry time a token comes with is
//!   not trusted to decide anything: moto hands out ECR tokens whose
//!   `expiresAt` lies in 2015.
//! - **A failed refresh is an error with its cause**, given to every request
//!   that waited for it.

use std::error::Error as StdError;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use crate::secret::Credentials;

/// The error a [`Refresh`] source may fail with.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Fetches fresh credentials (ECR's `GetAuthorizationToken` in `pipeline`).
#[async_trait]
pub trait Refresh: Send + Sync {
    async fn refresh(&self) -> Result<Credentials, BoxError>;
}

/// Refreshing the credentials failed; the cause is the source's own error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refreshing the registry credentials failed: {cause}")]
pub struct RefreshError {
    #[source]
    cause: Arc<dyn StdError + Send + Sync>,
}

impl RefreshError {
    /// The error the [`Refresh`] source returned.
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.cause
    }
}

/// The credentials a request is sent with, and which generation of them
/// they are; handed back to [`Auth::refresh`] when they are refused.
#[derive(Clone, Debug)]
pub struct Snapshot {
    generation: u64,
    credentials: Option<Credentials>,
}

impl Snapshot {
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// 0 for the credentials the run started with, 1 after the refresh.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// How the one refresh of the run went.
enum RefreshState {
    NotYet,
    Done,
    Failed(RefreshError),
}

/// The login shared by every request of a run.
pub struct Auth {
    current: RwLock<Snapshot>,
    source: Option<Box<dyn Refresh>>,
    /// Held while the refresh runs, so the requests that need it wait for
    /// it instead of starting their own.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl Auth {
    /// `credentials` to start with (none: anonymous), and where to get new
    /// ones when the registry refuses them (none: never refreshed).
    pub fn new(credentials: Option<Credentials>, source: Option<Box<dyn Refresh>>) -> Auth {
        Auth {
            current: RwLock::new(Snapshot {
                generation: 0,
                credentials,
            }),
            source,
            refresh: tokio::sync::Mutex::new(RefreshState::NotYet),
        }
    }

    /// The current credentials.
    pub fn credentials(&self) -> Option<Credentials> {
        self.snapshot().credentials
    }

    /// The current credentials with their generation: take one before
    /// sending, and pass it to [`Auth::refresh`] if they are refused.
    pub fn snapshot(&self) -> Snapshot {
        // A poisoned lock only means a panic elsewhere while the snapshot
        // was replaced whole; the value is still consistent.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After the registry refused the credentials of `seen`: whether to try
    /// again with [`Auth::snapshot`].
    ///
    /// `Ok(true)`: newer credentials are there, fetched now or by a refresh
    /// that another request started (this call waits for it). `Ok(false)`:
    /// nothing newer can be had, as there is no refresh source or the run's
    /// one refresh already happened. `Err`: the refresh failed, with its
    /// cause; every request that waited for it gets the same error.
    pub async fn refresh(&self, seen: &Snapshot) -> Result<bool, RefreshError> {
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let mut state = self.refresh.lock().await;
        if self.snapshot().generation != seen.generation {
            return Ok(true);
        }
        match &*state {
            RefreshState::Done => Ok(false),
            RefreshState::Failed(e) => Err(e.clone()),
            RefreshState::NotYet => match source.refresh().await {
                Ok(credentials) => {
                    let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                    *current = Snapshot {
                        generation: current.generation + 1,
                        credentials: Some(credentials),
                    };
                    *state = RefreshState::Done;
                    Ok(true)
                }
                Err(cause) => {
                    let e = RefreshError {
                        cause: Arc::from(cause),
                    };
                    *state = RefreshState::Failed(e.clone());
                    Err(e)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    struct Counting {
        calls: Arc<AtomicUsize>,
        fail: bool,
    }

    #[async_trait]
    impl Refresh for Counting {
        async fn refresh(&self) -> Result<Credentials, BoxError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.fail {
                return Err("GetAuthorizationToken: ThrottlingException".into());
            }
            Ok(Credentials::new("AWS", "new"))
        }
    }

    fn counting(fail: bool) -> (Auth, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counting {
            calls: calls.clone(),
            fail,
        };
        let auth = Auth::new(Some(Credentials::new("AWS", "old")), Some(Box::new(source)));
        (auth, calls)
    }

    #[tokio::test]
    async fn refreshes_once_never_in_a_loop() {
        let (auth, calls) = counting(false);
        let first = auth.snapshot();
        assert!(auth.refresh(&first).await.unwrap());
        let second = auth.snapshot();
        assert_eq!(second.generation(), 1);
        assert_eq!(second.credentials().unwrap().password.expose(), "new");
        // The refreshed credentials refused again: no second refresh.
        assert!(!auth.refresh(&second).await.unwrap());
        assert!(!auth.refresh(&second).await.unwrap());
        // A request that was refused with the old ones retries with the new.
        assert!(auth.refresh(&first).await.unwrap());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_refusals_share_one_refresh() {
        let (auth, calls) = counting(false);
        let seen = auth.snapshot();
        let (a, b, c) = tokio::join!(
            auth.refresh(&seen),
            auth.refresh(&seen),
            auth.refresh(&seen)
        );
        assert!(a.unwrap() && b.unwrap() && c.unwrap());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_refresh_is_an_error_with_its_cause_for_everyone() {
        let (auth, calls) = counting(true);
        let seen = auth.snapshot();
        let (a, b) = tokio::join!(auth.refresh(&seen), auth.refresh(&seen));
        for e in [a.unwrap_err(), b.unwrap_err()] {
            assert_eq!(
                e.to_string(),
                "refreshing the registry credentials failed: GetAuthorizationToken: ThrottlingException"
            );
            assert!(e.cause().to_string().contains("ThrottlingException"));
            assert!(StdError::source(&e).is_some());
        }
        assert!(auth.refresh(&seen).await.is_err(), "not tried again");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(auth.credentials().unwrap().password.expose(), "old");
    }

    #[tokio::test]
    async fn without_a_source_nothing_is_refreshed() {
        let auth = Auth::new(None, None);
        assert!(!auth.refresh(&auth.snapshot()).await.unwrap());
        assert!(auth.credentials().is_none());
    }
}
