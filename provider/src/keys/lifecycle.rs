//! The signing-key lifecycle as a pure state machine (SPEC "Key states"):
//! staged (published, not signing) → active (signing) → retired (published until every token it
//! signed has expired); any of them → revoked (out of JWKS at once). A tenant is never left
//! without an active key: revoking it promotes a staged key (or a fresh one) in the same step.

use std::fmt;

/// Longest lifetime any token may be given; a retired key stays published this long.
pub const MAX_TOKEN_TTL: i64 = 24 * 3600;
/// How long a staged key must have been published before it may sign, so that every relying
/// party's JWKS cache (JWKS is served with this `max-age`) has seen it.
pub const PUBLISH_WINDOW: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    Staged,
    Active,
    Retired,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "staged" => Some(Self::Staged),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the lifecycle needs to know of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

impl KeyRecord {
    /// Whether the key is in the JWKS at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        match self.state {
            KeyState::Staged | KeyState::Active => true,
            KeyState::Retired => self.retired_at.is_some_and(|at| now < at + MAX_TOKEN_TTL),
            KeyState::Revoked => false,
        }
    }

    /// Whether a token signed by this key may still verify at `now`. A staged key has signed
    /// nothing, so it verifies nothing.
    pub fn may_verify(&self, now: i64) -> bool {
        self.state != KeyState::Staged && self.is_published(now)
    }
}

/// One state change to apply, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Move `kid` to `to`.
    Set { kid: String, to: KeyState },
    /// Create a fresh key in `state`.
    Create { state: KeyState },
    /// Forget a retired key that no unexpired token can need.
    Purge { kid: String },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("no key {0}")]
    UnknownKey(String),
    #[error("key {kid} is {state}; only a staged key can be activated")]
    NotStaged { kid: String, state: KeyState },
    #[error(
        "key {kid} has been published for {published}s; activating it before {required}s \
             risks relying parties that have not refreshed their JWKS (force to override)"
    )]
    NotPublishedLongEnough {
        kid: String,
        published: i64,
        required: i64,
    },
    #[error("key {0} is already revoked")]
    AlreadyRevoked(String),
}

fn find<'a>(keys: &'a [KeyRecord], kid: &str) -> Result<&'a KeyRecord, LifecycleError> {
    keys.iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| LifecycleError::UnknownKey(kid.to_owned()))
}

fn retire_active(keys: &[KeyRecord]) -> impl Iterator<Item = Change> + '_ {
    keys.iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| Change::Set {
            kid: k.kid.clone(),
            to: KeyState::Retired,
        })
}

/// Activating a staged key: the current active key retires. Refused while the key has been
/// published for less than the publish window, unless `force`.
pub fn activate(
    keys: &[KeyRecord],
    kid: &str,
    now: i64,
    force: bool,
) -> Result<Vec<Change>, LifecycleError> {
    let key = find(keys, kid)?;
    if key.state != KeyState::Staged {
        return Err(LifecycleError::NotStaged {
            kid: kid.to_owned(),
            state: key.state,
        });
    }
    let published = now - key.created_at;
    if published < PUBLISH_WINDOW && !force {
        return Err(LifecycleError::NotPublishedLongEnough {
            kid: kid.to_owned(),
            published,
            required: PUBLISH_WINDOW,
        });
    }
    let mut changes: Vec<Change> = retire_active(keys).collect();
    changes.push(Change::Set {
        kid: kid.to_owned(),
        to: KeyState::Active,
    });
    Ok(changes)
}

/// Revoking keys. When the active key is among them, the oldest remaining staged key takes its
/// place (or a fresh key when none is staged) and a fresh key is staged for the next rotation.
pub fn revoke(keys: &[KeyRecord], kids: &[String]) -> Result<Vec<Change>, LifecycleError> {
    let mut changes = Vec::new();
    let mut active_revoked = false;
    for kid in kids {
        let key = find(keys, kid)?;
        if key.state == KeyState::Revoked {
            return Err(LifecycleError::AlreadyRevoked(kid.clone()));
        }
        active_revoked |= key.state == KeyState::Active;
        changes.push(Change::Set {
            kid: kid.clone(),
            to: KeyState::Revoked,
        });
    }
    if active_revoked {
        let successor = keys
            .iter()
            .filter(|k| k.state == KeyState::Staged && !kids.contains(&k.kid))
            .min_by_key(|k| (k.created_at, k.kid.clone()));
        match successor {
            Some(staged) => {
                changes.push(Change::Set {
                    kid: staged.kid.clone(),
                    to: KeyState::Active,
                });
            }
            None => changes.push(Change::Create {
                state: KeyState::Active,
            }),
        }
        changes.push(Change::Create {
            state: KeyState::Staged,
        });
    }
    Ok(changes)
}

