//! Where an API client reaches the agent and, over HTTPS, how it checks it:
//! `-http-addr` and Consul's TLS flags and environment variables
//! (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_SSL`, `CONSUL_HTTP_SSL_VERIFY`,
//! `CONSUL_CACERT`, `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`,
//! `CONSUL_CLIENT_KEY`, `CONSUL_TLS_SERVER_NAME`, each with a
//! `MERIDIAN_` twin asked first), shared by the CLI and the load
//! generator.

use std::path::PathBuf;

use thiserror::Error;

use crate::tls::{ApiClientTls, TlsError};

/// The agent's address when nothing names one.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8500";

pub const ADDR_ENV: [&str; 2] = ["MERIDIAN_HTTP_ADDR", "CONSUL_HTTP_ADDR"];
pub const SSL_ENV: [&str; 2] = ["MERIDIAN_HTTP_SSL", "CONSUL_HTTP_SSL"];
pub const SSL_VERIFY_ENV: [&str; 2] = ["MERIDIAN_HTTP_SSL_VERIFY", "CONSUL_HTTP_SSL_VERIFY"];
pub const CACERT_ENV: [&str; 2] = ["MERIDIAN_CACERT", "CONSUL_CACERT"];
pub const CAPATH_ENV: [&str; 2] = ["MERIDIAN_CAPATH", "CONSUL_CAPATH"];
pub const CLIENT_CERT_ENV: [&str; 2] = ["MERIDIAN_CLIENT_CERT", "CONSUL_CLIENT_CERT"];
pub const CLIENT_KEY_ENV: [&str; 2] = ["MERIDIAN_CLIENT_KEY", "CONSUL_CLIENT_KEY"];
pub const TLS_SERVER_NAME_ENV: [&str; 2] = ["MERIDIAN_TLS_SERVER_NAME", "CONSUL_TLS_SERVER_NAME"];

/// Consul's TLS flags of every command that talks to an agent.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// CA file to verify the agent's certificate with (else
    /// MERIDIAN_CACERT / CONSUL_CACERT).
    #[arg(long = "ca-file")]
    pub ca_file: Option<PathBuf>,
    /// Directory of CA certificates (else MERIDIAN_CAPATH / CONSUL_CAPATH).
    #[arg(long = "ca-path")]
    pub ca_path: Option<PathBuf>,
    /// Client certificate, for agents with verify_incoming (else
    /// MERIDIAN_CLIENT_CERT / CONSUL_CLIENT_CERT).
    #[arg(long = "client-cert")]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's key (else MERIDIAN_CLIENT_KEY /
    /// CONSUL_CLIENT_KEY).
    #[arg(long = "client-key")]
    pub client_key: Option<PathBuf>,
    /// The name the agent's certificate must carry, instead of the host
    /// of the address (else MERIDIAN_TLS_SERVER_NAME /
    /// CONSUL_TLS_SERVER_NAME).
    #[arg(long = "tls-server-name")]
    pub tls_server_name: Option<String>,
}

#[derive(Debug, Error)]
pub enum HttpsError {
    #[error("{name}: {value:?} is not a boolean")]
    NotBool { name: &'static str, value: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where to reach the agent: the base URL and, for `https`, the TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port` or `https://host:port`, no trailing slash.
    pub base: String,
    pub tls: Option<ApiClientTls>,
}

impl Target {
    /// The rustls configuration for a reqwest client
    /// (`use_preconfigured_tls`); None over plaintext.
    pub fn rustls(&self) -> Result<Option<rustls::ClientConfig>, TlsError> {
        self.tls
            .as_ref()
            .map(ApiClientTls::client_config)
            .transpose()
    }
}

/// The first of `names` set to something other than blanks.
fn first_env(
    env: &impl Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| {
        env(n)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*n, v.trim().to_string()))
    })
}

/// Go's `strconv.ParseBool`, which Consul reads these variables with.
fn go_bool(name: &'static str, value: &str) -> Result<bool, HttpsError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(HttpsError::NotBool {
            name,
            value: value.to_string(),
        }),
    }
}

impl TlsArgs {
    /// The target for `addr` (`-http-addr`; None: the environment, then
    /// the default), from the process environment for what the flags
    /// leave open.
    pub fn target(&self, addr: Option<&str>) -> Result<Target, HttpsError> {
        self.target_with(addr, |n| std::env::var(n).ok())
    }

