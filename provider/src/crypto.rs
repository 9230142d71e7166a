//! Secret material: random tokens, keyed digests of server-generated secrets, constant-time
//! comparison, and sealing (AEAD) of keys at rest.
//!
//! Generated secrets carry 256 random bits, so a keyed SHA-256 (HMAC) digest is as strong as a
//! slow hash and costs microseconds; argon2id is kept for secrets a person chooses.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::{TryRngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh secret of 256 random bits, base64url without padding (43 characters).
pub fn random_secret() -> String {
    random_b64(32)
}

/// `n` random bytes as base64url without padding.
pub fn random_b64(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(n))
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    OsRng.try_fill_bytes(&mut bytes).unwrap_or_else(|_| {
        // The OS generator failing means the machine cannot keep secrets; stop rather than
        // hand out predictable ones.
        std::process::abort()
    });
    bytes
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// What a digest is for; the label keeps a secret of one kind from matching another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    RootAdmin,
    TenantAdmin,
    ClientSecret,
    /// The device cookie that ties a sign-in to the browser that asked.
    Device,
    LoginLink,
    AuthorizationCode,
    RefreshToken,
    /// Server-provided DPoP nonces, one per tenant and time slot.
    DpopNonce,
    /// Form tokens, derived from the device cookie and the request they protect.
    Csrf,
    /// The browser's session cookie (tower-sessions).
    WebSession,
    /// Links of the audit trail's hash chain.
    AuditChain,
    /// Rate-limit keys derived from email addresses, so limiter state holds no address.
    RateLimitKey,
    /// Initial access tokens (registration) and registration access tokens (RFC 7592).
    RegistrationToken,
}

impl SecretKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::RootAdmin => b"root-admin",
            Self::TenantAdmin => b"tenant-admin",
            Self::ClientSecret => b"client-secret",
            Self::Device => b"device",
            Self::LoginLink => b"login-link",
            Self::AuthorizationCode => b"authorization-code",
            Self::RefreshToken => b"refresh-token",
            Self::DpopNonce => b"dpop-nonce",
            Self::Csrf => b"csrf",
            Self::WebSession => b"web-session",
            Self::AuditChain => b"audit-chain",
            Self::RateLimitKey => b"rate-limit-key",
            Self::RegistrationToken => b"registration-token",
        }
    }
}

/// Keyed SHA-256 digests of generated secrets. The key lives in the database, sealed with
/// `KEY_ENCRYPTION_KEY`, so a stolen database alone cannot test guesses offline.
#[derive(Clone)]
pub struct SecretDigester {
    key: [u8; 32],
}

impl std::fmt::Debug for SecretDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigester(***)")
    }
}

impl SecretDigester {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn digest(&self, kind: SecretKind, secret: &str) -> Vec<u8> {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(kind.label());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `presented` is the secret whose digest is `stored`, in constant time.
    pub fn verify(&self, kind: SecretKind, presented: &str, stored: &[u8]) -> bool {
        ct_eq(&self.digest(kind, presented), stored)
    }
}

/// Failure to open a sealed value: wrong key, or the bytes were changed.
#[derive(Debug, thiserror::Error)]
#[error("sealed value does not open with this key")]
pub struct UnsealError;

/// AES-256-GCM sealing of secrets at rest. A sealed value starts with the first 8 bytes of the
/// key's SHA-256 fingerprint, so a rewrap can tell which key sealed it, then a random nonce.
/// The associated data binds a ciphertext to the row it belongs to.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    key_id: [u8; 8],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(key {})", hex(&self.key_id))
    }
}

