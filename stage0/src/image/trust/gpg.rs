//! GPG "simple signing" signatures (`signedBy`), as skopeo `--sign-by` and
//! podman write them: an OpenPGP message (usually compressed) holding the
//! JSON payload, signed by one key. Verified with rPGP against the keys the
//! policy trusts; a revoked or expired key verifies nothing.

use std::io::Read;
use std::time::{Duration, SystemTime};

use base64::Engine;
use pgp::composed::{Deserializable, Message, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, VerifyingKey};

use super::policy::SignedBy;

/// The keys one `signedBy` requirement trusts.
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

fn parse_keys(data: &[u8], what: &str) -> Result<Vec<SignedPublicKey>, String> {
    let bad = |e: pgp::errors::Error| format!("{what}: not an OpenPGP public key: {e}");
    let keys: Vec<SignedPublicKey> = if data.trim_ascii_start().starts_with(b"-----") {
        SignedPublicKey::from_armor_many(data).map_err(bad)?.0.collect::<Result<_, _>>().map_err(bad)?
    } else {
        SignedPublicKey::from_bytes_many(data).map_err(bad)?.collect::<Result<_, _>>().map_err(bad)?
    };
    if keys.is_empty() {
        return Err(format!("{what}: no OpenPGP public key in it"));
    }
    for k in &keys {
        k.verify_bindings().map_err(|e| format!("{what}: key {} has invalid self-signatures: {e}", k.fingerprint()))?;
    }
    Ok(keys)
}

impl Keyring {
    pub fn of(req: &SignedBy) -> Result<Keyring, String> {
        let mut keys = Vec::new();
        for p in req.key_path.iter().chain(req.key_paths.iter().flatten()) {
            let data = std::fs::read(p).map_err(|e| format!("cannot read key file {p}: {e}"))?;
            keys.extend(parse_keys(&data, &format!("key file {p}"))?);
        }
        if let Some(d) = &req.key_data {
            let data = base64::engine::general_purpose::STANDARD
                .decode(d.trim())
                .map_err(|e| format!("keyData: not base64: {e}"))?;
            keys.extend(parse_keys(&data, "keyData")?);
        }
        Ok(Keyring { keys })
    }
}

fn expired(created: SystemTime, expiration: Option<Duration>, now: SystemTime) -> bool {
    expiration.is_some_and(|e| !e.is_zero() && created + e <= now)
}

fn key_expiration(sigs: &[Signature]) -> Option<Duration> {
    sigs.iter().filter_map(|s| s.key_expiration_time().map(|d| Duration::from_secs(u64::from(d.as_secs())))).max()
}

/// The message of a signature, read to its end (which verification
/// needs), and what it holds.
pub fn read(signature: &[u8]) -> Result<(Message<'_>, Vec<u8>), String> {
    let msg = Message::from_bytes(signature).map_err(|e| format!("not an OpenPGP message: {e}"))?;
    let mut msg = msg.decompress().map_err(|e| format!("cannot decompress it: {e}"))?;
    let mut payload = Vec::new();
    msg.read_to_end(&mut payload).map_err(|e| format!("cannot read it: {e}"))?;
    Ok((msg, payload))
}

/// Verifies one signature; the signed payload and the fingerprint of the
/// key that made it, or why it does not count.
pub fn verify(ring: &Keyring, signature: &[u8]) -> Result<(Vec<u8>, String), String> {
    let (msg, payload) = read(signature)?;
    let now = SystemTime::now();
    for k in &ring.keys {
        let fingerprint = k.fingerprint().to_string().to_uppercase();
        let primary_expiry =
            key_expiration(&k.details.users.iter().flat_map(|u| u.signatures.clone()).collect::<Vec<_>>());
        let primary_created: SystemTime = k.primary_key.created_at().into();
        let revoked = !k.details.revocation_signatures.is_empty();
        let mut candidates: Vec<(&dyn VerifyingKey, bool, bool)> =
            vec![(&k.primary_key, revoked, expired(primary_created, primary_expiry, now))];
        for sub in &k.public_subkeys {
            let sub_revoked = sub.signatures.iter().any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
            let created: SystemTime = sub.key.created_at().into();
            let sub_expired = expired(created, key_expiration(&sub.signatures), now);
            candidates.push((
                &sub.key,
                revoked || sub_revoked,
                sub_expired || expired(primary_created, primary_expiry, now),
            ));
        }
        for (key, is_revoked, is_expired) in candidates {
            if msg.verify(key).is_ok() {
                if is_revoked {
                    return Err(format!("it was made by key {fingerprint}, which is revoked"));
                }
                if is_expired {
                    return Err(format!("it was made by key {fingerprint}, which has expired"));
                }
                return Ok((payload, fingerprint));
            }
        }
    }
    Err("no trusted key made it".to_string())
}