    /// [`TlsArgs::target`] with the environment given, for tests.
    ///
    /// As Consul's client: an `https://` address or `CONSUL_HTTP_SSL=true`
    /// means HTTPS, and once TLS is asked for an `http://` address does
    /// not turn it off. Flags beat the environment.
    pub fn target_with(
        &self,
        addr: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, HttpsError> {
        let addr = addr
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .or_else(|| first_env(&env, &ADDR_ENV).map(|(_, v)| v))
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let ssl = match first_env(&env, &SSL_ENV) {
            Some((name, v)) => go_bool(name, &v)?,
            None => false,
        };
        let (https, hostport) = if let Some(rest) = addr.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = addr.strip_prefix("http://") {
            (ssl, rest)
        } else {
            (ssl, addr.as_str())
        };
        let hostport = hostport.trim_end_matches('/');
        if !https {
            return Ok(Target {
                base: format!("http://{hostport}"),
                tls: None,
            });
        }
        let verify = match first_env(&env, &SSL_VERIFY_ENV) {
            Some((name, v)) => go_bool(name, &v)?,
            None => true,
        };
        let path = |flag: &Option<PathBuf>, names: &[&'static str]| {
            flag.clone()
                .or_else(|| first_env(&env, names).map(|(_, v)| PathBuf::from(v)))
        };
        let tls = ApiClientTls {
            ca_file: path(&self.ca_file, &CACERT_ENV),
            ca_path: path(&self.ca_path, &CAPATH_ENV),
            client_cert: path(&self.client_cert, &CLIENT_CERT_ENV),
            client_key: path(&self.client_key, &CLIENT_KEY_ENV),
            server_name: self
                .tls_server_name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| first_env(&env, &TLS_SERVER_NAME_ENV).map(|(_, v)| v)),
            insecure: !verify,
        };
        Ok(Target {
            base: format!("https://{hostport}"),
            tls: Some(tls),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::tests::env;

    #[test]
    fn plain_by_default_and_https_from_the_address() {
        let none = TlsArgs::default();
        let t = none.target_with(None, env(&[])).unwrap();
        assert_eq!(
            t,
            Target {
                base: "http://127.0.0.1:8500".into(),
                tls: None
            }
        );
        let t = none
            .target_with(None, env(&[("CONSUL_HTTP_ADDR", "https://10.0.0.1:8501/")]))
            .unwrap();
        assert_eq!(t.base, "https://10.0.0.1:8501");
        assert_eq!(t.tls, Some(ApiClientTls::default()));
        // The flag's address beats the environment's.
        let t = none
            .target_with(
                Some("127.0.0.2:1"),
                env(&[("CONSUL_HTTP_ADDR", "https://x:2")]),
            )
            .unwrap();
        assert_eq!(t.base, "http://127.0.0.2:1");
    }

    #[test]
    fn http_ssl_turns_https_on_and_http_scheme_does_not_turn_it_off() {
        let a = TlsArgs::default();
        let e = env(&[
            ("CONSUL_HTTP_SSL", "true"),
            ("CONSUL_HTTP_ADDR", "http://h:1"),
        ]);
        assert_eq!(a.target_with(None, e).unwrap().base, "https://h:1");
        let e = env(&[("MERIDIAN_HTTP_SSL", "0"), ("CONSUL_HTTP_SSL", "1")]);
        assert_eq!(a.target_with(Some("h:1"), e).unwrap().base, "http://h:1");
        let e = env(&[("CONSUL_HTTP_SSL", "yes")]);
        let err = a.target_with(None, e).unwrap_err().to_string();
        assert_eq!(err, "CONSUL_HTTP_SSL: \"yes\" is not a boolean");
    }

    #[test]
    fn files_and_names_from_flags_before_environment() {
        let a = TlsArgs {
            ca_file: Some("flag-ca.pem".into()),
            tls_server_name: Some("server.dc1.consul".into()),
            ..TlsArgs::default()
        };
        let e = env(&[
            ("CONSUL_CACERT", "env-ca.pem"),
            ("CONSUL_CAPATH", "/cas"),
            ("MERIDIAN_CLIENT_CERT", "m-cert.pem"),
            ("CONSUL_CLIENT_CERT", "c-cert.pem"),
            ("CONSUL_CLIENT_KEY", "c-key.pem"),
            ("CONSUL_TLS_SERVER_NAME", "other"),
            ("CONSUL_HTTP_SSL_VERIFY", "false"),
        ]);
        let t = a.target_with(Some("https://127.0.0.1:8501"), e).unwrap();
        assert_eq!(
            t.tls,
            Some(ApiClientTls {
                ca_file: Some("flag-ca.pem".into()),
                ca_path: Some("/cas".into()),
                client_cert: Some("m-cert.pem".into()),
                client_key: Some("c-key.pem".into()),
                server_name: Some("server.dc1.consul".into()),
                insecure: true,
            })
        );
    }
}
