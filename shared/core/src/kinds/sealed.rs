//! Credentials inside a task's `config`, encrypted at rest.
//!
//! A credential is read from the request in clear, sealed before the task is first stored, and
//! opened only by the worker that runs the task. Sealing is ChaCha20-Poly1305 (authenticated)
//! under a key derived with HKDF-SHA256 from the deployment's master secret; the task id is the
//! associated data, so a sealed value copied into another task does not open. The API shows a
//! credential as `"***"`, sealed or not.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::TaskId;
use crate::signing::MasterSecret;

/// What the API shows in place of a credential.
pub const MASK: &str = "***";
/// The prefix of a sealed value: the scheme's version.
const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;

/// A credential of a task's config.
#[derive(Clone)]
pub enum Credential {
    /// As the request gave it; never stored (serializing it is an error).
    Clear(SecretString),
    /// As stored.
    Sealed(String),
}

impl Credential {
    pub fn clear(value: impl Into<String>) -> Credential {
        Credential::Clear(SecretString::from(value.into()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Credential::Sealed(a), Credential::Sealed(b)) => a == b,
            (Credential::Clear(a), Credential::Clear(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Credential::Sealed(sealed) => serializer.serialize_str(sealed),
            Credential::Clear(_) => Err(serde::ser::Error::custom(
                "a credential must be sealed before it is stored",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Credential::Sealed(String::deserialize(deserializer)?))
    }
}

/// Why a credential could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a credential of this task cannot be decrypted (the master secret changed, or the stored \
     task was altered)"
)]
pub struct OpenError;

/// Seals and opens credentials with the key derived from the master secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

impl Sealer {
    pub fn new(master: &MasterSecret) -> Sealer {
        let key = master.derive_key("pithy-jaunt/config-credentials/v1");
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Seals a clear credential for `task`; a sealed one stays as it is.
    pub fn seal(&self, task: &TaskId, credential: &Credential) -> Credential {
        let Credential::Clear(value) = credential else {
            return credential.clone();
        };
        let nonce: [u8; NONCE_LEN] = rand::random();
        let payload = Payload {
            msg: value.expose_secret().as_bytes(),
            aad: task.as_str().as_bytes(),
        };
        // Encryption with a valid key and nonce cannot fail; a message this size is in range.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 encryption is infallible"));
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Credential::Sealed(format!("{SEALED_PREFIX}{}", B64URL.encode(bytes)))
    }

    /// The clear value of a credential of `task`.
    pub fn open(&self, task: &TaskId, credential: &Credential) -> Result<SecretString, OpenError> {
        let sealed = match credential {
            Credential::Clear(value) => return Ok(value.clone()),
            Credential::Sealed(sealed) => sealed,
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| B64URL.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(OpenError)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: task.as_str().as_bytes(),
        };
        let clear = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| OpenError)?;
        String::from_utf8(clear)
            .map(SecretString::from)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn sealer(secret: &str) -> Sealer {
        Sealer::new(&MasterSecret::new(SecretString::from(secret.to_owned())).unwrap())
    }

    #[test]
    fn a_sealed_credential_opens_to_its_value_and_does_not_contain_it() {
        let task = TaskId::generate(Utc::now());
        let s = sealer("a master secret of some length");
        let sealed = s.seal(&task, &Credential::clear("sk_live_abcdef123456"));
        let Credential::Sealed(text) = &sealed else {
            panic!("not sealed")
        };
        assert!(!text.contains("sk_live"));
        assert_eq!(
            s.open(&task, &sealed).unwrap().expose_secret(),
            "sk_live_abcdef123456"
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let task = TaskId::generate(Utc::now());
        let s = sealer("a master secret of some length");
        let a = s.seal(&task, &Credential::clear("same"));
        let b = s.seal(&task, &Credential::clear("same"));
        assert_ne!(a, b);
    }

    #[test]
    fn a_sealed_credential_does_not_open_for_another_task_or_another_master_secret() {
        let task = TaskId::generate(Utc::now());
        let other = TaskId::generate(Utc::now());
        let s = sealer("a master secret of some length");
        let sealed = s.seal(&task, &Credential::clear("token"));
        assert!(s.open(&other, &sealed).is_err());
        assert!(
            sealer("another master secret entirely")
                .open(&task, &sealed)
                .is_err()
        );
    }

    #[test]
    fn an_altered_sealed_credential_does_not_open() {
        let task = TaskId::generate(Utc::now());
        let s = sealer("a master secret of some length");
        let Credential::Sealed(text) = s.seal(&task, &Credential::clear("token")) else {
            panic!("not sealed")
        };
        let mut bytes = B64URL.decode(&text[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = Credential::Sealed(format!("v1.{}", B64URL.encode(bytes)));
        assert!(s.open(&task, &altered).is_err());
    }

    #[test]
    fn a_clear_credential_refuses_to_be_stored_and_never_prints() {
        let clear = Credential::clear("hunter2");
        assert!(serde_json::to_string(&clear).is_err());
        assert_eq!(format!("{clear:?}"), "***");
    }
}
