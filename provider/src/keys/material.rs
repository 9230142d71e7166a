//! Key material: generating key pairs for the supported algorithms and turning stored keys
//! into josekit signers and verifiers. ES256, the default, signs through ring: it signs in half
//! the time of josekit's OpenSSL path, which sets up a new signing context for every token.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::{
    JoseError,
    jwk::{Jwk, KeyPair, alg::ed::EdCurve},
    jws::{ES256, EdDSA, JwsAlgorithm, JwsSigner, JwsVerifier, RS256},
};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};

use crate::crypto::random_b64;

const RSA_BITS: u32 = 2048;

/// Signing algorithms a key may use; ES256 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Es256, Alg::Rs256, Alg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == raw)
    }
}

/// A fresh key pair: its kid, public JWK (with kid, alg and use) and PKCS#8 private key.
#[derive(Debug)]
pub struct NewKey {
    pub kid: String,
    pub alg: Alg,
    pub public_jwk: Jwk,
    pub private_der: Vec<u8>,
}

pub fn generate(alg: Alg) -> Result<NewKey, josekit::JoseError> {
    let pair: Box<dyn KeyPair> = match alg {
        Alg::Es256 => Box::new(ES256.generate_key_pair()?),
        Alg::Rs256 => Box::new(RS256.generate_key_pair(RSA_BITS)?),
        Alg::EdDsa => Box::new(EdDSA.generate_key_pair(EdCurve::Ed25519)?),
    };
    let kid = random_b64(16);
    let mut public_jwk = pair.to_jwk_public_key();
    public_jwk.set_key_id(&kid);
    public_jwk.set_algorithm(alg.as_str());
    public_jwk.set_key_use("sig");
    Ok(NewKey {
        kid,
        alg,
        public_jwk,
        private_der: pair.to_der_private_key(),
    })
}

pub fn signer(
    alg: Alg,
    private_der: &[u8],
    kid: &str,
) -> Result<Box<dyn JwsSigner>, josekit::JoseError> {
    Ok(match alg {
        Alg::Es256 => Box::new(Es256Signer::from_der(private_der, kid)?),
        Alg::Rs256 => {
            let mut s = RS256.signer_from_der(private_der)?;
            s.set_key_id(kid);
            Box::new(s)
        }
        Alg::EdDsa => {
            let mut s = EdDSA.signer_from_der(private_der)?;
            s.set_key_id(kid);
            Box::new(s)
        }
    })
}

/// An ES256 signer on ring's P-256, from the same stored key josekit reads.
#[derive(Clone)]
struct Es256Signer {
    pair: Arc<EcdsaKeyPair>,
    rng: SystemRandom,
    kid: String,
}

impl Es256Signer {
    fn from_der(private_der: &[u8], kid: &str) -> Result<Self, JoseError> {
        let jwk = ES256.key_pair_from_der(private_der)?.to_jwk_key_pair();
        let coordinate = |name: &str| -> Result<Vec<u8>, JoseError> {
            jwk.parameter(name)
                .and_then(serde_json::Value::as_str)
                .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
                .ok_or_else(|| invalid_key(format!("the EC key has no {name}")))
        };
        // SEC 1 uncompressed point: 0x04, then x and y.
        let mut public = vec![4];
        public.extend(coordinate("x")?);
        public.extend(coordinate("y")?);
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &coordinate("d")?,
            &public,
            &rng,
        )
        .map_err(|err| invalid_key(format!("the EC key is not a P-256 key pair: {err}")))?;
        Ok(Self {
            pair: Arc::new(pair),
            rng,
            kid: kid.to_owned(),
        })
    }
}

fn invalid_key(why: String) -> JoseError {
    JoseError::InvalidKeyFormat(anyhow::anyhow!(why))
}

impl std::fmt::Debug for Es256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es256Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwsSigner for Es256Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &ES256
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    /// r and s, 32 bytes each (RFC 7518 §3.4).
    fn signature_len(&self) -> usize {
        64
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let signature = self
            .pair
            .sign(&self.rng, message)
            .map_err(|err| JoseError::InvalidSignature(anyhow::anyhow!("ES256 signing: {err}")))?;
        Ok(signature.as_ref().to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

pub fn verifier(alg: Alg, public_jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
    Ok(match alg {
        Alg::Es256 => Box::new(ES256.verifier_from_jwk(public_jwk)?),
        Alg::Rs256 => Box::new(RS256.verifier_from_jwk(public_jwk)?),
        Alg::EdDsa => Box::new(EdDSA.verifier_from_jwk(public_jwk)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;
    use josekit::jwt::{self, JwtPayload};

    #[test]
    fn every_algorithm_signs_and_verifies_its_own_tokens_only() {
        for alg in Alg::ALL {
            let key = generate(alg).unwrap();
            assert_eq!(key.public_jwk.key_id(), Some(key.kid.as_str()));
            assert_eq!(key.public_jwk.algorithm(), Some(alg.as_str()));
            assert!(
                key.public_jwk.parameter("d").is_none(),
                "no private part in the JWK"
            );
            let signer = signer(alg, &key.private_der, &key.kid).unwrap();
            let mut payload = JwtPayload::new();
            payload.set_subject("s");
            let token = jwt::encode_with_signer(&payload, &JwsHeader::new(), &*signer).unwrap();
            let verifier = verifier(alg, &key.public_jwk).unwrap();
            let (decoded, header) = jwt::decode_with_verifier(&token, &*verifier).unwrap();
            assert_eq!(decoded.subject(), Some("s"));
            assert_eq!(header.key_id(), Some(key.kid.as_str()));
            let other = generate(alg).unwrap();
            let other_verifier = super::verifier(alg, &other.public_jwk).unwrap();
            assert!(jwt::decode_with_verifier(&token, &*other_verifier).is_err());
        }
    }

    #[test]
    fn an_es256_signer_refuses_a_key_of_another_algorithm() {
        for alg in [Alg::Rs256, Alg::EdDsa] {
            let key = generate(alg).unwrap();
            assert!(signer(Alg::Es256, &key.private_der, &key.kid).is_err());
        }
        assert!(signer(Alg::Es256, b"not a key", "kid").is_err());
    }
}
