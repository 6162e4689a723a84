//! Token authentication, checked before the body is read and failing closed.

#![forbid(unsafe_code)]

use std::hash::{BuildHasher, RandomState};

use http::HeaderName;
use siphasher::sip128::SipHasher13;
use subtle::ConstantTimeEq;

use super::config::AuthConfig;

pub const DEFAULT_TOKEN_HEADER: &str = "x-runner-token";

/// The verdict on one request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    /// No token matched, but validators in JavaScript may still allow it.
    AskValidators,
    /// 401 `UNAUTHORIZED`.
    Unauthorized,
    /// 500 `AUTH_NOT_CONFIGURED`: neither token nor validators, and anonymous
    /// access not allowed.
    NotConfigured,
}

#[derive(Debug, Clone)]
pub struct AuthCheck {
    header: String,
    /// `header` as a header name (`None` if it cannot be one: then no
    /// request carries it).
    header_name: Option<HeaderName>,
    key: TokenKey,
    token_digests: Option<Vec<[u8; 16]>>,
    allow_anonymous: bool,
    has_validators: bool,
}

/// Tokens are compared by keyed digest: SipHash-1-3 with a 128-bit output,
/// under a key drawn at random for each server. The digest of a request's
/// value takes time that depends only on that value, and digests are
/// compared in constant time, so the time taken tells nothing of a token,
/// not even its length; and without the key no value can be aimed at a
/// token's digest.
#[derive(Clone)]
struct TokenKey(SipHasher13);

impl std::fmt::Debug for TokenKey {
    // The key stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    fn random() -> Self {
        let mut key = [0u8; 16];
        if getrandom::fill(&mut key).is_err() {
            // The system's random source failed: std's own random hash keys
            // (drawn from the same source at start-up) stand in.
            let state = RandomState::new();
            key[..8].copy_from_slice(&state.hash_one(0u8).to_le_bytes());
            key[8..].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
        }
        TokenKey(SipHasher13::new_with_key(&key))
    }

    fn digest(&self, bytes: &[u8]) -> [u8; 16] {
        u128::from(self.0.hash(bytes)).to_le_bytes()
    }
}

impl AuthCheck {
    pub fn new(cfg: Option<&AuthConfig>) -> Self {
        let header = cfg
            .and_then(|c| c.header.clone())
            .unwrap_or_else(|| DEFAULT_TOKEN_HEADER.into())
            .to_ascii_lowercase();
        let key = TokenKey::random();
        AuthCheck {
            header_name: HeaderName::from_bytes(header.as_bytes()).ok(),
            header,
            token_digests: cfg
                .and_then(|c| c.tokens.as_ref())
                .map(|tokens| tokens.iter().map(|t| key.digest(t.as_bytes())).collect()),
            key,
            allow_anonymous: cfg.is_some_and(|c| c.allow_anonymous),
            has_validators: cfg.is_some_and(|c| c.has_validators),
        }
    }

    /// The lower-cased header the token travels in.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The same, parsed once as a header name.
    pub fn header_name(&self) -> Option<&HeaderName> {
        self.header_name.as_ref()
    }

    /// `provided` is the header value as Node would present it (missing
    /// header: empty string). Tokens are compared as keyed digests in
    /// constant time (see [`TokenKey`]).
    pub fn check(&self, provided: &str) -> AuthOutcome {
        if let Some(digests) = &self.token_digests {
            let provided = self.key.digest(provided.as_bytes());
            let mut matched = subtle::Choice::from(0u8);
            for d in digests {
                matched |= d.ct_eq(&provided);
            }
            if bool::from(matched) {
                return AuthOutcome::Allowed;
            }
        }
        if self.has_validators {
            return AuthOutcome::AskValidators;
        }
        if self.token_digests.is_none() {
            if self.allow_anonymous {
                return AuthOutcome::Allowed;
            }
            return AuthOutcome::NotConfigured;
        }
        AuthOutcome::Unauthorized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tokens: Option<Vec<&str>>, allow_anonymous: bool) -> AuthCheck {
        AuthCheck::new(Some(&AuthConfig {
            tokens: tokens.map(|t| t.into_iter().map(String::from).collect()),
            header: Some("X-Custom-Token".into()),
            allow_anonymous,
            has_validators: false,
        }))
    }

    #[test]
    fn matching_token_from_a_list_is_allowed() {
        let a = auth(Some(vec!["one", "two"]), false);
        assert_eq!(a.check("two"), AuthOutcome::Allowed);
        assert_eq!(a.check("three"), AuthOutcome::Unauthorized);
        assert_eq!(a.check(""), AuthOutcome::Unauthorized);
    }

    #[test]
    fn header_name_is_lower_cased() {
        assert_eq!(auth(None, true).header(), "x-custom-token");
    }

    #[test]
    fn no_token_fails_closed_unless_anonymous_is_allowed() {
        assert_eq!(auth(None, false).check("x"), AuthOutcome::NotConfigured);
        assert_eq!(auth(None, true).check(""), AuthOutcome::Allowed);
        assert_eq!(AuthCheck::new(None).check(""), AuthOutcome::NotConfigured);
    }

    #[test]
    fn an_empty_token_list_rejects_everything_like_the_reference() {
        assert_eq!(
            auth(Some(vec![]), true).check(""),
            AuthOutcome::Unauthorized
        );
    }

    #[test]
    fn validators_are_asked_when_no_token_matched() {
        let mut cfg = AuthConfig {
            tokens: Some(vec!["t".into()]),
            has_validators: true,
            ..Default::default()
        };
        assert_eq!(AuthCheck::new(Some(&cfg)).check("t"), AuthOutcome::Allowed);
        assert_eq!(
            AuthCheck::new(Some(&cfg)).check("u"),
            AuthOutcome::AskValidators
        );
        cfg.tokens = None;
        assert_eq!(
            AuthCheck::new(Some(&cfg)).check(""),
            AuthOutcome::AskValidators
        );
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let a = auth(Some(vec!["t"]), false);
        let (k0, k1) = a.key.0.keys();
        let shown = format!("{a:?}");
        assert!(shown.contains("TokenKey(..)"));
        assert!(!shown.contains(&k0.to_string()) && !shown.contains(&k1.to_string()));
    }

    #[test]
    fn token_digests_are_keyed_per_server() {
        let (a, b) = (auth(Some(vec!["t"]), false), auth(Some(vec!["t"]), false));
        assert_ne!(a.key.digest(b"t"), b.key.digest(b"t"));
        assert_eq!(a.key.digest(b"t"), a.key.digest(b"t"));
        // A prefix or an extension of a token is not the token.
        assert_eq!(a.check("t "), AuthOutcome::Unauthorized);
        assert_eq!(
            auth(Some(vec!["secret"]), false).check("secre"),
            AuthOutcome::Unauthorized
        );
    }
}
