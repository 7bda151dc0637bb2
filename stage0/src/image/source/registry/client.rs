//! HTTP to one registry: scheme choice (HTTPS, plain HTTP only where
//! allowed), auth challenges, bounded retries of transient failures.

use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::Body;

use super::auth::{parse_challenge, Challenge, Credentials};
use crate::image::{ImageError, Result};

/// Attempts for a request that fails transiently (5xx, 429, reset).
pub const ATTEMPTS: u32 = 3;

pub struct Client {
    agent: ureq::Agent,
    /// `HOST[:PORT]` to connect to.
    host: String,
    /// The registry's name as users write it (for messages and auth files).
    registry: String,
    repository: String,
    allow_http: bool,
    /// `https` or `http`, once a first request has worked.
    scheme: Mutex<Option<&'static str>>,
    creds: Option<Credentials>,
    /// The `Authorization` value that last worked (bearer token or basic).
    authorization: Mutex<Option<String>>,
}

pub(crate) fn agent() -> ureq::Agent {
    let tls = TlsConfig::builder().root_certs(RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

impl Client {
    pub fn new(host: &str, registry: &str, repository: &str, allow_http: bool, creds: Option<Credentials>) -> Client {
        Client {
            agent: agent(),
            host: host.to_string(),
            registry: registry.to_string(),
            repository: repository.to_string(),
            allow_http,
            scheme: Mutex::new(None),
            creds,
            authorization: Mutex::new(None),
        }
    }

    /// `registry` and, when it differs, the host actually contacted.
    fn endpoint(&self) -> String {
        if self.host == self.registry {
            self.host.clone()
        } else {
            format!("{} ({})", self.registry, self.host)
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn schemes(&self) -> Vec<&'static str> {
        match *self.scheme.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(s) => vec![s],
            None if self.allow_http => vec!["https", "http"],
            None => vec!["https"],
        }
    }

    fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        range: Option<u64>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        if let Some(from) = range {
            req = req.header("Range", format!("bytes={from}-"));
        }
        if let Some(auth) = self.authorization.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            req = req.header("Authorization", auth);
        }
        req.call()
    }

    /// GETs `/v2/<repository>/<path>`. `what` names the object for errors
    /// (e.g. `manifest busybox:latest`). `range` asks for the bytes from an
    /// offset on (used to resume a blob).
    pub fn get(&self, path: &str, accept: Option<&str>, range: Option<u64>, what: &str) -> Result<Response<Body>> {
        let mut last_err = String::new();
        let mut authed = false;
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            attempt += 1;
            let mut connected = false;
            for scheme in self.schemes() {
                let url = format!("{scheme}://{}/v2/{}/{path}", self.host, self.repository);
                let resp = match self.send(&url, accept, range) {
                    Ok(r) => r,
                    Err(e) => {
                        let text = e.to_string();
                        crate::debug!("registry {}: {scheme}: {text}", self.endpoint());
                        // An untrusted certificate is an answer, not an
                        // outage: never retry it over plain HTTP.
                        if scheme == "https" && text.contains("certificate") {
                            return Err(ImageError::Invalid(format!(
                                "the TLS certificate of registry {} is not trusted ({text}): add its CA to the \
                                 system's roots, or point SSL_CERT_FILE at a bundle holding it",
                                self.endpoint()
                            )));
                        }
                        last_err = format!("cannot reach registry {}: {text}", self.endpoint());
                        continue;
                    }
                };
                connected = true;
                *self.scheme.lock().unwrap_or_else(|p| p.into_inner()) = Some(scheme);
                let status = resp.status();
                if status.is_success() {
                    return Ok(resp);
                }
                if status == StatusCode::UNAUTHORIZED && !authed {
                    authed = true;
                    self.authenticate(&resp, scheme)?;
                    attempt -= 1;
                    break;
                }
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(ImageError::Invalid(format!(
                        "registry {} refused access to {what} (HTTP {}): {}",
                        self.registry,
                        status.as_u16(),
                        if self.creds.is_some() {
                            "check the credentials for it in your auth file".to_string()
                        } else {
                            format!(
                                "log in by adding credentials for {} to auth.json (--authfile or REGISTRY_AUTH_FILE)",
                                self.registry
                            )
                        }
                    )));
                }
                if status == StatusCode::NOT_FOUND {
                    return Err(ImageError::NotInRegistry { what: what.to_string(), registry: self.registry.clone() });
                }
                last_err = format!("registry {} answered HTTP {} for {what}", self.registry, status.as_u16());
                if !is_transient(status) {
                    return Err(ImageError::Invalid(last_err));
                }
                break;
            }
            if !connected && attempt >= ATTEMPTS {
                break;
            }
            if attempt < ATTEMPTS {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
        }
        Err(ImageError::Invalid(format!("{last_err} (after {ATTEMPTS} attempts)")))
    }

    /// Answers a 401: basic auth with stored credentials, or a bearer token
    /// from the challenge's realm (sending the credentials there, if any).
    fn authenticate(&self, resp: &Response<Body>, scheme: &str) -> Result<()> {
        let header = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("");
        let value = match parse_challenge(header) {
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic_header(),
                None => {
                    return Err(ImageError::Invalid(format!(
                    "registry {} needs credentials: add them for {} to auth.json (--authfile or REGISTRY_AUTH_FILE)",
                    self.registry, self.registry
                )))
                }
            },
            Some(Challenge::Bearer { realm, service, scope }) => {
                self.token(&realm, service.as_deref(), scope.as_deref())?
            }
            None => {
                return Err(ImageError::Invalid(format!(
                    "registry {} ({scheme}) asked for authentication it did not describe ({header:?})",
                    self.registry
                )))
            }
        };
        *self.authorization.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(())
    }

    fn token(&self, realm: &str, service: Option<&str>, scope: Option<&str>) -> Result<String> {
        let default_scope = format!("repository:{}:pull", self.repository);
        let mut req = self.agent.get(realm).query("scope", scope.unwrap_or(&default_scope));
        if let Some(s) = service {
            req = req.query("service", s);
        }
        if let Some(c) = &self.creds {
            req = req.header("Authorization", c.basic_header());
        }
        let mut resp = req.call().map_err(|e| {
            ImageError::Invalid(format!("cannot get a token for registry {} from {realm}: {e}", self.registry))
        })?;
        if !resp.status().is_success() {
            return Err(ImageError::Invalid(format!(
                "the token service {realm} of registry {} refused (HTTP {}): check your credentials for it",
                self.registry,
                resp.status().as_u16()
            )));
        }
        let body = resp
            .body_mut()
            .read_to_vec()
            .map_err(|e| ImageError::Invalid(format!("cannot read the token from {realm}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ImageError::Invalid(format!("the token service {realm} answered invalid JSON: {e}")))?;
        let token = v["token"]
            .as_str()
            .or(v["access_token"].as_str())
            .ok_or_else(|| ImageError::Invalid(format!("the token service {realm} answered without a token")))?;
        Ok(format!("Bearer {token}"))
    }
}
