//! The agent's own ACL tokens (`acl.tokens.*`), settable at run time by
//! `PUT /v1/agent/token/<type>` and, with `acl.enable_token_persistence`,
//! kept in `<data_dir>/acl-tokens.json` (Consul's file and field names),
//! whose values override the config files' at start, as in Consul.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::config::{AclTokens, RuntimeConfig};

/// Consul's file name under the data directory.
pub const TOKENS_FILE: &str = "acl-tokens.json";

/// Which of the agent's tokens `PUT /v1/agent/token/<type>` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Default,
    Agent,
    AgentRecovery,
    Replication,
    ConfigFileServiceRegistration,
    Dns,
}

impl TokenKind {
    /// The path's `<type>`, the legacy names included; `None` is Consul's
    /// 404.
    pub fn from_path(s: &str) -> Option<TokenKind> {
        Some(match s {
            "default" | "acl_token" => TokenKind::Default,
            "agent" | "acl_agent_token" => TokenKind::Agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => {
                TokenKind::AgentRecovery
            }
            "replication" | "acl_replication_token" => TokenKind::Replication,
            "config_file_service_registration" => TokenKind::ConfigFileServiceRegistration,
            "dns" => TokenKind::Dns,
            _ => return None,
        })
    }

    fn slot(self, t: &mut AclTokens) -> &mut String {
        match self {
            TokenKind::Default => &mut t.default,
            TokenKind::Agent => &mut t.agent,
            TokenKind::AgentRecovery => &mut t.agent_recovery,
            TokenKind::Replication => &mut t.replication,
            TokenKind::ConfigFileServiceRegistration => &mut t.config_file_service_registration,
            TokenKind::Dns => &mut t.dns,
        }
    }
}

/// `acl-tokens.json`: only the tokens set through the API.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    default: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    agent: String,
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        alias = "agent_master"
    )]
    agent_recovery: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    replication: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    config_file_service_registration: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    dns: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("persisting ACL tokens to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding ACL tokens: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The tokens in force, and those set through the API (what is persisted).
pub struct AgentTokens {
    current: RwLock<AclTokens>,
    from_api: RwLock<AclTokens>,
    /// Where they are persisted; `None` without persistence.
    file: Option<PathBuf>,
}

impl AgentTokens {
    /// The config's tokens, overridden by persisted ones when persistence
    /// is on (a file that cannot be read is logged and ignored, as Consul
    /// does).
    pub fn new(config: &RuntimeConfig) -> AgentTokens {
        let acl = &config.acl;
        let file = acl
            .enable_token_persistence
            .then(|| config.data_dir.as_ref().map(|d| d.join(TOKENS_FILE)))
            .flatten();
        let mut current = acl.tokens.clone();
        let mut from_api = AclTokens::default();
        if let Some(path) = &file {
            match load(path) {
                Ok(Some(p)) => {
                    for (kind, value) in p.entries() {
                        if !value.is_empty() {
                            *kind.slot(&mut current) = value.clone();
                            *kind.slot(&mut from_api) = value;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring persisted ACL tokens")
                }
            }
        }
        AgentTokens {
            current: RwLock::new(current),
            from_api: RwLock::new(from_api),
            file,
        }
    }

    pub fn get(&self) -> AclTokens {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets `kind` at once; the bytes to persist, and where, when
    /// persistence is on (written by the caller off the actor threads).
    pub fn set(
        &self,
        kind: TokenKind,
        value: String,
    ) -> Result<Option<(PathBuf, Vec<u8>)>, TokensError> {
        *kind.slot(&mut self.current.write().unwrap_or_else(|e| e.into_inner())) = value.clone();
        let mut api = self.from_api.write().unwrap_or_else(|e| e.into_inner());
        *kind.slot(&mut api) = value;
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let bytes = serde_json::to_vec_pretty(&Persisted::from(&*api))?;
        Ok(Some((path.clone(), bytes)))
    }
}

impl AgentTokens {
    /// A reload's tokens: the config's, except where the API set one
    /// (Consul's token sources: an API value wins over the files until
    /// the API clears it).
    pub fn reload(&self, config: &AclTokens) {
        let api = self.from_api.read().unwrap_or_else(|e| e.into_inner());
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut next = config.clone();
        for (kind, value) in Persisted::from(&*api).entries() {
            if !value.is_empty() {
                *kind.slot(&mut next) = value;
            }
        }
        *current = next;
    }
}

impl Persisted {
    fn entries(self) -> [(TokenKind, String); 6] {
        [
            (TokenKind::Default, self.default),
            (TokenKind::Agent, self.agent),
            (TokenKind::AgentRecovery, self.agent_recovery),
            (TokenKind::Replication, self.replication),
            (
                TokenKind::ConfigFileServiceRegistration,
                self.config_file_service_registration,
            ),
            (TokenKind::Dns, self.dns),
        ]
    }
}

impl From<&AclTokens> for Persisted {
    fn from(t: &AclTokens) -> Persisted {
        Persisted {
            default: t.default.clone(),
            agent: t.agent.clone(),
            agent_recovery: t.agent_recovery.clone(),
            replication: t.replication.clone(),
            config_file_service_registration: t.config_file_service_registration.clone(),
            dns: t.dns.clone(),
        }
    }
}

fn load(path: &Path) -> Result<Option<Persisted>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the file whole (a temporary file renamed over it), readable by
/// the agent's user only: it holds secrets.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), TokensError> {
    let err = |source| TokensError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> RuntimeConfig {
        let mut c = RuntimeConfig {
            data_dir: Some(dir.to_path_buf()),
            ..Default::default()
        };
        c.acl.enable_token_persistence = true;
        c.acl.tokens.agent = "from-config".into();
        c.acl.tokens.dns = "dns-config".into();
        c
    }

    #[test]
    fn legacy_type_names_map_to_the_new_ones_and_unknown_is_none() {
        assert_eq!(
            TokenKind::from_path("acl_agent_master_token"),
            Some(TokenKind::AgentRecovery)
        );
        assert_eq!(TokenKind::from_path("acl_token"), Some(TokenKind::Default));
        assert_eq!(TokenKind::from_path("nope"), None);
    }

    #[test]
    fn persisted_tokens_override_the_config_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let t = AgentTokens::new(&c);
        assert_eq!(t.get().agent, "from-config");
        let (path, bytes) = t
            .set(TokenKind::Agent, "from-api".into())
            .unwrap()
            .expect("persistence on");
        assert_eq!(t.get().agent, "from-api");
        write(&path, &bytes).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // Only what the API set is persisted: the config's dns token is not.
        assert!(
            text.contains("from-api") && !text.contains("dns-config"),
            "{text}"
        );
        let again = AgentTokens::new(&c);
        assert_eq!(again.get().agent, "from-api");
        assert_eq!(again.get().dns, "dns-config");
    }

    #[test]
    fn a_reload_takes_the_files_tokens_except_those_the_api_set() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.acl.enable_token_persistence = false;
        let t = AgentTokens::new(&c);
        t.set(TokenKind::Agent, "from-api".into()).unwrap();
        let mut files = c.acl.tokens.clone();
        files.agent = "new-agent".into();
        files.dns = "new-dns".into();
        t.reload(&files);
        assert_eq!(t.get().agent, "from-api");
        assert_eq!(t.get().dns, "new-dns");
    }

    #[test]
    fn without_persistence_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        c.acl.enable_token_persistence = false;
        let t = AgentTokens::new(&c);
        assert!(t.set(TokenKind::Default, "x".into()).unwrap().is_none());
        assert_eq!(t.get().default, "x");
    }
}
