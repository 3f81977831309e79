//! Retries as a policy value: how many, for how long, and how far apart.
//!
//! A [`RetryPolicy`] says how many retries an operation gets and the window
//! of time they must fit in; [`retry`] runs any fallible async operation
//! under it, so the registry client and its caller's other operations (an
//! engine push, say) retry the same way. The caller says which errors are
//! worth another try, and may pass the delay the server asked for
//! (`Retry-After`); an optional observer hears of each retry so a progress
//! view can show it.
//!
//! The schedule itself is backon's exponential backoff with jitter; this
//! module adds what backon's retry loop does not: the wall-clock window
//! (time spent in the attempts counts, not only the sleeps), the server's
//! `Retry-After` in place of the backoff, and how many attempts were made,
//! which the final error states (`… (gave up after 6 attempts in 1m58s)`).
//! The loop is also available by hand ([`Attempts`]) for operations that
//! borrow mutably and so cannot be a closure returning a future.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// How an operation is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `retries + 1` attempts).
    pub retries: u32,
    /// No retry starts, and no delay ends, later than this after the first
    /// attempt started.
    pub window: Duration,
    /// The first delay; each next one doubles, up to `max_delay`. A random
    /// jitter of up to the delay itself is added, so clients that failed
    /// together do not retry together.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 retries within 2 minutes, 500 ms to 20 s apart (before jitter).
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 5,
            window: Duration::from_secs(120),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// Counts the attempts at one operation, starting now; see [`Attempts`].
    pub fn attempts(&self) -> Attempts<'_> {
        Attempts {
            policy: self,
            backoff: self.backoff().build(),
            started: Instant::now(),
            failed: 0,
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries as usize)
            .with_jitter()
    }
}

/// An error worth another try, and how long the server asked to wait
/// before it (`Retry-After`), if it did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transient {
    pub retry_after: Option<Duration>,
}

/// What an observer is told before each retry.
#[derive(Clone, Copy)]
pub struct Retrying<'a> {
    /// The attempt that just failed, from 1.
    pub attempt: u32,
    /// Why it failed.
    pub cause: &'a dyn fmt::Display,
    /// How long until the next attempt.
    pub delay: Duration,
}

impl fmt::Debug for Retrying<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("attempt", &self.attempt)
            .field("cause", &self.cause.to_string())
            .field("delay", &self.delay)
            .finish()
    }
}

/// A callback told about each retry (see [`Retrying`]).
pub type RetryObserver = std::sync::Arc<dyn Fn(&Retrying<'_>) + Send + Sync>;

/// The last error of a retried operation, with how many attempts were made.
#[derive(Debug)]
pub struct RetryError<E> {
    pub error: E,
    /// Attempts made, the first one included.
    pub attempts: u32,
    /// From the start of the first attempt to the end of the last one.
    pub elapsed: Duration,
    /// Whether the last error was still transient, so the retries or the
    /// window ran out (rather than an error not worth retrying).
    pub exhausted: bool,
}

impl<E> RetryError<E> {
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.exhausted {
            write!(f, " ({})", gave_up(self.attempts, self.elapsed))?;
        }
        Ok(())
    }
}

impl<E: std::error::Error> std::error::Error for RetryError<E> {
    /// The error's own source: its message is already part of this one's.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `gave up after 6 attempts in 1m58s`.
pub(crate) fn gave_up(attempts: u32, elapsed: Duration) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    format!(
        "gave up after {attempts} attempt{plural} in {}",
        human(elapsed)
    )
}

/// `250ms`, `2.5s`, `42s`, `1m58s`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// Runs `op` until it succeeds, fails with an error that `is_transient`
/// does not call transient, or `policy` allows no more retries; waits
/// between attempts as the policy (or the error's `retry_after`) says, and
/// tells `observer` about each retry.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use oci_registry::{RetryPolicy, Transient, retry};
///
/// let policy = RetryPolicy { min_delay: Duration::from_millis(1), ..RetryPolicy::default() };
/// let mut calls = 0;
/// let result: Result<u32, _> = retry(&policy, None, |_: &String| Some(Transient::default()), || {
///     calls += 1;
///     let outcome = if calls < 3 { Err(format!("HTTP 503 (call {calls})")) } else { Ok(calls) };
///     async move { outcome }
/// })
/// .await;
/// assert_eq!(result.unwrap(), 3);
///
/// let once = RetryPolicy { retries: 1, min_delay: Duration::from_millis(1), ..RetryPolicy::default() };
/// let e = retry(&once, None, |_: &&str| Some(Transient::default()), || async { Err::<(), _>("HTTP 503") })
///     .await
///     .unwrap_err();
/// assert_eq!(e.attempts, 2);
/// assert!(e.to_string().starts_with("HTTP 503 (gave up after 2 attempts in "));
/// # }
/// ```
///
/// An operation that cannot be a closure returning a future (one that
/// borrows something mutably, say) loops over [`RetryPolicy::attempts`]
/// instead.
pub async fn retry<T, E, Fut, Op, C>(
    policy: &RetryPolicy,
    observer: Option<&(dyn Fn(&Retrying<'_>) + Send + Sync)>,
    is_transient: C,
    mut op: Op,
) -> Result<T, RetryError<E>>
where
    Op: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    C: Fn(&E) -> Option<Transient>,
    E: fmt::Display,
{
    let mut attempts = policy.attempts();
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) => {
                let transient = is_transient(&e);
                attempts.failed(e, transient, observer).await?;
            }
        }
    }
}

