//! Key material: generating key pairs for the supported algorithms and turning stored keys
//! into josekit signers and verifiers.

use josekit::{
    jwk::{Jwk, KeyPair, alg::ed::EdCurve},
    jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256},
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
        Alg::Es256 => {
            let mut s = ES256.signer_from_der(private_der)?;
            s.set_key_id(kid);
            Box::new(s)
        }
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
}
