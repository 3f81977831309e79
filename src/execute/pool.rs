//! The engines builds run on, and which one a build gets: `builders:` in
//! pipeline.yaml, or the one engine the environment names. Each engine has
//! its own number of build slots (`jobs`). No scheduler beyond choosing an
//! engine per build:
//!
//! - **What it needs.** Only engines that build its platform, and offer
//!   BuildKit when it needs it: `builder: buildkit`, or `auto` with a
//!   Dockerfile using a feature only BuildKit builds (see [`Pool::needs`]).
//! - **Cache locality.** A service prefers the same engine every run (a
//!   stable hash of its name over the engines), where its layer cache is.
//! - **An idle engine takes work.** When the preferred engine is full and
//!   another has nothing running, the idle one builds it.
//! - **Near its requirement.** A service whose requirement was built on an
//!   engine with a free slot goes there and uses the image in place.
//! - **Lost engines.** An engine found dead after a failed build is left
//!   out for the rest of the run; the build goes once to another engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use super::Builders;
use crate::build::engine::{Engine, EngineInfo};
use crate::config::Builder;
use crate::plan::Step;

/// One engine of the pool.
pub(crate) struct Member {
    /// How it is named in results and messages: `unix:///var/run/docker.sock`.
    pub(crate) name: String,
    pub(crate) engine: Arc<dyn Engine>,
    /// Its version and API, and why it has no BuildKit if it has none.
    pub(crate) info: EngineInfo,
    /// What its builders offer.
    pub(crate) builders: Builders,
    pub(crate) jobs: usize,
    /// The platforms it builds; empty: any.
    pub(crate) platforms: Vec<String>,
    slots: Semaphore,
    lost: AtomicBool,
}

impl Member {
    pub(crate) fn new(
        name: String,
        engine: Arc<dyn Engine>,
        info: EngineInfo,
        builders: Builders,
        jobs: usize,
        platforms: Vec<String>,
    ) -> Member {
        Member {
            name,
            engine,
            info,
            builders,
            jobs,
            platforms,
            slots: Semaphore::new(jobs),
            lost: AtomicBool::new(false),
        }
    }

    /// Whether it can build what `needs` asks for.
    pub(crate) fn builds(&self, needs: &Needs) -> bool {
        let platform = match &needs.platform {
            Some(p) => self.platforms.is_empty() || self.platforms.iter().any(|q| q == p),
            None => true,
        };
        platform && (!needs.buildkit || self.builders.buildkit)
    }

    fn idle(&self) -> bool {
        self.slots.available_permits() == self.jobs
    }
}

/// What a service asks of the engine that builds it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Needs {
    /// Its `platform:`.
    pub(crate) platform: Option<String>,
    /// BuildKit: `builder: buildkit`, or `auto` with a Dockerfile that
    /// uses a feature only BuildKit builds (see [`Pool::needs`]).
    pub(crate) buildkit: bool,
    /// The Dockerfile line that asks for BuildKit, when the setting does
    /// not: `RUN --mount=type=cache at services/api/Dockerfile:3`.
    pub(crate) buildkit_for: Option<String>,
}

impl Needs {
    /// What `service`'s settings ask: its platform, and BuildKit for
    /// `builder: buildkit`.
    pub(crate) fn of(service: &crate::discover::Service) -> Needs {
        Needs {
            platform: service.platform.clone(),
            buildkit: service.builder == Builder::BuildKit,
            buildkit_for: None,
        }
    }
}

pub(crate) struct Pool {
    members: Vec<Member>,
    /// Notified whenever a slot is freed or an engine is lost.
    changed: Notify,
}

/// A build slot on one engine, held while the build runs.
pub(crate) struct Slot<'p> {
    pool: &'p Pool,
    pub(crate) member: usize,
    permit: Option<SemaphorePermit<'p>>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        // Released first, so that the woken find it free.
        self.permit.take();
        self.pool.changed.notify_waiters();
    }
}

