//! Rate limits. Each decision counts a request against every actor it concerns (IP, client,
//! tenant, email address, everyone) in its endpoint class. Without Redis, counting is in the
//! process with governor (GCRA: a burst of the per-minute ceiling, refilled evenly); with
//! `REDIS_URL`, every replica shares one fixed one-minute window per actor, decided in one
//! atomic round trip (a Lua script). The same Redis holds the replay cache (`first_use`).

pub mod policy;

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use governor::{
    Quota, RateLimiter, clock::Clock as GovernorClock, middleware::NoOpMiddleware, nanos::Nanos,
    state::keyed::DefaultKeyedStateStore,
};

pub use policy::{Actor, ActorKind, Class, Policies};

use crate::{clock::Clock, redis_conn::SharedRedis};

/// A request over a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub class: Class,
    pub kind: ActorKind,
    /// The ceiling, per minute.
    pub limit: u32,
    /// Seconds until a request would be let through.
    pub retry_after: u64,
}

/// What the limiter says about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused(Refusal),
    /// The shared store cannot be reached and this limit may not be skipped.
    Unavailable,
}

const WINDOW: Duration = Duration::from_secs(60);
/// How long a failed-admin-login limit, once exceeded, blocks the address outright.
const BLOCK: Duration = Duration::from_secs(60);

/// The provider's clock as governor sees it, so tests that move time move limits too.
#[derive(Clone, Debug)]
struct TimeSource(Arc<dyn Clock>);

impl GovernorClock for TimeSource {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(u64::try_from(self.0.unix_ms()).unwrap_or_default() * 1_000_000)
    }
}

type Keyed = RateLimiter<
    (Class, Actor),
    DefaultKeyedStateStore<(Class, Actor)>,
    TimeSource,
    NoOpMiddleware<Nanos>,
>;

#[derive(Debug)]
pub struct Limiter {
    policies: Policies,
    clock: Arc<dyn Clock>,
    /// In-process limiters, one per distinct ceiling, keyed by class and actor.
    local: Mutex<HashMap<u32, Arc<Keyed>>>,
    /// Addresses blocked after too many failed admin logins, until (unix ms).
    blocked: Mutex<HashMap<Actor, i64>>,
    redis: Option<SharedRedis>,
}

fn block_key(class: Class, actor: &Actor) -> String {
    format!(
        "rl:block:{}:{}:{}",
        class.name(),
        actor.kind.name(),
        actor.key
    )
}

/// Counts every key in order; stops at the first over its ceiling and answers its index (from
/// 1) and the milliseconds left in its window, or 0 when all are within.
const SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  if n > tonumber(ARGV[i + 1]) then
    return {i, redis.call('PTTL', key)}
  end
end
return {0, 0}
";

impl Limiter {
    pub fn new(policies: Policies, clock: Arc<dyn Clock>, redis: Option<redis::Client>) -> Self {
        Self {
            policies,
            clock,
            local: Mutex::default(),
            blocked: Mutex::default(),
            redis: redis.map(SharedRedis::new),
        }
    }

    /// The per-minute ceiling of `actor` in `class`, when it is limited there.
    pub fn ceiling(&self, class: Class, actor: &Actor) -> Option<u32> {
        self.policies.ceiling(class, actor)
    }

    /// Counts one request of `class` against each of `actors` (those the class limits).
    pub async fn check(&self, class: Class, actors: &[Actor]) -> Decision {
        let limited: Vec<(&Actor, u32)> = actors
            .iter()
            .filter_map(|actor| Some((actor, self.policies.ceiling(class, actor)?)))
            .collect();
        if limited.is_empty() {
            return Decision::Allowed;
        }
        match &self.redis {
            None => self.check_local(class, &limited),
            Some(redis) => match self.check_shared(redis, class, &limited).await {
                Ok(decision) => decision,
                Err(err) => {
                    tracing::warn!(error = %err, class = class.name(), "rate limit store unavailable");
                    crate::monitoring::rate_limit_store_failed();
                    if class.guards_secret() || !self.policies.fail_open {
                        Decision::Unavailable
                    } else {
                        Decision::Allowed
                    }
                }
            },
        }
    }

