//! Who is calling: static tokens, HS256 JWTs, or claims an API gateway already verified.

use std::collections::HashMap;

use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pj_core::{AppError, Principal, UserId};
use std::str::FromStr;

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
    jwks: Option<Jwks>,
    trust_gateway: bool,
}

/// Asymmetric JWTs of an OpenID issuer (Cognito, Auth0, Supabase's signing keys), checked as an
/// API Gateway JWT authorizer checks them: the issuer exactly, an audience from the list (or a
/// Cognito access token's `client_id`), the expiry.
#[derive(Clone)]
struct Jwks {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audiences: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    client_id: Option<String>,
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
    /// `exp`, `nbf` when present, and, when given, the audience and the issuer.
    pub fn with_jwt_secret(
        mut self,
        secret: &[u8],
        audience: Option<&str>,
        issuer: Option<&str>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        // A token that is not valid yet is refused like an expired one.
        validation.validate_nbf = true;
        // jsonwebtoken checks `aud` and `iss` only when the token has them: a configured one
        // must also be a required claim, or a token without it would pass.
        let mut required = vec!["exp", "sub"];
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        self.jwt = Some((DecodingKey::from_secret(secret), validation));
        self
    }

    /// Accepts JWTs signed by one of the keys of a JSON Web Key Set (as served at the issuer's
    /// `jwks_uri`), issued by `issuer` for one of `audiences`.
    pub fn with_jwks(
        mut self,
        jwks_json: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Self, String> {
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(jwks_json).map_err(|e| format!("the JWKS is not valid: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = match &jwk.common.key_algorithm {
                Some(a) => match Algorithm::from_str(&a.to_string()) {
                    Ok(alg) => alg,
                    Err(_) => continue,
                },
                None => match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                    _ => Algorithm::RS256,
                },
            };
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err("the JWKS holds no usable signing key".into());
        }
        self.jwks = Some(Jwks {
            keys,
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
        });
        Ok(self)
    }

