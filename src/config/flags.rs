//! `meridian agent` flags, in Consul's names. Every field is optional so a
//! flag given on the command line can be told from a default: flags win
//! over files only when given.

use std::path::PathBuf;

/// Flags of `meridian agent`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentFlags {
    /// In-memory server with the UI, on loopback, bootstrapped at once.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub dev: Option<bool>,
    /// Run as a server (default: client).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub server: Option<bool>,
    /// Single-server self-election (legacy; exclusive with -bootstrap-expect).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub bootstrap: Option<bool>,
    /// Wait for this many servers, then bootstrap.
    #[arg(long = "bootstrap-expect")]
    pub bootstrap_expect: Option<u32>,
    #[arg(long = "data-dir")]
    pub data_dir: Option<PathBuf>,
    /// Node name (default: the hostname).
    #[arg(long)]
    pub node: Option<String>,
    #[arg(long = "node-id")]
    pub node_id: Option<String>,
    /// Node metadata as key:value (repeatable).
    #[arg(long = "node-meta")]
    pub node_meta: Vec<String>,
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Cluster bind address.
    #[arg(long)]
    pub bind: Option<String>,
    #[arg(long)]
    pub advertise: Option<String>,
    /// The address advertised to other datacenters' servers.
    #[arg(long = "advertise-wan")]
    pub advertise_wan: Option<String>,
    /// HTTP and DNS bind addresses (space-separated).
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub ui: Option<bool>,
    /// A JSON or HCL config file (repeatable).
    #[arg(long = "config-file")]
    pub config_file: Vec<PathBuf>,
    /// A directory of *.json / *.hcl config files, read in lexical order (repeatable).
    #[arg(long = "config-dir")]
    pub config_dir: Vec<PathBuf>,
    #[arg(long)]
    pub domain: Option<String>,
    /// A second domain answered as `-domain` is.
    #[arg(long = "alt-domain")]
    pub alt_domain: Option<String>,
    /// Upstream DNS resolver for names outside the domain (repeatable).
    #[arg(long)]
    pub recursor: Vec<String>,
    #[arg(long = "http-port", allow_hyphen_values = true)]
    pub http_port: Option<i64>,
    /// The HTTPS API's port (-1 or unset: no HTTPS); needs tls.https's
    /// certificate.
    #[arg(long = "https-port", allow_hyphen_values = true)]
    pub https_port: Option<i64>,
    #[arg(long = "dns-port", allow_hyphen_values = true)]
    pub dns_port: Option<i64>,
    #[arg(long = "server-port", allow_hyphen_values = true)]
    pub server_port: Option<i64>,
    #[arg(long = "serf-lan-port", allow_hyphen_values = true)]
    pub serf_lan_port: Option<i64>,
    #[arg(long = "serf-wan-port", allow_hyphen_values = true)]
    pub serf_wan_port: Option<i64>,
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    /// A file to write the agent's PID to (removed at exit).
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Address to join at start (since Consul 1.15 an alias of -retry-join).
    #[arg(long)]
    pub join: Vec<String>,
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    #[arg(long = "retry-interval")]
    pub retry_interval: Option<String>,
    #[arg(long = "retry-max")]
    pub retry_max: Option<u32>,
    /// A server of another datacenter to join in the WAN pool.
    #[arg(long = "join-wan")]
    pub join_wan: Vec<String>,
    #[arg(long = "retry-join-wan")]
    pub retry_join_wan: Vec<String>,
    #[arg(long = "retry-interval-wan")]
    pub retry_interval_wan: Option<String>,
    #[arg(long = "retry-max-wan")]
    pub retry_max_wan: Option<u32>,
    /// Ignore a previous leave and rejoin the cluster.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rejoin: Option<bool>,
    /// Gossip encryption key (base64).
    #[arg(long)]
    pub encrypt: Option<String>,
    #[arg(long = "enable-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_script_checks: Option<bool>,
    #[arg(long = "enable-local-script-checks", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_local_script_checks: Option<bool>,
}