/// The attempts at one operation under a [`RetryPolicy`], for a retry loop
/// written out by hand:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use oci_registry::{RetryError, RetryPolicy, Transient};
///
/// let policy = RetryPolicy { min_delay: Duration::from_millis(1), ..RetryPolicy::default() };
/// let mut log = Vec::new(); // borrowed mutably by every attempt
/// let mut attempts = policy.attempts();
/// let outcome: Result<(), RetryError<String>> = loop {
///     log.push("pushing");
///     let result = if log.len() < 2 { Err("connection reset".to_string()) } else { Ok(()) };
///     match result {
///         Ok(()) => break Ok(()),
///         Err(e) => {
///             if let Err(gave_up) = attempts.failed(e, Some(Transient::default()), None).await {
///                 break Err(gave_up);
///             }
///         }
///     }
/// };
/// assert!(outcome.is_ok());
/// assert_eq!(log.len(), 2);
/// # }
/// ```
pub struct Attempts<'p> {
    policy: &'p RetryPolicy,
    backoff: ExponentialBackoff,
    started: Instant,
    failed: u32,
}

impl Attempts<'_> {
    /// An attempt failed with `error` (`transient`: worth another try, as
    /// the caller judges it). Waits before the next attempt and returns
    /// `Ok`, telling `observer`; or returns the error with the count of
    /// attempts when it is not transient, or the retries or the window are
    /// used up.
    pub async fn failed<E>(
        &mut self,
        error: E,
        transient: Option<Transient>,
        observer: Option<&(dyn Fn(&Retrying<'_>) + Send + Sync)>,
    ) -> Result<(), RetryError<E>>
    where
        E: fmt::Display,
    {
        self.failed += 1;
        let delay = transient.and_then(|t| {
            // Past the retries there is no next delay, whatever the server asks.
            let next = self.backoff.next()?;
            let delay = t.retry_after.unwrap_or(next);
            (self.started.elapsed() + delay <= self.policy.window).then_some(delay)
        });
        let Some(delay) = delay else {
            return Err(RetryError {
                error,
                attempts: self.failed,
                elapsed: self.started.elapsed(),
                exhausted: transient.is_some(),
            });
        };
        if let Some(observer) = observer {
            observer(&Retrying {
                attempt: self.failed,
                cause: &error,
                delay,
            });
        }
        drop(error);
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Attempts that failed so far.
    pub fn failures(&self) -> u32 {
        self.failed
    }
}

/// The delay a `Retry-After` header value asks for: a number of seconds, or
/// an HTTP date (a date in the past asks for none).
/// <https://www.rfc-editor.org/rfc/rfc9110#field.retry-after>
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            window: Duration::from_secs(10),
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    fn always(_: &String) -> Option<Transient> {
        Some(Transient::default())
    }

    #[tokio::test]
    async fn never_more_than_the_retries() {
        let mut calls = 0;
        let e = retry(&quick(5), None, always, || {
            calls += 1;
            async { Err::<(), _>("HTTP 503".to_string()) }
        })
        .await
        .unwrap_err();
        assert_eq!((calls, e.attempts, e.exhausted), (6, 6, true));
        assert!(
            e.to_string()
                .starts_with("HTTP 503 (gave up after 6 attempts in "),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let mut calls = 0;
        let e = retry(
            &quick(5),
            None,
            |_: &String| None,
            || {
                calls += 1;
                async { Err::<(), _>("HTTP 404".to_string()) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((calls, e.attempts, e.exhausted), (1, 1, false));
        assert_eq!(e.to_string(), "HTTP 404");
    }

    #[tokio::test]
    async fn the_observer_hears_each_retry() {
        let seen = Mutex::new(Vec::new());
        let observer = |r: &Retrying<'_>| {
            seen.lock()
                .unwrap()
                .push((r.attempt, r.cause.to_string(), r.delay));
        };
        let mut calls = 0;
        let result = retry(&quick(5), Some(&observer), always, || {
            calls += 1;
            let outcome = if calls < 3 {
                Err(format!("reset {calls}"))
            } else {
                Ok(calls)
            };
            async move { outcome }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].0, seen[0].1.as_str()), (1, "reset 1"));
        assert_eq!((seen[1].0, seen[1].1.as_str()), (2, "reset 2"));
        // The second delay is at least the doubled first one, before jitter.
        assert!(seen[1].2 >= Duration::from_millis(2), "{seen:?}");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_window_gives_up_at_once() {
        let policy = RetryPolicy {
            window: Duration::from_secs(1),
            ..quick(5)
        };
        let started = Instant::now();
        let e = retry(
            &policy,
            None,
            |_: &String| {
                Some(Transient {
                    retry_after: Some(Duration::from_secs(30)),
                })
            },
            || async { Err::<(), _>("HTTP 429".to_string()) },
        )
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "did not wait 30 s"
        );
        assert_eq!(e.attempts, 1);
        assert!(e.to_string().contains("gave up after 1 attempt in"), "{e}");
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(85) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn elapsed_times_read_well() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(2500)), "2.5s");
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(118)), "1m58s");
        assert_eq!(
            gave_up(6, Duration::from_secs(118)),
            "gave up after 6 attempts in 1m58s"
        );
    }
}
