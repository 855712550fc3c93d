//! Bearer-token authentication and authorisation.
//!
//! With `[auth]` configured, every call to a Volta service must carry
//! `authorization: Bearer <JWT>`, signed HS256 or RS256 with the configured
//! key, unexpired, and with these claims:
//!
//! ```json
//! {"sub": "planner-7", "tenant": "acme", "roles": ["operator"],
//!  "sites": ["campus"], "exp": 1893456000}
//! ```
//!
//! - `roles`: `viewer` may validate cases, list models and forecast with
//!   them; `operator` may also schedule, backtest and train; `admin` may
//!   also delete models. Unknown roles are ignored.
//! - `tenant`: models are stored under the caller's tenant, and another
//!   tenant's models do not exist for the caller (NOT_FOUND).
//! - `sites` (optional): the case names (`name` in the case file) the
//!   caller may schedule; absent means every site.
//!
//! Without `[auth]`, callers are anonymous admins of the tenant `default`,
//! and the server listens on loopback only.

use std::sync::Arc;

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::{Request, Status};
use volta_api::status::Reason;

use crate::config::Auth;

/// What a caller may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Validate cases, list models, forecast with stored models.
    Viewer,
    /// Also schedule, run Pareto fronts and rolling horizons, backtest, train.
    Operator,
    /// Also delete models.
    Admin,
}

impl Role {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

/// The tenant of unauthenticated (loopback) deployments.
pub const DEFAULT_TENANT: &str = "default";

/// Who is calling, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject (`sub`).
    pub subject: String,
    /// The tenant whose data the caller sees.
    pub tenant: String,
    /// The highest role granted, if any.
    pub role: Option<Role>,
    /// The sites the caller may schedule; `None`: all.
    pub sites: Option<Vec<String>>,
}

impl Caller {
    /// The caller of a server without auth: an admin of [`DEFAULT_TENANT`].
    #[must_use]
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".to_owned(),
            tenant: DEFAULT_TENANT.to_owned(),
            role: Some(Role::Admin),
            sites: None,
        }
    }

    /// The caller of `request`, put there by [`Authenticator`].
    ///
    /// # Errors
    /// UNAUTHENTICATED if no caller was recorded (a service mounted without
    /// the interceptor: a wiring bug, refused rather than let through).
    pub fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .ok_or_else(|| volta_api::status::error(Reason::Unauthenticated, "no caller on the request"))
    }

    /// PERMISSION_DENIED unless the caller holds `role` (or a higher one).
    ///
    /// # Errors
    /// The missing role, named.
    pub fn require(&self, role: Role) -> Result<(), Status> {
        if self.role.is_some_and(|r| r >= role) {
            Ok(())
        } else {
            Err(volta_api::status::error(
                Reason::RoleRequired,
                format!("{} needs the role {:?} or higher", self.subject, role.name()),
            ))
        }
    }

    /// PERMISSION_DENIED unless the caller may work on `site`.
    ///
    /// # Errors
    /// The site, named.
    pub fn require_site(&self, site: &str) -> Result<(), Status> {
        match &self.sites {
            Some(sites) if !sites.iter().any(|s| s == site) => Err(volta_api::status::error(
                Reason::SiteNotGranted,
                format!(
                    "case.name: {} may not work on the site {}",
                    volta_api::status::shown(&self.subject),
                    volta_api::status::shown(site),
                ),
            )),
            Some(_) | None => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    tenant: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    sites: Option<Vec<String>>,
}

/// Checks bearer tokens and records the [`Caller`] on each request.
#[derive(Clone)]
pub struct Authenticator {
    key: Option<Arc<(DecodingKey, Validation)>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithm = self.key.as_ref().map(|k| k.1.algorithms.clone());
        f.debug_struct("Authenticator").field("algorithms", &algorithm).finish()
    }
}

impl Authenticator {
    /// No authentication: every caller is [`Caller::anonymous`].
    #[must_use]
    pub fn disabled() -> Self {
        Self { key: None }
    }