    /// Trusts [`GatewayClaims`] found in the request (only behind a gateway that verifies).
    pub fn trusting_gateway(mut self) -> Self {
        self.trust_gateway = true;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.jwt.is_none() && self.jwks.is_none() && !self.trust_gateway
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
        if let Some(jwks) = &self.jwks
            && token.matches('.').count() == 2
            && let Ok(header) = jsonwebtoken::decode_header(token)
            && header.alg != Algorithm::HS256
        {
            return jwks.verify(token, &header);
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

impl Jwks {
    fn verify(&self, token: &str, header: &jsonwebtoken::Header) -> Result<Principal, AppError> {
        let refused =
            |why: &str| AppError::Unauthorized(format!("the token was not accepted: {why}"));
        let (_, alg, key) = self
            .keys
            .iter()
            .find(|(kid, alg, _)| {
                *alg == header.alg && (header.kid.is_none() || *kid == header.kid)
            })
            .ok_or_else(|| refused("it is not signed by a key of the issuer"))?;
        let mut validation = Validation::new(*alg);
        validation.leeway = 30;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.validate_nbf = true;
        // The audience is checked below, so a Cognito access token's client_id counts too.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| refused(jwt_reason(&e)))?;
        let claims = data.claims;
        let audiences: Vec<String> = match &claims.aud {
            Some(serde_json::Value::String(a)) => vec![a.clone()],
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => claims.client_id.clone().into_iter().collect(),
        };
        if !self.audiences.is_empty() && !audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(refused("its audience is wrong"));
        }
        let user = UserId::parse(&claims.sub).map_err(|_| refused("its subject is not valid"))?;
        Ok(Principal {
            user,
            email: claims.email.filter(|e| !e.is_empty()),
        })
    }
}

fn jwt_reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired",
        ErrorKind::ImmatureSignature => "it is not valid yet",
        ErrorKind::InvalidIssuer => "its issuer is wrong",
        ErrorKind::InvalidSignature => "its signature is invalid",
        ErrorKind::InvalidAudience => "its audience is wrong",
        ErrorKind::InvalidAlgorithm => "it is not signed with HS256",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "it is malformed",
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, AppError> {
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

/// The SHA-256 of a token: what is kept and compared, never the token itself.
pub(crate) fn digest(token: &str) -> [u8; 32] {
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
        let auth = Authenticator::default().with_jwt_secret(secret, None, None);
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
        let auth = Authenticator::default().with_jwt_secret(secret, Some("authenticated"), None);
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

    fn now() -> i64 {
        later() - 3600
    }

    const SECRET: &[u8] = b"super-secret-jwt-token-with-at-least-32-characters";
    const SUPABASE_ISSUER: &str = "https://project.supabase.co/auth/v1";

    fn refusal(auth: &Authenticator, token: &str) -> String {
        match auth.principal_for_token(token) {
            Err(AppError::Unauthorized(why)) => why,
            other => panic!("expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn when_jwt_is_not_valid_yet_should_refuse() {
        let auth = Authenticator::default().with_jwt_secret(SECRET, None, None);
        let future = jwt(
            json!({"sub": "u", "exp": later() + 3600, "nbf": later()}),
            SECRET,
        );
        assert!(refusal(&auth, &future).contains("not valid yet"));
        // Within the leeway, or already valid: accepted.
        let now_ish = jwt(
            json!({"sub": "u", "exp": later(), "nbf": now() + 5}),
            SECRET,
        );
        assert!(auth.principal_for_token(&now_ish).is_ok());
    }

    #[test]
    fn when_jwt_has_the_wrong_or_no_audience_should_refuse() {
        let auth = Authenticator::default().with_jwt_secret(SECRET, Some("authenticated"), None);
        let other = jwt(json!({"sub": "u", "exp": later(), "aud": "anon"}), SECRET);
        assert!(refusal(&auth, &other).contains("audience"));
        let none = jwt(json!({"sub": "u", "exp": later()}), SECRET);
        assert!(auth.principal_for_token(&none).is_err());
        let right = jwt(
            json!({"sub": "u", "exp": later(), "aud": "authenticated"}),
            SECRET,
        );
        assert!(auth.principal_for_token(&right).is_ok());
    }

    #[test]
    fn when_an_issuer_is_configured_a_jwt_with_another_or_no_issuer_should_be_refused() {
        let auth = Authenticator::default().with_jwt_secret(SECRET, None, Some(SUPABASE_ISSUER));
        let wrong = jwt(
            json!({"sub": "u", "exp": later(), "iss": "https://evil.example/auth/v1"}),
            SECRET,
        );
        assert!(refusal(&auth, &wrong).contains("issuer"));
        let missing = jwt(json!({"sub": "u", "exp": later()}), SECRET);
        assert!(auth.principal_for_token(&missing).is_err());
        let right = jwt(
            json!({"sub": "u", "exp": later(), "iss": SUPABASE_ISSUER}),
            SECRET,
        );
        assert_eq!(auth.principal_for_token(&right).unwrap().user.as_str(), "u");
    }

    #[test]
    fn when_no_issuer_is_configured_any_issuer_is_accepted() {
        let auth = Authenticator::default().with_jwt_secret(SECRET, None, None);
        let token = jwt(
            json!({"sub": "u", "exp": later(), "iss": "https://anyone.example"}),
            SECRET,
        );
        assert!(auth.principal_for_token(&token).is_ok());
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

    // A throwaway RSA key made for these tests only, and its JWKS.
    const TEST_RSA_KEY: &str = include_str!("testdata/rsa-test-key.pem");
    const TEST_JWKS: &str = include_str!("testdata/jwks.json");
    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";

    fn rs256(claims: serde_json::Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let key = EncodingKey::from_rsa_pem(TEST_RSA_KEY.as_bytes()).unwrap();
        encode(&header, &claims, &key).unwrap()
    }

    #[test]
    fn an_issuers_jwt_is_accepted_by_its_jwks_with_an_audience_or_client_id() {
        let auth = Authenticator::default()
            .with_jwks(TEST_JWKS, ISSUER, &["app-client".into()])
            .unwrap();
        let id_token = rs256(
            json!({"sub": "u-1", "email": "u@example.com", "iss": ISSUER, "aud": "app-client", "exp": later()}),
            "test-key-1",
        );
        let p = auth.principal_for_token(&id_token).unwrap();
        assert_eq!(p.user.as_str(), "u-1");
        assert_eq!(p.email.as_deref(), Some("u@example.com"));
        let access_token = rs256(
            json!({"sub": "u-2", "iss": ISSUER, "client_id": "app-client", "exp": later()}),
            "test-key-1",
        );
        assert_eq!(
            auth.principal_for_token(&access_token)
                .unwrap()
                .user
                .as_str(),
            "u-2"
        );
    }

    #[test]
    fn when_jwks_token_has_wrong_issuer_audience_key_or_is_expired_should_refuse() {
        let auth = Authenticator::default()
            .with_jwks(TEST_JWKS, ISSUER, &["app-client".into()])
            .unwrap();
        let bad = [
            rs256(
                json!({"sub": "u", "iss": "https://evil.example", "aud": "app-client", "exp": later()}),
                "test-key-1",
            ),
            rs256(
                json!({"sub": "u", "iss": ISSUER, "aud": "other", "exp": later()}),
                "test-key-1",
            ),
            rs256(
                json!({"sub": "u", "iss": ISSUER, "aud": "app-client", "exp": later()}),
                "unknown-kid",
            ),
            rs256(
                json!({"sub": "u", "iss": ISSUER, "aud": "app-client", "exp": 1000}),
                "test-key-1",
            ),
        ];
        for token in bad {
            assert!(auth.principal_for_token(&token).is_err());
        }
        assert!(
            Authenticator::default()
                .with_jwks(r#"{"keys": []}"#, ISSUER, &[])
                .is_err()
        );
    }

    #[test]
    fn when_jwks_token_is_not_valid_yet_should_refuse() {
        let auth = Authenticator::default()
            .with_jwks(TEST_JWKS, ISSUER, &["app-client".into()])
            .unwrap();
        let future = rs256(
            json!({"sub": "u", "iss": ISSUER, "aud": "app-client", "exp": later() + 3600, "nbf": later()}),
            "test-key-1",
        );
        assert!(refusal(&auth, &future).contains("not valid yet"));
        let valid = rs256(
            json!({"sub": "u", "iss": ISSUER, "aud": "app-client", "exp": later(), "nbf": now() - 60}),
            "test-key-1",
        );
        assert!(auth.principal_for_token(&valid).is_ok());
    }

    #[test]
    fn when_jwks_token_has_the_wrong_issuer_or_audience_should_say_which() {
        let auth = Authenticator::default()
            .with_jwks(TEST_JWKS, ISSUER, &["app-client".into()])
            .unwrap();
        let wrong_iss = rs256(
            json!({"sub": "u", "iss": "https://evil.example", "aud": "app-client", "exp": later()}),
            "test-key-1",
        );
        assert!(refusal(&auth, &wrong_iss).contains("issuer"));
        let wrong_aud = rs256(
            json!({"sub": "u", "iss": ISSUER, "aud": "other", "exp": later()}),
            "test-key-1",
        );
        assert!(refusal(&auth, &wrong_aud).contains("audience"));
    }
}
