//! `meridian acl ...`: Consul's ACL commands (`bootstrap`, `policy`,
//! `token`, `role`, `set-agent-token`) over the `/v1/acl/*` API, with
//! Consul's flags and output layout, plus Meridian's `acl explain`.
//!
//! Files: `format.rs` the pretty layouts; `input.rs` what flags turn into
//! (rules text, links, identities, IDs from unique prefixes); `output.rs`
//! printing an answer pretty or as the API's JSON; `object.rs` the
//! requests every kind of object shares (list, read, write, delete);
//! `policy.rs`, `token.rs`, `role.rs` one subcommand group each;
//! `explain.rs` the local decision.

mod explain;
mod format;
mod input;
mod object;
mod output;
mod policy;
mod role;
mod token;

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use serde_json::json;

use super::{Client, HttpArgs};

#[derive(Subcommand)]
pub enum AclCmd {
    /// Bootstraps the ACL system and prints the initial management token.
    Bootstrap(OutputArgs),
    /// Manages policies.
    Policy {
        #[command(subcommand)]
        cmd: policy::PolicyCmd,
    },
    /// Manages tokens.
    Token {
        #[command(subcommand)]
        cmd: token::TokenCmd,
    },
    /// Manages roles.
    Role {
        #[command(subcommand)]
        cmd: role::RoleCmd,
    },
    /// Sets a token the agent uses (default, agent, recovery, replication,
    /// config_file_service_registration, dns).
    #[command(name = "set-agent-token")]
    SetAgentToken(SetAgentTokenArgs),
    /// Says whether a token may do something and which rule or default
    /// decides it, without doing it (exit 0 allowed, 2 denied).
    Explain(explain::Args),
}

/// The HTTP flags plus `-format`, shared by every command that prints an
/// ACL object.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Output format: pretty or json (the API's JSON).
    #[arg(long, default_value = "pretty")]
    pub format: String,
    /// Also show the hash and Raft indexes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    pub meta: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pretty,
    Json,
}

impl OutputArgs {
    pub fn format(&self) -> Result<Format> {
        match self.format.as_str() {
            "pretty" => Ok(Format::Pretty),
            "json" => Ok(Format::Json),
            other => bail!("Invalid format {other:?}: must be one of pretty, json"),
        }
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(&self.http)
    }
}

#[derive(Debug, clap::Args)]
pub struct SetAgentTokenArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The token's type: default, agent, recovery (formerly master),
    /// replication, config_file_service_registration or dns.
    kind: String,
    /// The token's secret.
    secret: String,
}

pub fn run(cmd: AclCmd) -> Result<i32> {
    match cmd {
        AclCmd::Bootstrap(o) => bootstrap(o),
        AclCmd::Policy { cmd } => policy::run(cmd),
        AclCmd::Token { cmd } => token::run(cmd),
        AclCmd::Role { cmd } => role::run(cmd),
        AclCmd::SetAgentToken(a) => set_agent_token(a),
        AclCmd::Explain(a) => explain::run(a),
    }
}

fn bootstrap(o: OutputArgs) -> Result<i32> {
    let format = o.format()?;
    let reply = o
        .client()?
        .call_ok(reqwest::Method::PUT, "/v1/acl/bootstrap", &[], None, &[])
        .map_err(|e| anyhow!("Failed ACL bootstrapping: {e}"))?;
    let token = output::Answer::from_reply(reply)?;
    output::print(&token, input::Kind::Token, format, o.meta)
}

/// The endpoint (`PUT /v1/agent/token/<type>`) for a token type as
/// Consul's CLI names it: `recovery` was `master` / `agent_master` before
/// Consul 1.11, and both names still work.
fn agent_token_endpoint(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "default" => "default",
        "agent" => "agent",
        "recovery" | "agent_recovery" | "master" | "agent_master" => "agent_recovery",
        "replication" => "replication",
        "config_file_service_registration" => "config_file_service_registration",
        "dns" => "dns",
        _ => return None,
    })
}

fn set_agent_token(a: SetAgentTokenArgs) -> Result<i32> {
    let endpoint = agent_token_endpoint(&a.kind).ok_or_else(|| {
        anyhow!(
            "Unknown token type {:?}: one of default, agent, recovery, replication, \
             config_file_service_registration, dns",
            a.kind
        )
    })?;
    let body = serde_json::to_vec(&json!({ "Token": a.secret }))?;
    Client::new(&a.http)?
        .call_ok(
            reqwest::Method::PUT,
            &format!("/v1/agent/token/{endpoint}"),
            &[],
            Some(body),
            &[],
        )
        .map_err(|e| anyhow!("Failed to set ACL token {:?}: {e}", a.kind))?;
    println!("ACL token {:?} set successfully", a.kind);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::agent_token_endpoint;

    #[test]
    fn agent_token_types_map_to_consuls_endpoints() {
        assert_eq!(agent_token_endpoint("recovery"), Some("agent_recovery"));
        assert_eq!(agent_token_endpoint("master"), Some("agent_recovery"));
        assert_eq!(agent_token_endpoint("dns"), Some("dns"));
        assert_eq!(agent_token_endpoint("bogus"), None);
    }
}