/// No engine is left that could build a service.
#[derive(Debug, thiserror::Error)]
#[error("no builder is left that can build it{}", describe(.0))]
pub(crate) struct NoBuilder(Needs);

fn describe(needs: &Needs) -> String {
    let mut asks = Vec::new();
    if let Some(p) = &needs.platform {
        asks.push(p.clone());
    }
    match (needs.buildkit, &needs.buildkit_for) {
        (true, Some(why)) => asks.push(format!("BuildKit, for {why}")),
        (true, None) => asks.push("BuildKit".into()),
        (false, _) => {}
    }
    match asks.is_empty() {
        true => String::new(),
        false => format!(" ({})", asks.join(", ")),
    }
}

/// A stable hash (FNV-1a): the same name prefers the same engine in every
/// run and every version of pipeline.
fn stable_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Pool {
    pub(crate) fn new(members: Vec<Member>) -> Pool {
        assert!(!members.is_empty(), "a pool has at least one engine");
        Pool {
            members,
            changed: Notify::new(),
        }
    }

    /// What `step` asks of the engine that builds it: what its settings
    /// ask ([`Needs::of`]), and BuildKit for a `builder: auto` service whose
    /// Dockerfile uses a feature only BuildKit builds (`RUN --mount`,
    /// `COPY --chmod`, a heredoc…: `build::buildkit_features`), when an
    /// engine of the pool (lost or not) offers BuildKit for its platform.
    /// When none does it is placed as before, and its build fails before
    /// it starts, naming the line and the feature (`build::unsupported`).
    pub(crate) fn needs(&self, step: &Step) -> Needs {
        let needs = Needs::of(&step.service);
        if needs.buildkit || step.service.builder != Builder::Auto {
            return needs;
        }
        let Some(first) = crate::build::buildkit_features(step).first().copied() else {
            return needs;
        };
        let buildkit = Needs {
            buildkit: true,
            buildkit_for: Some(format!(
                "{} at {}:{}",
                first.feature, step.service.dockerfile, first.line
            )),
            ..needs.clone()
        };
        match self.members.iter().any(|m| m.builds(&buildkit)) {
            true => buildkit,
            false => needs,
        }
    }

    pub(crate) fn member(&self, index: usize) -> &Member {
        &self.members[index]
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    /// The first engine: the one local builds (`pipeline build`, `run
    /// --no-push`) and local image look-ups use.
    pub(crate) fn first(&self) -> &Member {
        &self.members[0]
    }

    /// The engine `name` prefers, whether or not it is usable.
    pub(crate) fn preferred(&self, name: &str) -> usize {
        (stable_hash(name) % self.members.len() as u64) as usize
    }

    /// The engines that may build `name`, its preferred one first, then
    /// the others in ring order; lost ones and `avoid` left out.
    fn candidates(&self, name: &str, needs: &Needs, avoid: Option<usize>) -> Vec<usize> {
        let n = self.members.len();
        let first = self.preferred(name);
        (0..n)
            .map(|i| (first + i) % n)
            .filter(|&i| {
                let m = &self.members[i];
                Some(i) != avoid && !m.lost.load(Ordering::SeqCst) && m.builds(needs)
            })
            .collect()
    }

    /// Whether more than one engine may build `name`: only then is a
    /// requirement needed by its registry reference.
    pub(crate) fn shared(&self, name: &str, needs: &Needs) -> bool {
        self.candidates(name, needs, None).len() > 1
    }

    /// A slot on engine `index` if one is free now.
    pub(crate) fn try_slot(&self, index: usize) -> Option<Slot<'_>> {
        let member = &self.members[index];
        if member.lost.load(Ordering::SeqCst) {
            return None;
        }
        let permit = member.slots.try_acquire().ok()?;
        Some(Slot {
            pool: self,
            member: index,
            permit: Some(permit),
        })
    }

    /// Waits for a slot for service `name`: on its preferred engine, or on
    /// an idle one when that is full, never on `avoid`.
    pub(crate) async fn slot(
        &self,
        name: &str,
        needs: &Needs,
        avoid: Option<usize>,
    ) -> Result<Slot<'_>, NoBuilder> {
        loop {
            // Registered before looking, so no release between the look
            // and the wait is missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let candidates = self.candidates(name, needs, avoid);
            let Some((&preferred, others)) = candidates.split_first() else {
                return Err(NoBuilder(needs.clone()));
            };
            if let Some(slot) = self.try_slot(preferred) {
                return Ok(slot);
            }
            for &other in others {
                if self.members[other].idle()
                    && let Some(slot) = self.try_slot(other)
                {
                    return Ok(slot);
                }
            }
            changed.await;
        }
    }

    /// Leaves engine `index` out for the rest of the run.
    pub(crate) fn lose(&self, index: usize) {
        self.members[index].lost.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub(crate) fn is_lost(&self, index: usize) -> bool {
        self.members[index].lost.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::fake::{Fakes, preferring, step, with_dockerfile};

    fn pool(jobs: &[usize]) -> Pool {
        Pool::new(
            jobs.iter()
                .enumerate()
                .map(|(i, &jobs)| {
                    Member::new(
                        format!("engine-{i}"),
                        Arc::new(Fakes::default()),
                        crate::execute::fake::info(),
                        Builders {
                            buildkit: true,
                            frontend: dockerfile::Frontend::DOCKER_20_10,
                        },
                        jobs,
                        Vec::new(),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn the_hash_is_stable_and_spreads() {
        // Pinned: a change would move every service's cache.
        assert_eq!(stable_hash("orders"), 5_169_432_582_064_972);
        let p = pool(&[1, 1]);
        let names: Vec<String> = (0..50).map(|i| format!("svc-{i:03}")).collect();
        let on_first = names.iter().filter(|n| p.preferred(n) == 0).count();
        assert!((15..=35).contains(&on_first), "{on_first} of 50 on one");
    }

    #[tokio::test]
    async fn preferred_then_idle_then_wait() {
        let p = pool(&[1, 1]);
        let a = (0..)
            .map(|i| format!("s{i}"))
            .find(|n| p.preferred(n) == 0)
            .unwrap();
        let b = (0..)
            .map(|i| format!("t{i}"))
            .find(|n| p.preferred(n) == 0)
            .unwrap();
        let any = Needs::default();
        let first = p.slot(&a, &any, None).await.unwrap();
        assert_eq!(first.member, 0);
        // Its engine is full and the other idle: the idle one takes it.
        let second = p.slot(&b, &any, None).await.unwrap();
        assert_eq!(second.member, 1);
        // Both busy: a third waits until a slot is freed.
        let c = a.clone() + "x";
        let waiting = p.slot(&c, &any, None);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        drop(second);
        let third = tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        // Engine 1 is idle again; whether c prefers it or 0 (full), it lands there.
        assert_eq!(third.member, 1);
        drop(first);
    }

    #[tokio::test]
    async fn a_busy_engine_with_work_keeps_its_own_queue() {
        // Engine 1 has a build running (not idle) and a free slot: a
        // service preferring the full engine 0 waits for it, for its cache.
        let p = pool(&[1, 2]);
        let on0: Vec<String> = (0..)
            .map(|i| format!("u{i}"))
            .filter(|n| p.preferred(n) == 0)
            .take(2)
            .collect();
        let on1 = (0..)
            .map(|i| format!("v{i}"))
            .find(|n| p.preferred(n) == 1)
            .unwrap();
        let any = Needs::default();
        let _a = p.slot(&on0[0], &any, None).await.unwrap();
        let _b = p.slot(&on1, &any, None).await.unwrap();
        let waiting = p.slot(&on0[1], &any, None);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), waiting)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn lost_engines_and_platforms_are_left_out() {
        let mut p = pool(&[1, 1]);
        p.members[0].platforms = vec!["linux/amd64".into()];
        p.members[1].platforms = vec!["linux/arm64".into()];
        let arm = Needs {
            platform: Some("linux/arm64".into()),
            buildkit: true,
            ..Needs::default()
        };
        let any = Needs::default();
        let slot = p.slot("x", &arm, None).await.unwrap();
        assert_eq!(slot.member, 1);
        drop(slot);
        p.lose(1);
        let e = p.slot("x", &arm, None).await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "no builder is left that can build it (linux/arm64, BuildKit)"
        );
        assert_eq!(p.slot("x", &any, None).await.unwrap().member, 0);
        assert!(p.slot("x", &any, Some(0)).await.is_err());
    }

    /// Engine 0 offers BuildKit, engine 1 does not (a `tls:` engine).
    fn mixed() -> Pool {
        let mut p = pool(&[1, 1]);
        p.members[1].builders.buildkit = false;
        p
    }

    const CACHE_MOUNT: &str = "FROM alpine:3\nRUN --mount=type=cache,target=/root/.cache make\n";

    #[tokio::test]
    async fn an_auto_service_whose_dockerfile_needs_buildkit_goes_where_it_is() {
        let p = mixed();
        let name = preferring(&p, "w", 1);
        let mounts = with_dockerfile(step(&name, &[]), CACHE_MOUNT);
        let needs = p.needs(&mounts);
        assert!(needs.buildkit);
        assert_eq!(
            needs.buildkit_for,
            Some(format!(
                "RUN --mount=type=cache at services/{name}/Dockerfile:2"
            ))
        );
        // Its preferred engine is idle, and lacks BuildKit.
        let first = p.slot(&name, &needs, None).await.unwrap();
        assert_eq!(first.member, 0);
        // Engine 0 full, engine 1 idle: it waits for engine 0.
        let waiting = p.slot(&name, &needs, None);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), waiting)
                .await
                .is_err()
        );
        drop(first);
        // A plain service, and `builder: classic` (which fails anywhere,
        // naming the line), ask nothing more: the preferred engine.
        let plain = p.needs(&step(&name, &[]));
        assert!(!plain.buildkit);
        assert_eq!(p.slot(&name, &plain, None).await.unwrap().member, 1);
        let mut classic = mounts.clone();
        classic.service.builder = Builder::Classic;
        assert!(!p.needs(&classic).buildkit);
        // The BuildKit engine lost: none is left, and the error says why.
        p.lose(0);
        let e = p.slot(&name, &needs, None).await.err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "no builder is left that can build it (BuildKit, for RUN --mount=type=cache at services/{name}/Dockerfile:2)"
            )
        );
    }

    #[tokio::test]
    async fn a_plain_service_goes_to_either_engine() {
        let p = mixed();
        for index in [0, 1] {
            let name = preferring(&p, "w", index);
            let needs = p.needs(&step(&name, &[]));
            assert_eq!(p.slot(&name, &needs, None).await.unwrap().member, index);
        }
        // Its engine full, the idle one without BuildKit takes it.
        let name = preferring(&p, "w", 0);
        let needs = p.needs(&step(&name, &[]));
        let _busy = p.slot(&name, &needs, None).await.unwrap();
        assert_eq!(p.slot(&name, &needs, None).await.unwrap().member, 1);
    }

    #[test]
    fn without_an_engine_offering_buildkit_the_dockerfile_asks_nothing_more() {
        // Placed as before; its build then fails naming the line.
        let mut p = mixed();
        p.members[0].builders.buildkit = false;
        let needs = p.needs(&with_dockerfile(step("x", &[]), CACHE_MOUNT));
        assert!(!needs.buildkit && needs.buildkit_for.is_none());
    }
}
