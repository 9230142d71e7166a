//! What is limited and how much: endpoint classes, the actors counted in each, their per-minute
//! ceilings (`RL_*`) and per-actor overrides (`RL_OVERRIDES_JSON`).

use std::collections::HashMap;

use serde::Deserialize;

/// A family of endpoints limited together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// The token endpoint (and introspection and revocation, which authenticate clients).
    Token,
    /// The authorization endpoint and the sign-in pages it leads to.
    Authorize,
    /// Sending a magic link.
    Link,
    /// Checking a one-time code (emailed or shown in another browser).
    Code,
    /// Failed admin authentications.
    AdminFailure,
    /// Dynamic client registration.
    Registration,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Authorize => "authorize",
            Self::Link => "link",
            Self::Code => "code",
            Self::AdminFailure => "admin_failure",
            Self::Registration => "registration",
        }
    }

    /// Whether the limit guards a secret (a code, a link, an admin secret): such limits refuse
    /// when their shared store cannot be reached.
    pub fn guards_secret(self) -> bool {
        matches!(self, Self::Link | Self::Code | Self::AdminFailure)
    }
}

/// Who is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    Ip,
    Client,
    Tenant,
    Email,
    Global,
}

impl ActorKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Client => "client",
            Self::Tenant => "tenant",
            Self::Email => "email",
            Self::Global => "global",
        }
    }
}

/// One counted actor: its kind and its key (`203.0.113.7`, `acme/app`, `acme`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    pub kind: ActorKind,
    pub key: String,
}

impl Actor {
    pub fn ip(ip: std::net::IpAddr) -> Self {
        Self::new(ActorKind::Ip, ip.to_string())
    }

    pub fn client(tenant: &str, client_id: &str) -> Self {
        Self::new(ActorKind::Client, format!("{tenant}/{client_id}"))
    }

    pub fn tenant(tenant: &str) -> Self {
        Self::new(ActorKind::Tenant, tenant.to_owned())
    }

    /// An email address, by a digest so the limiter's keys hold no address.
    pub fn email(digest: &[u8]) -> Self {
        let prefix = &digest[..digest.len().min(16)];
        Self::new(ActorKind::Email, crate::crypto::hex(prefix))
    }

    pub fn global() -> Self {
        Self::new(ActorKind::Global, String::new())
    }

    fn new(kind: ActorKind, key: String) -> Self {
        Self { kind, key }
    }
}

/// The default ceilings, per minute, and the variable that sets each.
const DEFAULTS: [(Class, ActorKind, &str, u32); 14] = [
    (Class::Token, ActorKind::Ip, "RL_TOKEN_PER_IP", 600),
    (Class::Token, ActorKind::Client, "RL_TOKEN_PER_CLIENT", 1200),
    (
        Class::Token,
        ActorKind::Tenant,
        "RL_TOKEN_PER_TENANT",
        12_000,
    ),
    (Class::Token, ActorKind::Global, "RL_TOKEN_GLOBAL", 60_000),
    (Class::Authorize, ActorKind::Ip, "RL_AUTHORIZE_PER_IP", 120),
    (
        Class::Authorize,
        ActorKind::Tenant,
        "RL_AUTHORIZE_PER_TENANT",
        6000,
    ),
    (
        Class::Authorize,
        ActorKind::Global,
        "RL_AUTHORIZE_GLOBAL",
        30_000,
    ),
    (Class::Link, ActorKind::Ip, "RL_LINK_PER_IP", 30),
    (Class::Link, ActorKind::Email, "RL_LINK_PER_EMAIL", 10),
    (Class::Code, ActorKind::Ip, "RL_CODE_PER_IP", 20),
    (Class::Code, ActorKind::Tenant, "RL_CODE_PER_TENANT", 600),
    (
        Class::AdminFailure,
        ActorKind::Ip,
        "RL_ADMIN_FAILURES_PER_IP",
        20,
    ),
    (
        Class::Registration,
        ActorKind::Ip,
        "RL_REGISTRATION_PER_IP",
        20,
    ),
    (
        Class::Registration,
        ActorKind::Tenant,
        "RL_REGISTRATION_PER_TENANT",
        600,
    ),
];

/// The variable that says what a Redis outage does to limits that guard no secret.
pub const FAIL_OPEN_VAR: &str = "RL_FAIL_OPEN";

