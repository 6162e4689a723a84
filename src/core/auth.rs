//! Token authentication, checked before the body is read and failing closed.

use sha2::{Digest, Sha256};
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
    token_digests: Option<Vec<[u8; 32]>>,
    allow_anonymous: bool,
    has_validators: bool,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl AuthCheck {
    pub fn new(cfg: Option<&AuthConfig>) -> Self {
        let header = cfg
            .and_then(|c| c.header.clone())
            .unwrap_or_else(|| DEFAULT_TOKEN_HEADER.into())
            .to_ascii_lowercase();
        AuthCheck {
            header,
            token_digests: cfg
                .and_then(|c| c.tokens.as_ref())
                .map(|tokens| tokens.iter().map(|t| digest(t.as_bytes())).collect()),
            allow_anonymous: cfg.is_some_and(|c| c.allow_anonymous),
            has_validators: cfg.is_some_and(|c| c.has_validators),
        }
    }

    /// The lower-cased header the token travels in.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// `provided` is the header value as Node would present it (missing
    /// header: empty string). Tokens are compared as SHA-256 digests in
    /// constant time, so neither length nor content leaks through timing.
    pub fn check(&self, provided: &str) -> AuthOutcome {
        if let Some(digests) = &self.token_digests {
            let provided = digest(provided.as_bytes());
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
}
