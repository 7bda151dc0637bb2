//! cosign key-based signatures (`sigstoreSigned` with public keys): an
//! ECDSA P-256 signature (ASN.1 DER, base64) over the payload's bytes
//! with SHA-256, by one of the trusted PEM public keys.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use super::policy::SigstoreSigned;

/// The public keys one `sigstoreSigned` requirement trusts.
pub struct Keys {
    keys: Vec<VerifyingKey>,
    /// Where each came from (a key file, or `keyData`), for messages.
    names: Vec<String>,
}

fn parse_pem(pem: &str, what: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| format!("{what}: not a PEM ECDSA P-256 public key (cosign's): {e}"))
}

impl Keys {
    pub fn of(req: &SigstoreSigned) -> Result<Keys, String> {
        let (mut keys, mut names) = (Vec::new(), Vec::new());
        for p in req.key_path.iter().chain(req.key_paths.iter().flatten()) {
            let pem = std::fs::read_to_string(p).map_err(|e| format!("cannot read key file {p}: {e}"))?;
            keys.push(parse_pem(&pem, &format!("key file {p}"))?);
            names.push(p.clone());
        }
        for d in req.key_data.iter().chain(req.key_datas.iter().flatten()) {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or("keyData: not base64 of a PEM key")?;
            keys.push(parse_pem(&pem, "keyData")?);
            names.push(format!("keyData {}", names.len() + 1));
        }
        Ok(Keys { keys, names })
    }
}

/// Whether `signature` (base64 DER) over `payload` verifies with one of
/// the keys; which one (where it came from) if so.
pub fn verify<'k>(keys: &'k Keys, payload: &[u8], signature: &str) -> Result<&'k str, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| format!("its signature is not base64: {e}"))?;
    let sig =
        DerSignature::try_from(der.as_slice()).map_err(|e| format!("its signature is not an ECDSA signature: {e}"))?;
    keys.keys
        .iter()
        .position(|k| k.verify(payload, &sig).is_ok())
        .map(|i| keys.names[i].as_str())
        .ok_or_else(|| "no trusted key made it".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    #[test]
    fn signatures_verify_with_their_key_only() {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let pem = sk.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let keys = Keys { keys: vec![parse_pem(&pem, "k").unwrap()], names: vec!["/k.pub".into()] };
        let payload = b"{\"critical\":{}}";
        let sig: p256::ecdsa::Signature = sk.sign(payload);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        assert_eq!(verify(&keys, payload, &b64), Ok("/k.pub"));
        assert!(verify(&keys, b"{\"critical\":{ }}", &b64).is_err(), "another payload");
        let theirs: p256::ecdsa::Signature = other.sign(payload);
        let b64 = base64::engine::general_purpose::STANDARD.encode(theirs.to_der().as_bytes());
        assert_eq!(verify(&keys, payload, &b64), Err("no trusted key made it".into()));
        assert!(verify(&keys, payload, "!!").unwrap_err().contains("not base64"));
        assert!(verify(&keys, payload, "AAAA").unwrap_err().contains("not an ECDSA"));
        assert!(parse_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "k").is_err());
    }
}