/// Every ceiling in force.
#[derive(Clone, Debug)]
pub struct Policies {
    /// Per class and actor kind: per-minute ceiling (absent or 0: not limited).
    ceilings: HashMap<(Class, ActorKind), u32>,
    /// Per actor (`ip:…`, `client:tenant/id` or `client:id`, `tenant:…`): a ceiling that
    /// replaces the class's for that actor.
    overrides: HashMap<(ActorKind, String), u32>,
    /// Whether limits that guard no secret let requests through while Redis is unreachable.
    pub fail_open: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Override {
    per_minute: u32,
}

impl Policies {
    /// Reads `RL_*` and `RL_OVERRIDES_JSON`; an error names the variable.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, (&'static str, String)> {
        let mut ceilings = HashMap::new();
        for (class, kind, var, default) in DEFAULTS {
            let ceiling = match get(var) {
                Some(raw) => raw.trim().parse::<u32>().map_err(|_| {
                    (
                        var,
                        "must be a whole number of requests per minute (0: no limit)".into(),
                    )
                })?,
                None => default,
            };
            ceilings.insert((class, kind), ceiling);
        }
        let mut overrides = HashMap::new();
        if let Some(raw) = get("RL_OVERRIDES_JSON") {
            const VAR: &str = "RL_OVERRIDES_JSON";
            let parsed: HashMap<String, Override> = serde_json::from_str(&raw).map_err(|e| {
                (
                    VAR,
                    format!("must map actors to {{\"per_minute\": n}} ({e})"),
                )
            })?;
            for (actor, limit) in parsed {
                let (kind, key) = actor
                    .split_once(':')
                    .and_then(|(kind, key)| Some((parse_kind(kind)?, key.to_owned())))
                    .filter(|(_, key)| !key.is_empty())
                    .ok_or_else(|| {
                        (
                            VAR,
                            format!("{actor}: actors are ip:…, client:…, tenant:… or email:…"),
                        )
                    })?;
                overrides.insert((kind, key), limit.per_minute);
            }
        }
        let fail_open = match get(FAIL_OPEN_VAR).as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err((FAIL_OPEN_VAR, "must be true or false".into())),
        };
        Ok(Self {
            ceilings,
            overrides,
            fail_open,
        })
    }

    /// The per-minute ceiling for `actor` in `class`, if it is limited there.
    pub fn ceiling(&self, class: Class, actor: &Actor) -> Option<u32> {
        self.ceilings.get(&(class, actor.kind))?;
        let overridden = self
            .overrides
            .get(&(actor.kind, actor.key.clone()))
            .or_else(|| {
                // `client:app` names that client id in any tenant.
                let (_, id) = actor
                    .key
                    .split_once('/')
                    .filter(|_| actor.kind == ActorKind::Client)?;
                self.overrides.get(&(ActorKind::Client, id.to_owned()))
            });
        let ceiling = overridden.or_else(|| self.ceilings.get(&(class, actor.kind)))?;
        (*ceiling > 0).then_some(*ceiling)
    }
}

fn parse_kind(name: &str) -> Option<ActorKind> {
    match name {
        "ip" => Some(ActorKind::Ip),
        "client" => Some(ActorKind::Client),
        "tenant" => Some(ActorKind::Tenant),
        "email" => Some(ActorKind::Email),
        _ => None,
    }
}

/// The documented defaults, for the README and tests: (variable, per minute).
pub fn defaults() -> impl Iterator<Item = (&'static str, u32)> {
    DEFAULTS.iter().map(|(_, _, var, n)| (*var, *n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(pairs: &[(&str, &str)]) -> Result<Policies, (&'static str, String)> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Policies::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn ceilings_come_from_defaults_variables_and_overrides() {
        let p = policies(&[
            ("RL_TOKEN_PER_IP", "5"),
            ("RL_AUTHORIZE_PER_IP", "0"),
            (
                "RL_OVERRIDES_JSON",
                r#"{"client:app": {"per_minute": 30}, "ip:203.0.113.7": {"per_minute": 2},
                    "client:acme/special": {"per_minute": 7}}"#,
            ),
        ])
        .unwrap();
        let ip = Actor::ip("127.0.0.1".parse().unwrap());
        assert_eq!(p.ceiling(Class::Token, &ip), Some(5));
        assert_eq!(
            p.ceiling(Class::Authorize, &ip),
            None,
            "0 turns a limit off"
        );
        assert_eq!(
            p.ceiling(Class::Token, &Actor::tenant("acme")),
            Some(12_000)
        );
        assert_eq!(
            p.ceiling(Class::Token, &Actor::client("x", "app")),
            Some(30)
        );
        assert_eq!(
            p.ceiling(Class::Token, &Actor::client("acme", "special")),
            Some(7)
        );
        let spotted = Actor::ip("203.0.113.7".parse().unwrap());
        assert_eq!(p.ceiling(Class::Token, &spotted), Some(2));
        assert_eq!(p.ceiling(Class::Authorize, &spotted), Some(2));
        assert_eq!(
            p.ceiling(Class::Authorize, &Actor::client("x", "app")),
            None,
            "authorize has no per-client limit"
        );
        assert!(p.fail_open);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(
            policies(&[("RL_TOKEN_PER_IP", "lots")]).unwrap_err().0,
            "RL_TOKEN_PER_IP"
        );
        for bad in [
            r#"{"user:x": {"per_minute": 1}}"#,
            r#"{"ip:": {"per_minute": 1}}"#,
            "[]",
            r#"{"ip:1.2.3.4": {"per_minute": -1}}"#,
            r#"{"ip:1.2.3.4": {"rate": 1}}"#,
        ] {
            assert_eq!(
                policies(&[("RL_OVERRIDES_JSON", bad)]).unwrap_err().0,
                "RL_OVERRIDES_JSON",
                "{bad}"
            );
        }
        assert_eq!(
            policies(&[("RL_FAIL_OPEN", "maybe")]).unwrap_err().0,
            "RL_FAIL_OPEN"
        );
    }
}
