//! What a key is: its secret's shape, its hash, its scopes.
//!
//! A secret reads `fk_test_` or `fk_live_` (or `fk_svc_` for a service key), then eight characters
//! that find the key, then thirty-two that prove it: 190 random bits in all. The first part, up to
//! the eight, is the key's visible prefix. Only a SHA-256 of the whole secret is stored: a secret
//! this random cannot be guessed from its hash, so a slow password hash would buy nothing.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Characters of the lookup part.
const LOOKUP_LEN: usize = 8;
/// Characters of the proof part.
const PROOF_LEN: usize = 32;

/// What a key may do. A call needs one scope; the admin scope does not imply the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Get and List calls.
    Read,
    /// Calls that create, change or delete.
    Write,
    /// Managing keys.
    Admin,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// Which objects a key reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Live objects only.
    Live,
    /// Test objects only.
    Test,
    /// A service of the suite's: acts in the mode of the call it serves.
    Service,
}

impl KeyKind {
    fn tag(self) -> &'static str {
        match self {
            KeyKind::Live => "live",
            KeyKind::Test => "test",
            KeyKind::Service => "svc",
        }
    }
}

/// A freshly made secret and what is stored of it.
pub struct NewSecret {
    /// The whole secret, shown once.
    pub secret: String,
    /// Its visible start, stored to find the key and to recognise it.
    pub prefix: String,
    /// Its SHA-256, stored to check it.
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Makes a secret for a key of `kind`.
pub fn generate(kind: KeyKind) -> NewSecret {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(LOOKUP_LEN + PROOF_LEN).map(char::from).collect();
    let secret = format!("fk_{}_{random}", kind.tag());
    let prefix = secret[..secret.len() - PROOF_LEN].to_owned();
    NewSecret { hash: hash(&secret), prefix, secret }
}

/// The prefix that finds the key of a secret, if the secret has the shape of one.
pub fn prefix_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("fk_")?;
    let (tag, random) = rest.split_once('_')?;
    let well_formed = matches!(tag, "live" | "test" | "svc")
        && random.len() == LOOKUP_LEN + PROOF_LEN
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &secret[..secret.len() - PROOF_LEN])
}

/// The SHA-256 of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` is the one `stored` is the hash of, in time that does not depend on where
/// they differ.
pub fn matches(secret: &str, stored: &[u8]) -> bool {
    hash(secret).as_slice().ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_secret_is_found_by_its_prefix_and_proved_by_its_hash() {
        let made = generate(KeyKind::Test);
        assert!(made.secret.starts_with("fk_test_"));
        assert_eq!(prefix_of(&made.secret), Some(made.prefix.as_str()));
        assert_eq!(made.prefix.len(), "fk_test_".len() + LOOKUP_LEN);
        assert!(matches(&made.secret, &made.hash));
        let mut other = made.secret.clone();
        other.pop();
        other.push(if made.secret.ends_with('a') { 'b' } else { 'a' });
        assert!(!matches(&other, &made.hash), "one character off is another key");
    }

    #[test]
    fn secrets_differ_and_service_keys_say_so() {
        let (a, b) = (generate(KeyKind::Live), generate(KeyKind::Live));
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.prefix, b.prefix);
        assert!(generate(KeyKind::Service).secret.starts_with("fk_svc_"));
    }

    #[test]
    fn misshapen_secrets_have_no_prefix() {
        let good = generate(KeyKind::Live).secret;
        for bad in [
            "",
            "fk_",
            "fk_live_",
            "sk_live_abc",
            &good[..good.len() - 1],
            &format!("{good}x"),
            "fk_prod_0123456789012345678901234567890123456789",
        ] {
            assert_eq!(prefix_of(bad), None, "{bad}");
        }
        assert_eq!(prefix_of(&good.replace("fk_live_", "fk_live!")), None);
    }

    proptest! {
        #[test]
        fn any_string_is_checked_without_panicking(secret in ".*") {
            let _ = prefix_of(&secret);
            prop_assert!(!matches(&secret, &hash("fk_live_x")) || secret == "fk_live_x");
        }
    }
}
