//! Who is calling: static tokens, HS256 JWTs, or claims an API gateway already verified.

use std::collections::HashMap;

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pj_core::{AppError, Principal, UserId};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Claims an API gateway's JWT authorizer verified; the Lambda wiring puts them in the
/// request's extensions.
#[derive(Debug, Clone)]
pub struct GatewayClaims {
    pub sub: String,
    pub email: Option<String>,
}

/// How requests are authenticated.
#[derive(Clone, Default)]
pub struct Authenticator {
    /// SHA-256 of each static token: looking up a digest leaks nothing about the tokens
    /// through timing.
    tokens: HashMap<[u8; 32], Principal>,
    jwt: Option<(DecodingKey, Validation)>,
    trust_gateway: bool,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
}

impl Authenticator {
    /// Parses `PJ_AUTH_TOKENS`: `token=user_id[:email],...`.
    pub fn with_tokens(mut self, spec: &str) -> Result<Self, String> {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (token, who) = entry
                .split_once('=')
                .ok_or("PJ_AUTH_TOKENS: each entry is token=user_id[:email]")?;
            let (user, email) = match who.split_once(':') {
                Some((u, e)) => (u, Some(e.to_owned()).filter(|e| !e.is_empty())),
                None => (who, None),
            };
            if token.len() < 8 {
                return Err("PJ_AUTH_TOKENS: a token must be at least 8 characters".into());
            }
            let user = UserId::parse(user)
                .map_err(|_| format!("PJ_AUTH_TOKENS: {user:?} is not a valid user id"))?;
            self.tokens.insert(digest(token), Principal { user, email });
        }
        Ok(self)
    }

    /// Accepts HS256 JWTs signed with `secret` (Supabase-compatible: `sub`, `email`), checking
    /// `exp` and, when given, the audience.
    pub fn with_jwt_secret(mut self, secret: &[u8], audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        self.jwt = Some((DecodingKey::from_secret(secret), validation));
        self
    }

    /// Trusts [`GatewayClaims`] found in the request (only behind a gateway that verifies).
    pub fn trusting_gateway(mut self) -> Self {
        self.trust_gateway = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none() && !self.trust_gateway
    }

    /// The caller of a request, or `401`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        gateway: Option<&GatewayClaims>,
    ) -> Result<Principal, AppError> {
        if self.trust_gateway
            && let Some(claims) = gateway
        {
            let user = UserId::parse(&claims.sub)
                .map_err(|_| AppError::Unauthorized("the token's subject is not valid".into()))?;
            return Ok(Principal {
                user,
                email: claims.email.clone(),
            });
        }
        let token = bearer(headers)?;
        self.principal_for_token(token)
    }

    /// The caller holding `token` (a static token or a JWT), or `401`.
    pub fn principal_for_token(&self, token: &str) -> Result<Principal, AppError> {
        if let Some(p) = self.tokens.get(&digest(token)) {
            return Ok(p.clone());
        }
        if let Some((key, validation)) = &self.jwt
            && token.matches('.').count() == 2
        {
            let data = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| {
                AppError::Unauthorized(format!("the token was not accepted: {}", jwt_reason(&e)))
            })?;
            let user = UserId::parse(&data.claims.sub)
                .map_err(|_| AppError::Unauthorized("the token's subject is not valid".into()))?;
            return Ok(Principal {
                user,
                email: data.claims.email.filter(|e| !e.is_empty()),
            });
        }
        Err(AppError::Unauthorized("the token was not accepted".into()))
    }
}

fn jwt_reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::InvalidSignature => "its signature is invalid",
        ErrorKind::InvalidAudience => "its audience is wrong",
        ErrorKind::InvalidAlgorithm => "it is not signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "it is malformed",
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("missing Authorization: Bearer <token>".into()))?
        .to_str()
        .map_err(|_| AppError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| AppError::Unauthorized("expected Authorization: Bearer <token>".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok(token.trim())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    fn jwt(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn later() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600
    }

    #[test]
    fn a_static_token_names_its_user_and_email() {
        let auth = Authenticator::default()
            .with_tokens("dev-token-1=alice:alice@example.com, dev-token-2=bob")
            .unwrap();
        let p = auth
            .authenticate(&headers("Bearer dev-token-1"), None)
            .unwrap();
        assert_eq!(p.user.as_str(), "alice");
        assert_eq!(p.email.as_deref(), Some("alice@example.com"));
        let p = auth
            .authenticate(&headers("bearer dev-token-2"), None)
            .unwrap();
        assert_eq!(p.user.as_str(), "bob");
        assert!(p.email.is_none());
    }

    #[test]
    fn when_token_is_missing_or_unknown_should_refuse() {
        let auth = Authenticator::default()
            .with_tokens("dev-token-1=alice")
            .unwrap();
        assert!(auth.authenticate(&HeaderMap::new(), None).is_err());
        assert!(
            auth.authenticate(&headers("Bearer nope-nope"), None)
                .is_err()
        );
        assert!(
            auth.authenticate(&headers("Basic dev-token-1"), None)
                .is_err()
        );
    }

    #[test]
    fn a_supabase_style_jwt_is_accepted() {
        let secret = b"super-secret-jwt-token-with-at-least-32-characters";
        let auth = Authenticator::default().with_jwt_secret(secret, None);
        let token = jwt(
            json!({"sub": "8d0f-uuid", "email": "c@example.com", "exp": later(), "aud": "authenticated", "role": "authenticated"}),
            secret,
        );
        let p = auth
            .authenticate(&headers(&format!("Bearer {token}")), None)
            .unwrap();
        assert_eq!(p.user.as_str(), "8d0f-uuid");
        assert_eq!(p.email.as_deref(), Some("c@example.com"));
    }

    #[test]
    fn when_jwt_is_expired_forged_or_without_sub_should_refuse() {
        let secret = b"super-secret-jwt-token-with-at-least-32-characters";
        let auth = Authenticator::default().with_jwt_secret(secret, Some("authenticated"));
        let expired = jwt(
            json!({"sub": "u", "exp": 1000, "aud": "authenticated"}),
            secret,
        );
        let forged = jwt(
            json!({"sub": "u", "exp": later(), "aud": "authenticated"}),
            b"another-secret-of-enough-length-000000",
        );
        let no_sub = jwt(json!({"exp": later(), "aud": "authenticated"}), secret);
        let wrong_aud = jwt(json!({"sub": "u", "exp": later(), "aud": "other"}), secret);
        for token in [expired, forged, no_sub, wrong_aud] {
            assert!(
                auth.authenticate(&headers(&format!("Bearer {token}")), None)
                    .is_err()
            );
        }
    }

    #[test]
    fn gateway_claims_count_only_when_trusted() {
        let claims = GatewayClaims {
            sub: "gw-user".into(),
            email: None,
        };
        let untrusting = Authenticator::default();
        assert!(
            untrusting
                .authenticate(&HeaderMap::new(), Some(&claims))
                .is_err()
        );
        let trusting = Authenticator::default().trusting_gateway();
        let p = trusting
            .authenticate(&HeaderMap::new(), Some(&claims))
            .unwrap();
        assert_eq!(p.user.as_str(), "gw-user");
    }
}