    /// From `[auth]`; `env_secret` is `VOLTA_JWT_HS256_SECRET` if set.
    ///
    /// # Errors
    /// An unreadable key file, or a PEM that is not an RSA public key.
    pub fn from_config(auth: &Auth) -> anyhow::Result<Self> {
        let (key, algorithm) = if let Some(path) = &auth.rs256_public_key_file {
            let pem = std::fs::read(path).with_context(|| format!("auth.rs256_public_key_file {}", path.display()))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .with_context(|| format!("auth.rs256_public_key_file {}: not an RSA public key", path.display()))?;
            (key, Algorithm::RS256)
        } else {
            let secret = match (&auth.hs256_secret, &auth.hs256_secret_file) {
                (Some(secret), _) => secret.clone().into_bytes(),
                (None, Some(path)) => {
                    let mut bytes =
                        std::fs::read(path).with_context(|| format!("auth.hs256_secret_file {}", path.display()))?;
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    bytes
                }
                (None, None) => anyhow::bail!("auth: no key configured"),
            };
            if secret.len() < 32 {
                anyhow::bail!("auth: the HS256 secret must be at least 32 bytes, not {}", secret.len());
            }
            (DecodingKey::from_secret(&secret), Algorithm::HS256)
        };
        let mut validation = Validation::new(algorithm);
        // `exp` is required; `nbf`, when present, is honoured too.
        validation.validate_nbf = true;
        if let Some(issuer) = &auth.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &auth.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key: Some(Arc::new((key, validation))) })
    }

    /// Whether tokens are checked.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    /// The caller a token stands for.
    ///
    /// # Errors
    /// UNAUTHENTICATED with the reason: missing, malformed, badly signed or
    /// expired token, or no tenant claim.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, Status> {
        let Some(key) = &self.key else {
            return Ok(Caller::anonymous());
        };
        let header = authorization.ok_or_else(|| {
            volta_api::status::error(Reason::Unauthenticated, "missing authorization: Bearer <token>")
        })?;
        let token = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or_else(|| {
            volta_api::status::error(Reason::Unauthenticated, "authorization must be \"Bearer <token>\"")
        })?;
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &key.0, &key.1)
            .map_err(|e| volta_api::status::error(Reason::Unauthenticated, format!("invalid token: {e}")))?;
        let claims = data.claims;
        let tenant = claims
            .tenant
            .filter(|t| !t.is_empty())
            .ok_or_else(|| volta_api::status::error(Reason::Unauthenticated, "invalid token: no tenant claim"))?;
        Ok(Caller {
            subject: claims.sub.unwrap_or_else(|| "unnamed".to_owned()),
            tenant,
            role: claims.roles.iter().filter_map(|r| Role::parse(r)).max(),
            sites: claims.sites,
        })
    }
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").map(|v| v.to_str().unwrap_or(""));
        let caller = self.caller(header)?;
        tracing::Span::current().record("subject", caller.subject.as_str());
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;
    use tonic::Code;

    use super::{Authenticator, Role};
    use crate::config::Auth;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn token(claims: &serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
    }

    fn auth() -> Authenticator {
        Authenticator::from_config(&Auth { hs256_secret: Some(SECRET.to_owned()), ..Auth::default() }).expect("auth")
    }

    #[test]
    fn a_good_token_names_tenant_role_and_sites() {
        let t = token(
            &json!({"sub": "p7", "tenant": "acme", "roles": ["viewer", "operator", "pilot"], "sites": ["campus"], "exp": 4_000_000_000_u64}),
            SECRET,
        );
        let caller = auth().caller(Some(&format!("Bearer {t}"))).expect("valid");
        assert_eq!((caller.tenant.as_str(), caller.role), ("acme", Some(Role::Operator)));
        caller.require(Role::Operator).expect("operator");
        assert_eq!(caller.require(Role::Admin).expect_err("not admin").code(), Code::PermissionDenied);
        caller.require_site("campus").expect("own site");
        assert_eq!(caller.require_site("harbour").expect_err("other").code(), Code::PermissionDenied);
    }

    #[test]
    fn bad_tokens_are_unauthenticated_with_a_reason() {
        let a = auth();
        let good = json!({"sub": "p7", "tenant": "acme", "roles": ["viewer"], "exp": 4_000_000_000_u64});
        let cases = [
            (None, "missing"),
            (Some("Basic abc".to_owned()), "Bearer"),
            (Some(format!("Bearer {}", token(&good, "another secret of at least 32 bytes!"))), "InvalidSignature"),
            (Some(format!("Bearer {}", token(&json!({"sub": "x", "tenant": "t", "exp": 1}), SECRET))), "Expired"),
            (Some(format!("Bearer {}", token(&json!({"sub": "x", "exp": 4_000_000_000_u64}), SECRET))), "tenant"),
            (
                Some(format!(
                    "Bearer {}",
                    token(
                        &json!({"sub": "x", "tenant": "t", "exp": 4_000_000_000_u64, "nbf": 3_900_000_000_u64}),
                        SECRET
                    )
                )),
                "ImmatureSignature",
            ),
        ];
        for (header, reason) in cases {
            let err = a.caller(header.as_deref()).expect_err(reason);
            assert_eq!(err.code(), Code::Unauthenticated);
            assert!(err.message().contains(reason), "{} lacks {reason}", err.message());
        }
    }

    #[test]
    fn rs256_tokens_check_against_the_public_key_issuer_and_audience() {
        let dir = tempfile::tempdir().expect("tempdir");
        let public = dir.path().join("jwt.pub.pem");
        std::fs::write(&public, include_str!("../tests/data/jwt-rs256.pub.pem")).expect("write");
        let auth = Authenticator::from_config(&Auth {
            rs256_public_key_file: Some(public),
            issuer: Some("https://login.example.org".to_owned()),
            audience: Some("volta".to_owned()),
            ..Auth::default()
        })
        .expect("rs256");
        let private = EncodingKey::from_rsa_pem(include_bytes!("../tests/data/jwt-rs256.key.pem")).expect("key");
        let sign = |claims: &serde_json::Value| {
            let header = Header::new(jsonwebtoken::Algorithm::RS256);
            format!("Bearer {}", jsonwebtoken::encode(&header, claims, &private).expect("sign"))
        };
        let mut claims = json!({"sub": "p7", "tenant": "acme", "roles": ["admin"], "exp": 4_000_000_000_u64,
            "iss": "https://login.example.org", "aud": "volta"});
        let caller = auth.caller(Some(&sign(&claims))).expect("valid");
        assert_eq!(caller.role, Some(Role::Admin));
        claims["aud"] = json!("another service");
        let err = auth.caller(Some(&sign(&claims))).expect_err("audience");
        assert!(err.message().contains("InvalidAudience"), "{}", err.message());
        // An HS256 token made with the public key as secret (the classic
        // algorithm-confusion attack) is refused.
        let forged = jsonwebtoken::encode(
            &Header::default(),
            &json!({"sub": "eve", "tenant": "acme", "roles": ["admin"], "exp": 4_000_000_000_u64}),
            &EncodingKey::from_secret(include_bytes!("../tests/data/jwt-rs256.pub.pem")),
        )
        .expect("sign");
        assert_eq!(auth.caller(Some(&format!("Bearer {forged}"))).expect_err("alg").code(), Code::Unauthenticated);
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = Authenticator::from_config(&Auth { hs256_secret: Some("short".to_owned()), ..Auth::default() })
            .expect_err("short");
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }
}