    fn check_local(&self, class: Class, limited: &[(&Actor, u32)]) -> Decision {
        for (actor, ceiling) in limited {
            let Some(limiter) = self.local_limiter(*ceiling) else {
                continue;
            };
            if let Err(not_until) = limiter.check_key(&(class, (*actor).clone())) {
                let wait = not_until.wait_time_from(TimeSource(self.clock.clone()).now());
                return Decision::Refused(Refusal {
                    class,
                    kind: actor.kind,
                    limit: *ceiling,
                    retry_after: wait.as_secs().max(1),
                });
            }
        }
        Decision::Allowed
    }

    fn local_limiter(&self, ceiling: u32) -> Option<Arc<Keyed>> {
        let mut local = self.local.lock().ok()?;
        let quota = Quota::per_minute(NonZeroU32::new(ceiling)?);
        let clock = TimeSource(self.clock.clone());
        Some(
            local
                .entry(ceiling)
                .or_insert_with(|| {
                    let limiter: Keyed =
                        RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock);
                    Arc::new(limiter)
                })
                .clone(),
        )
    }

    async fn check_shared(
        &self,
        redis: &SharedRedis,
        class: Class,
        limited: &[(&Actor, u32)],
    ) -> redis::RedisResult<Decision> {
        let script = redis::Script::new(SCRIPT);
        let mut script = script.prepare_invoke();
        for (actor, _) in limited {
            script.key(format!(
                "rl:{}:{}:{}",
                class.name(),
                actor.kind.name(),
                actor.key
            ));
        }
        script.arg(WINDOW.as_millis() as u64);
        for (_, ceiling) in limited {
            script.arg(*ceiling);
        }
        let mut connection = redis.connection().await?;
        let (index, ttl_ms): (usize, i64) = script.invoke_async(&mut connection).await?;
        let Some((actor, ceiling)) = index.checked_sub(1).and_then(|i| limited.get(i)) else {
            return Ok(Decision::Allowed);
        };
        Ok(Decision::Refused(Refusal {
            class,
            kind: actor.kind,
            limit: *ceiling,
            retry_after: u64::try_from(ttl_ms.max(1000) / 1000).unwrap_or(1),
        }))
    }

    /// Whether `actor` is blocked after too many failures of `class` (seconds left).
    pub async fn blocked(&self, class: Class, actor: &Actor) -> Result<Option<u64>, ()> {
        let key = block_key(class, actor);
        if let Some(redis) = &self.redis {
            let mut connection = redis.connection().await.map_err(|_| ())?;
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .map_err(|_| ())?;
            return Ok((ttl > 0).then(|| u64::try_from(ttl / 1000).unwrap_or(0).max(1)));
        }
        let now = self.clock.unix_ms();
        let Ok(mut blocked) = self.blocked.lock() else {
            return Err(());
        };
        blocked.retain(|_, until| *until > now);
        Ok(blocked
            .get(actor)
            .map(|until| u64::try_from((until - now) / 1000).unwrap_or(0).max(1)))
    }

    /// Blocks `actor` for `class` for a while (after its failure limit was exceeded).
    pub async fn block(&self, class: Class, actor: &Actor) {
        let key = block_key(class, actor);
        if let Some(redis) = &self.redis {
            if let Ok(mut connection) = redis.connection().await {
                let _: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("PX")
                    .arg(BLOCK.as_millis() as u64)
                    .query_async(&mut connection)
                    .await;
            }
            return;
        }
        let until = self.clock.unix_ms() + BLOCK.as_millis() as i64;
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.insert(actor.clone(), until);
        }
    }

    /// The replay cache shared by replicas through the limiter's Redis: true the first time
    /// `key` is seen within `ttl`. `None` without Redis (the caller keeps its own record).
    pub async fn first_use(&self, key: &str, ttl: Duration) -> Option<redis::RedisResult<bool>> {
        let redis = self.redis.as_ref()?;
        let result = async {
            let mut connection = redis.connection().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("replay:{key}"))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut connection)
                .await?;
            Ok(set.is_some())
        };
        Some(result.await)
    }

    /// Forgets in-process counters of actors idle long enough to be full again.
    pub fn prune(&self) {
        if let Ok(local) = self.local.lock() {
            for limiter in local.values() {
                limiter.retain_recent();
            }
        }
    }
}