/// What scheduled rotation does at `now` with a rotation `period`: forget retired keys no token
/// can need; keep one staged key ready; once the active key has signed for `period`, hand over
/// to the oldest staged key that has been published for the publish window.
pub fn scheduled(keys: &[KeyRecord], now: i64, period: i64) -> Vec<Change> {
    let mut changes: Vec<Change> = keys
        .iter()
        .filter(|k| k.state == KeyState::Retired && !k.is_published(now))
        .map(|k| Change::Purge { kid: k.kid.clone() })
        .collect();
    let ready = keys
        .iter()
        .filter(|k| k.state == KeyState::Staged && now - k.created_at >= PUBLISH_WINDOW)
        .min_by_key(|k| (k.created_at, k.kid.clone()));
    let due = active(keys).is_some_and(|k| now - k.activated_at.unwrap_or(k.created_at) >= period);
    let staged = keys.iter().filter(|k| k.state == KeyState::Staged).count();
    match ready {
        Some(next) if due => {
            changes.extend(retire_active(keys));
            changes.push(Change::Set {
                kid: next.kid.clone(),
                to: KeyState::Active,
            });
            if staged == 1 {
                changes.push(Change::Create {
                    state: KeyState::Staged,
                });
            }
        }
        _ if staged == 0 => changes.push(Change::Create {
            state: KeyState::Staged,
        }),
        _ => {}
    }
    changes
}

