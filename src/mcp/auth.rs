//! Who is calling over HTTP: static bearer tokens from a file and/or JWTs.
//!
//! A caller is a name plus the capabilities its credential grants; the server's policy still
//! applies on top. Static tokens are compared in constant time (SHA-256 digests, every token
//! tried, so neither content nor which token matched leaks through timing). JWTs are checked
//! for signature (HS256 with a secret from a file, or RS256/ES256 with keys from a JWKS file),
//! expiry, issuer and audience. Token values and secrets never reach `Debug` or the logs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::policy::Capability;
use crate::Error;
use crate::toml_location::{field_error, parse_error};

/// The authenticated caller of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name or the JWT's `sub`.
    pub name: String,
    /// What the credential grants; `None` = whatever the policy allows (stdio, no auth).
    pub capabilities: Option<BTreeSet<Capability>>,
}

impl Caller {
    /// The local user of a stdio server, or an HTTP caller on a loopback server without
    /// auth: bounded by the policy alone.
    #[must_use]
    pub fn local(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            capabilities: None,
        }
    }

    /// The caller of a tool call: the one the HTTP gate set in the request's parts (a request
    /// without one is refused every capability), or the local user of a stdio server.
    #[must_use]
    pub fn of(ctx: &RequestContext<RoleServer>) -> Self {
        match ctx.extensions.get::<axum::http::request::Parts>() {
            Some(parts) => parts.extensions.get::<Self>().cloned().unwrap_or_else(|| Self {
                name: "unauthenticated".into(),
                capabilities: Some(BTreeSet::new()),
            }),
            None => Self::local("stdio"),
        }
    }

    /// Whether the credential grants `cap`.
    #[must_use]
    pub fn may(&self, cap: Capability) -> bool {
        self.capabilities.as_ref().is_none_or(|c| c.contains(&cap))
    }
}

struct StaticToken {
    name: String,
    digest: [u8; 32],
    capabilities: BTreeSet<Capability>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    token: String,
    capabilities: Vec<Capability>,
}

/// JWT settings.
#[derive(Clone)]
pub struct JwtConfig {
    keys: JwtKeys,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
}

#[derive(Clone)]
enum JwtKeys {
    Hs256(DecodingKey),
    Jwks(JwkSet),
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field(
                "keys",
                &match self.keys {
                    JwtKeys::Hs256(_) => "HS256 secret ***",
                    JwtKeys::Jwks(_) => "JWKS",
                },
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn file_error(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_owned(),
        line: 0,
        column: 0,
        field: field.to_owned(),
        message: message.into(),
    }
}

impl JwtConfig {
    /// HS256 with the secret in `path` (trailing whitespace trimmed, at least 32 bytes).
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Config`] for a short secret.
    pub fn hs256(path: &Path, issuer: String, audience: String) -> Result<Self, Error> {
        let mut secret = read(path)?;
        while secret.last().is_some_and(u8::is_ascii_whitespace) {
            secret.pop();
        }
        if secret.len() < 32 {
            return Err(file_error(path, "secret", "an HS256 secret must be at least 32 bytes"));
        }
        Ok(Self {
            keys: JwtKeys::Hs256(DecodingKey::from_secret(&secret)),
            issuer,
            audience,
        })
    }

    /// RS256/ES256 with the public keys of the JWKS document in `path`.
    ///
    /// # Errors
    /// [`Error::Io`], or [`Error::Config`] when the file is not a JWKS with a usable key.
    pub fn jwks(path: &Path, issuer: String, audience: String) -> Result<Self, Error> {
        let text = read(path)?;
        let set: JwkSet = serde_json::from_slice(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            field: "keys".into(),
            message: e.to_string(),
        })?;
        if set.keys.iter().all(|k| DecodingKey::from_jwk(k).is_err()) {
            return Err(file_error(path, "keys", "no RSA or EC public key in the JWKS"));
        }
        Ok(Self {
            keys: JwtKeys::Jwks(set),
            issuer,
            audience,
        })
    }
}

/// Turns an `Authorization` header into a [`Caller`].
#[derive(Default)]
pub struct Authenticator {
    tokens: Vec<StaticToken>,
    jwt: Option<JwtConfig>,
    tokens_file: Option<PathBuf>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.iter().map(|t| &t.name).collect::<Vec<_>>())
            .field("tokens_file", &self.tokens_file)
            .field("jwt", &self.jwt)
            .finish()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    #[serde(default)]
    scope: String,
}

impl Authenticator {
    /// No credentials configured.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any credential is configured.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// Adds the static tokens of a TOML file (`[[token]] name, token, capabilities`).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Config`] naming the line and field.
    pub fn with_tokens_file(mut self, path: &Path) -> Result<Self, Error> {
        let bytes = read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let raw: RawTokens = toml::from_str(&text).map_err(|e| parse_error(&e, &text, path))?;
        for (i, t) in raw.token.into_iter().enumerate() {
            if t.name.starts_with("jwt:") {
                return Err(field_error(
                    &text,
                    path,
                    format!("token[{i}].name"),
                    "names starting with jwt: are reserved for JWT callers".into(),
                ));
            }
            if t.token.len() < 16 {
                return Err(field_error(
                    &text,
                    path,
                    format!("token[{i}].token"),
                    "a token must be at least 16 characters".into(),
                ));
            }
            let digest: [u8; 32] = Sha256::digest(t.token.as_bytes()).into();
            // A caller's locks and call slots belong to its name, and a token must say who
            // is calling: both have to be unique.
            if let Some(j) = self.tokens.iter().position(|o| o.name == t.name) {
                return Err(field_error(
                    &text,
                    path,
                    format!("token[{i}].name"),
                    format!(
                        "\"{}\" is already the name of token[{j}]: each token needs its own name",
                        t.name
                    ),
                ));
            }
            if let Some(j) = self.tokens.iter().position(|o| o.digest == digest) {
                return Err(field_error(
                    &text,
                    path,
                    format!("token[{i}].token"),
                    format!("the same token as token[{j}]: each caller needs its own token"),
                ));
            }
            self.tokens.push(StaticToken {
                name: t.name,
                digest,
                capabilities: t.capabilities.into_iter().collect(),
            });
        }
        if self.tokens.is_empty() {
            return Err(file_error(path, "token", "the file defines no [[token]]"));
        }
        self.tokens_file = Some(path.to_owned());
        Ok(self)
    }

