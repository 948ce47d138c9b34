//! Conventions of the agent's HTTP API that every client of it shares
//! (the CLI's client, the watch runner and the load generator). It sits
//! below all of them so that none has to borrow from another.

use std::path::{Path, PathBuf};

use thiserror::Error;

pub mod https;

pub use https::TlsArgs;

/// Percent-encodes a path or query component, keeping `/` in keys.
pub fn enc(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// The header an ACL token travels in (Consul's).
pub const TOKEN_HEADER: &str = "X-Consul-Token";

/// The environment variables a token comes from when no flag gives one,
/// in the order they are asked: Meridian's name first, then Consul's, as
/// with `MERIDIAN_HTTP_ADDR` / `CONSUL_HTTP_ADDR`.
pub const TOKEN_ENV: [&str; 2] = ["MERIDIAN_HTTP_TOKEN", "CONSUL_HTTP_TOKEN"];
pub const TOKEN_FILE_ENV: [&str; 2] = ["MERIDIAN_HTTP_TOKEN_FILE", "CONSUL_HTTP_TOKEN_FILE"];

/// `-token` and `-token-file`, the ACL token flags of every command that
/// talks to an agent (Consul's names).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TokenArgs {
    /// ACL token to use in the request (else `-token-file`,
    /// MERIDIAN_HTTP_TOKEN / CONSUL_HTTP_TOKEN, then the token files of
    /// MERIDIAN_HTTP_TOKEN_FILE / CONSUL_HTTP_TOKEN_FILE).
    #[arg(long)]
    pub token: Option<String>,
    /// File holding the ACL token (its contents, trimmed).
    #[arg(long = "token-file")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum TokenError {
    #[error("Error loading token file {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Error loading token file {path}: it is empty")]
    Empty { path: String },
    #[error("the ACL token is not a valid HTTP header value")]
    NotHeaderValue,
}

/// Default headers for a client that sends `token` with every request.
pub fn token_headers(token: Option<&str>) -> Result<reqwest::header::HeaderMap, TokenError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let value =
            reqwest::header::HeaderValue::from_str(t).map_err(|_| TokenError::NotHeaderValue)?;
        headers.insert(TOKEN_HEADER, value);
    }
    Ok(headers)
}

impl TokenArgs {
    /// The token to send, from the process environment for what the flags
    /// leave open. `None`: send no token (the agent's default applies).
    pub fn resolve(&self) -> Result<Option<String>, TokenError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// [`TokenArgs::resolve`] with the environment given, for tests.
    ///
    /// Flags beat the environment, and within each a token given directly
    /// beats a file, so an explicit `-token` is never overridden by a file
    /// named elsewhere. (Consul's `api` package lets a token file beat a
    /// token; a user who types `-token` means that token.)
    pub fn resolve_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, TokenError> {
        if let Some(t) = self.token.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(t.clone()));
        }
        if let Some(path) = &self.token_file {
            return read_token_file(path).map(Some);
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
        };
        if let Some(t) = first(&TOKEN_ENV) {
            return Ok(Some(t.trim().to_string()));
        }
        match first(&TOKEN_FILE_ENV) {
            Some(path) => read_token_file(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }
}

/// A token file's contents without surrounding whitespace (files written by
/// `echo` end in a newline). An empty file is an error rather than "no
/// token": silently falling back to the anonymous token hides the mistake.
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty { path: shown });
    }
    Ok(token.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A process environment of just `pairs`, for the variable lookups.
    pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), contents).expect("write temp file");
        f
    }

    #[test]
    fn flag_beats_file_and_environment() {
        let f = file("from-file\n");
        let a = TokenArgs {
            token: Some("from-flag".into()),
            token_file: Some(f.path().into()),
        };
        let e = env(&[("CONSUL_HTTP_TOKEN", "from-env")]);
        assert_eq!(a.resolve_with(e).unwrap().as_deref(), Some("from-flag"));
    }

    #[test]
    fn token_file_flag_is_read_and_trimmed() {
        let f = file("  s3cret \n");
        let a = TokenArgs {
            token: None,
            token_file: Some(f.path().into()),
        };
        let e = env(&[("CONSUL_HTTP_TOKEN", "from-env")]);
        assert_eq!(a.resolve_with(e).unwrap().as_deref(), Some("s3cret"));
    }

    #[test]
    fn environment_meridian_before_consul_token_before_file() {
        let f = file("from-file");
        let path = f.path().display().to_string();
        let none = TokenArgs::default();
        let both = env(&[
            ("MERIDIAN_HTTP_TOKEN", "m"),
            ("CONSUL_HTTP_TOKEN", "c"),
            ("CONSUL_HTTP_TOKEN_FILE", &path),
        ]);
        assert_eq!(none.resolve_with(both).unwrap().as_deref(), Some("m"));
        let consul = env(&[
            ("CONSUL_HTTP_TOKEN", "c"),
            ("CONSUL_HTTP_TOKEN_FILE", &path),
        ]);
        assert_eq!(none.resolve_with(consul).unwrap().as_deref(), Some("c"));
        let file_only = env(&[("MERIDIAN_HTTP_TOKEN_FILE", &path)]);
        assert_eq!(
            none.resolve_with(file_only).unwrap().as_deref(),
            Some("from-file")
        );
        assert_eq!(none.resolve_with(env(&[])).unwrap(), None);
    }

    #[test]
    fn token_headers_carry_the_token_or_nothing() {
        let h = token_headers(Some("abc")).unwrap();
        assert_eq!(
            h.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()),
            Some("abc")
        );
        assert!(token_headers(None).unwrap().is_empty());
        assert!(matches!(
            token_headers(Some("bad\nvalue")),
            Err(TokenError::NotHeaderValue)
        ));
    }

    #[test]
    fn unreadable_or_empty_file_is_an_error_naming_it() {
        let a = TokenArgs {
            token: None,
            token_file: Some("/nonexistent/meridian-token".into()),
        };
        let e = a.resolve_with(env(&[])).unwrap_err().to_string();
        assert!(
            e.starts_with("Error loading token file /nonexistent/meridian-token: "),
            "{e}"
        );
        let f = file(" \n");
        let e = TokenArgs::default()
            .resolve_with(env(&[(
                "CONSUL_HTTP_TOKEN_FILE",
                &f.path().display().to_string(),
            )]))
            .unwrap_err();
        assert!(matches!(e, TokenError::Empty { .. }), "{e}");
    }
}