/// The active key's kid, if any.
pub fn active(keys: &[KeyRecord]) -> Option<&KeyRecord> {
    keys.iter().find(|k| k.state == KeyState::Active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, state: KeyState, created_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            state,
            created_at,
            activated_at: None,
            retired_at: None,
        }
    }

    const DAY: i64 = 24 * 3600;

    #[test]
    fn scheduled_rotation_waits_until_the_active_key_is_due() {
        let keys = [
            KeyRecord {
                activated_at: Some(0),
                ..key("a", KeyState::Active, 0)
            },
            key("s", KeyState::Staged, 0),
        ];
        assert_eq!(scheduled(&keys, 30 * DAY - 1, 30 * DAY), []);
        assert_eq!(
            scheduled(&keys, 30 * DAY, 30 * DAY),
            [
                set("a", KeyState::Retired),
                set("s", KeyState::Active),
                Change::Create {
                    state: KeyState::Staged
                },
            ]
        );
    }

    #[test]
    fn scheduled_rotation_stages_first_and_waits_for_the_publish_window() {
        let active = KeyRecord {
            activated_at: Some(0),
            ..key("a", KeyState::Active, 0)
        };
        assert_eq!(
            scheduled(std::slice::from_ref(&active), 40 * DAY, 30 * DAY),
            [Change::Create {
                state: KeyState::Staged
            }]
        );
        let young = [active, key("s", KeyState::Staged, 40 * DAY)];
        assert_eq!(
            scheduled(&young, 40 * DAY + PUBLISH_WINDOW - 1, 30 * DAY),
            []
        );
        assert_eq!(
            scheduled(&young, 40 * DAY + PUBLISH_WINDOW, 30 * DAY).len(),
            3
        );
    }

    #[test]
    fn scheduled_rotation_purges_retired_keys_past_their_tokens() {
        let keys = [
            KeyRecord {
                activated_at: Some(0),
                ..key("a", KeyState::Active, 0)
            },
            key("s", KeyState::Staged, 0),
            KeyRecord {
                retired_at: Some(0),
                ..key("r", KeyState::Retired, 0)
            },
        ];
        assert_eq!(scheduled(&keys, MAX_TOKEN_TTL - 1, 30 * DAY), []);
        assert_eq!(
            scheduled(&keys, MAX_TOKEN_TTL, 30 * DAY),
            [Change::Purge { kid: "r".into() }]
        );
    }

    fn set(kid: &str, to: KeyState) -> Change {
        Change::Set {
            kid: kid.into(),
            to,
        }
    }

    #[test]
    fn activation_retires_the_active_key() {
        let keys = [key("a", KeyState::Active, 0), key("s", KeyState::Staged, 0)];
        let changes = activate(&keys, "s", PUBLISH_WINDOW, false).unwrap();
        assert_eq!(
            changes,
            [set("a", KeyState::Retired), set("s", KeyState::Active)]
        );
    }

    #[test]
    fn activation_waits_for_the_publish_window_unless_forced() {
        let keys = [
            key("a", KeyState::Active, 0),
            key("s", KeyState::Staged, 100),
        ];
        let err = activate(&keys, "s", 100 + PUBLISH_WINDOW - 1, false).unwrap_err();
        assert!(matches!(
            err,
            LifecycleError::NotPublishedLongEnough { published: 299, .. }
        ));
        assert!(activate(&keys, "s", 101, true).is_ok());
    }

    #[test]
    fn only_staged_keys_activate() {
        let keys = [
            key("a", KeyState::Active, 0),
            key("r", KeyState::Retired, 0),
        ];
        assert!(matches!(
            activate(&keys, "a", 1000, true),
            Err(LifecycleError::NotStaged { .. })
        ));
        assert!(matches!(
            activate(&keys, "r", 1000, true),
            Err(LifecycleError::NotStaged { .. })
        ));
        assert!(matches!(
            activate(&keys, "x", 1000, true),
            Err(LifecycleError::UnknownKey(_))
        ));
    }

    #[test]
    fn revoking_the_active_key_promotes_the_oldest_staged_and_stages_a_fresh_one() {
        let keys = [
            key("a", KeyState::Active, 0),
            key("s2", KeyState::Staged, 20),
            key("s1", KeyState::Staged, 10),
        ];
        let changes = revoke(&keys, &["a".into()]).unwrap();
        assert_eq!(
            changes,
            [
                set("a", KeyState::Revoked),
                set("s1", KeyState::Active),
                Change::Create {
                    state: KeyState::Staged
                },
            ]
        );
    }

    #[test]
    fn revoking_the_active_key_with_none_staged_creates_an_active_one() {
        let keys = [
            key("a", KeyState::Active, 0),
            key("r", KeyState::Retired, 0),
        ];
        let changes = revoke(&keys, &["a".into()]).unwrap();
        assert_eq!(
            changes,
            [
                set("a", KeyState::Revoked),
                Change::Create {
                    state: KeyState::Active
                },
                Change::Create {
                    state: KeyState::Staged
                },
            ]
        );
    }

    #[test]
    fn revoking_other_keys_leaves_the_active_one_alone() {
        let keys = [
            key("a", KeyState::Active, 0),
            key("r", KeyState::Retired, 0),
        ];
        assert_eq!(
            revoke(&keys, &["r".into()]).unwrap(),
            [set("r", KeyState::Revoked)]
        );
        let revoked = [key("x", KeyState::Revoked, 0)];
        assert!(matches!(
            revoke(&revoked, &["x".into()]),
            Err(LifecycleError::AlreadyRevoked(_))
        ));
    }

    #[test]
    fn retired_keys_stay_published_for_the_longest_token_lifetime() {
        let retired = KeyRecord {
            retired_at: Some(1000),
            ..key("r", KeyState::Retired, 0)
        };
        assert!(retired.is_published(1000 + MAX_TOKEN_TTL - 1));
        assert!(!retired.is_published(1000 + MAX_TOKEN_TTL));
        assert!(retired.may_verify(1000));
        let staged = key("s", KeyState::Staged, 0);
        assert!(staged.is_published(5) && !staged.may_verify(5));
        assert!(!key("x", KeyState::Revoked, 0).is_published(0));
    }
}