    /// Accepts JWTs checked with `config`.
    #[must_use]
    pub fn with_jwt(mut self, config: JwtConfig) -> Self {
        self.jwt = Some(config);
        self
    }

    /// The caller an `Authorization` header value names.
    ///
    /// # Errors
    /// Why the credential was refused (no secret in the text).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, String> {
        let header = authorization.ok_or("no bearer token")?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or("the Authorization header is not a bearer token")?
            .trim();
        if let Some(caller) = self.static_token(token) {
            return Ok(caller);
        }
        match &self.jwt {
            Some(jwt) if token.matches('.').count() == 2 => self.check_jwt(jwt, token),
            _ => Err("unknown token".into()),
        }
    }

    fn static_token(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(Caller {
                    name: t.name.clone(),
                    capabilities: Some(t.capabilities.clone()),
                });
            }
        }
        found
    }

    #[allow(clippy::unused_self)]
    fn check_jwt(&self, jwt: &JwtConfig, token: &str) -> Result<Caller, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("bad JWT header: {e}"))?;
        let (key, alg) = match &jwt.keys {
            JwtKeys::Hs256(key) => (key.clone(), Algorithm::HS256),
            JwtKeys::Jwks(set) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(format!(
                        "JWT algorithm {:?} is not accepted (RS256 or ES256)",
                        header.alg
                    ));
                }
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid).ok_or("no JWKS key has the JWT's kid")?,
                    None if set.keys.len() == 1 => &set.keys[0],
                    None => return Err("the JWT has no kid and the JWKS holds several keys".into()),
                };
                (
                    DecodingKey::from_jwk(jwk).map_err(|e| format!("JWKS key: {e}"))?,
                    header.alg,
                )
            }
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&jwt.issuer]);
        validation.set_audience(&[&jwt.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| format!("JWT refused: {e}"))?;
        let capabilities = data
            .claims
            .scope
            .split_whitespace()
            .filter_map(Capability::parse)
            .collect();
        // Namespaced, so a JWT subject never shares an identity (locks, in-flight limit) with
        // a static token of the same name. An empty one would make every such token the
        // same caller.
        let sub = data
            .claims
            .sub
            .filter(|s| !s.trim().is_empty())
            .ok_or("the JWT has no sub, or an empty one: its caller needs a name")?;
        Ok(Caller {
            name: format!("jwt:{sub}"),
            capabilities: Some(capabilities),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own for each call: tests run in parallel.
    fn temp(name: &str, text: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mqpilot-auth-{}-{n}-{name}", std::process::id()));
        std::fs::write(&dir, text).unwrap();
        dir
    }

    #[test]
    fn static_tokens_grant_their_capabilities() {
        let path = temp(
            "tokens.toml",
            "[[token]]\nname = \"ops\"\ntoken = \"0123456789abcdef-ops\"\ncapabilities = [\"inspect\"]\n",
        );
        let auth = Authenticator::none().with_tokens_file(&path).unwrap();
        let caller = auth.authenticate(Some("Bearer 0123456789abcdef-ops")).unwrap();
        assert_eq!(caller.name, "ops");
        assert!(caller.may(Capability::Inspect));
        assert!(!caller.may(Capability::Browse));
        assert!(auth.authenticate(Some("Bearer 0123456789abcdef-opz")).is_err());
        assert!(auth.authenticate(None).is_err());
        assert!(!format!("{auth:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn short_tokens_are_refused_with_their_line() {
        let path = temp(
            "short.toml",
            "[[token]]\nname = \"x\"\ntoken = \"short\"\ncapabilities = []\n",
        );
        let e = Authenticator::none().with_tokens_file(&path).unwrap_err().to_string();
        assert!(e.contains(":3:1: token[0].token"), "{e}");
    }

    #[test]
    fn names_and_tokens_must_be_unique() {
        let entry = |name: &str, token: &str| {
            format!("[[token]]\nname = \"{name}\"\ntoken = \"{token}\"\ncapabilities = []\n\n")
        };
        let path = temp(
            "same-name.toml",
            &(entry("ops", "0123456789abcdef-one") + &entry("ops", "0123456789abcdef-two")),
        );
        let e = Authenticator::none().with_tokens_file(&path).unwrap_err().to_string();
        assert!(
            e.contains(":7:1: token[1].name") && e.contains("already the name of token[0]"),
            "{e}"
        );
        let path = temp(
            "same-token.toml",
            &(entry("ops", "0123456789abcdef-one") + &entry("dev", "0123456789abcdef-one")),
        );
        let e = Authenticator::none().with_tokens_file(&path).unwrap_err().to_string();
        assert!(
            e.contains(":8:1: token[1].token") && e.contains("same token as token[0]"),
            "{e}"
        );
        assert!(!e.contains("0123456789abcdef"), "the error shows no token: {e}");
    }
}