const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        let fingerprint = Sha256::digest(key);
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&fingerprint[..KEY_ID_LEN]);
        #[allow(clippy::expect_used)] // a [u8; 32] is always a valid AES-256 key
        let cipher = Aes256Gcm::new_from_slice(key).expect("32-byte key");
        Self { cipher, key_id }
    }

    pub fn key_id(&self) -> String {
        hex(&self.key_id)
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes(NONCE_LEN);
        let nonce = Nonce::from_slice(&nonce_bytes);
        #[allow(clippy::expect_used)] // encryption fails only past 64 GiB of plaintext
        let ciphertext = self
            .cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("in-memory encryption");
        [&self.key_id[..], &nonce_bytes, &ciphertext].concat()
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, UnsealError> {
        if sealed.len() < KEY_ID_LEN + NONCE_LEN || sealed[..KEY_ID_LEN] != self.key_id {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = sealed[KEY_ID_LEN..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| UnsealError)
    }

    /// The key id a sealed value names, as hex.
    pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
        sealed.get(..KEY_ID_LEN).map(hex)
    }
}

/// The sealing key in force and, while `KEY_ENCRYPTION_KEY` is being rotated, the previous one:
/// new values are sealed with the current key; values sealed with either key open.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: Sealer,
    previous: Option<Sealer>,
}

impl Keyring {
    pub fn new(current: Sealer, previous: Option<Sealer>) -> Self {
        Self { current, previous }
    }

    pub fn current_key_id(&self) -> String {
        self.current.key_id()
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        self.current.seal(plaintext, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, UnsealError> {
        self.current
            .open(sealed, aad)
            .or_else(|err| match &self.previous {
                Some(previous) => previous.open(sealed, aad),
                None => Err(err),
            })
    }

    /// The value sealed again with the current key, or `None` when it already is.
    pub fn rewrap(&self, sealed: &[u8], aad: &[u8]) -> Result<Option<Vec<u8>>, UnsealError> {
        if Sealer::sealed_key_id(sealed).as_deref() == Some(self.current.key_id().as_str()) {
            return Ok(None);
        }
        Ok(Some(self.seal(&self.open(sealed, aad)?, aad)))
    }
}

/// Lowercase hex, for digests that end up in keys, files and URLs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_are_256_bits_and_distinct() {
        let a = random_secret();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_secret());
    }

    #[test]
    fn digests_depend_on_key_kind_and_secret() {
        let d = SecretDigester::new([1; 32]);
        let stored = d.digest(SecretKind::TenantAdmin, "s3cret");
        assert!(d.verify(SecretKind::TenantAdmin, "s3cret", &stored));
        assert!(!d.verify(SecretKind::TenantAdmin, "s3cret!", &stored));
        assert!(!d.verify(SecretKind::ClientSecret, "s3cret", &stored));
        assert!(!SecretDigester::new([2; 32]).verify(SecretKind::TenantAdmin, "s3cret", &stored));
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let sealer = Sealer::new(&[9; 32]);
        let sealed = sealer.seal(b"private key", b"tenant-a");
        assert_eq!(sealer.open(&sealed, b"tenant-a").unwrap(), b"private key");
        assert!(sealer.open(&sealed, b"tenant-b").is_err());
        assert!(Sealer::new(&[8; 32]).open(&sealed, b"tenant-a").is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered, b"tenant-a").is_err());
        assert_eq!(Sealer::sealed_key_id(&sealed).unwrap(), sealer.key_id());
    }

    #[test]
    fn a_keyring_opens_both_keys_and_rewraps_to_the_current_one() {
        let old = Sealer::new(&[1; 32]);
        let sealed_old = old.seal(b"secret", b"ctx");
        let ring = Keyring::new(Sealer::new(&[2; 32]), Some(old));
        assert_eq!(ring.open(&sealed_old, b"ctx").unwrap(), b"secret");
        let rewrapped = ring.rewrap(&sealed_old, b"ctx").unwrap().unwrap();
        assert_eq!(
            Sealer::sealed_key_id(&rewrapped).unwrap(),
            ring.current_key_id()
        );
        assert!(
            ring.rewrap(&rewrapped, b"ctx").unwrap().is_none(),
            "already current"
        );
        let only_new = Keyring::new(Sealer::new(&[2; 32]), None);
        assert_eq!(only_new.open(&rewrapped, b"ctx").unwrap(), b"secret");
        assert!(only_new.open(&sealed_old, b"ctx").is_err());
    }
}