/// Rewrites Go-style flags (`-server`, `-node=n1`) to the double-dash form
/// clap parses: Consul's CLI uses Go's flag package, where one dash and two
/// are the same. `-1`, `-` (stdin) and everything after `--` stay as they are.
pub fn go_style_args(args: Vec<String>) -> Vec<String> {
    // `lock PREFIX CHILD...` and `watch ... HANDLER...`: as with Go's flag
    // package, flags end at the first argument that is not one, and what
    // follows (the child's own flags) passes through untouched.
    let positionals_before_raw = match args.get(1).map(String::as_str) {
        Some("lock") => Some(1),
        Some("watch") => Some(0),
        _ => None,
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut rest = false;
    let mut positionals = 0;
    let mut value_expected = false;
    for (i, a) in args.into_iter().enumerate() {
        if rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let b = a.as_bytes();
        let is_flag = b.len() > 1 && b[0] == b'-';
        if let (Some(n), true) = (
            positionals_before_raw,
            i >= 2 && !is_flag && !value_expected,
        ) {
            if positionals == n {
                out.push("--".into());
                out.push(a);
                rest = true;
                continue;
            }
            positionals += 1;
        }
        value_expected = is_flag && !a.contains('=') && {
            let name = a.trim_start_matches('-');
            !BOOL_FLAGS.contains(&name)
        };
        if b.len() > 2 && b[0] == b'-' && b[1].is_ascii_alphabetic() {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}

/// Flags of `lock` and `watch` that take no value (a word after them is
/// positional).
const BOOL_FLAGS: &[&str] = &[
    "pass-stdin",
    "child-exit-code",
    "verbose",
    "stale",
    "shell",
    "passingonly",
    "h",
    "help",
];

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: AgentFlags,
    }

    fn parse(args: &[&str]) -> AgentFlags {
        let mut v = vec!["meridian".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        T::try_parse_from(go_style_args(v)).expect("parses").f
    }

    #[test]
    fn lock_and_watch_children_keep_their_flags() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            go_style_args(v(&[
                "m", "lock", "-n", "2", "-verbose", "pfx", "sh", "-c", "x"
            ])),
            v(&[
                "m",
                "lock",
                "-n",
                "2",
                "--verbose",
                "pfx",
                "--",
                "sh",
                "-c",
                "x"
            ])
        );
        assert_eq!(
            go_style_args(v(&["m", "watch", "-type=key", "-key", "k", "cat", "-n"])),
            v(&["m", "watch", "--type=key", "--key", "k", "--", "cat", "-n"])
        );
        assert_eq!(
            go_style_args(v(&["m", "kv", "put", "-cas", "k", "-v"])),
            v(&["m", "kv", "put", "--cas", "k", "-v"])
        );
    }

    #[test]
    fn go_and_double_dash_forms_are_the_same() {
        let f = parse(&[
            "-server",
            "-bootstrap-expect",
            "3",
            "-node=n1",
            "--datacenter",
            "dc2",
            "-http-port",
            "-1",
            "-config-dir",
            "/etc/m",
            "-config-dir=/etc/n",
        ]);
        assert_eq!(f.server, Some(true));
        assert_eq!(f.bootstrap_expect, Some(3));
        assert_eq!(f.node.as_deref(), Some("n1"));
        assert_eq!(f.datacenter.as_deref(), Some("dc2"));
        assert_eq!(f.http_port, Some(-1));
        assert_eq!(f.config_dir.len(), 2);
        assert_eq!(f.dev, None);
    }

    #[test]
    fn booleans_take_go_style_values() {
        assert_eq!(parse(&["-server=false"]).server, Some(false));
        assert_eq!(parse(&["-dev"]).dev, Some(true));
        let f = parse(&[
            "-retry-join",
            "a",
            "-retry-join=b",
            "-join",
            "c",
            "-recursor",
            "8.8.8.8",
        ]);
        assert_eq!(f.retry_join, ["a", "b"]);
        assert_eq!(f.join, ["c"]);
        assert_eq!(f.recursor, ["8.8.8.8"]);
    }

    #[test]
    fn rewrite_leaves_values_alone() {
        let v: Vec<String> = ["kv", "put", "-cas", "-modify-index=5", "k", "-", "--", "-x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            go_style_args(v),
            [
                "kv",
                "put",
                "--cas",
                "--modify-index=5",
                "k",
                "-",
                "--",
                "-x"
            ]
        );
    }
}
