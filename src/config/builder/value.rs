//! The typed view of one value in a config file's JSON tree: [`At`] reads
//! strings, numbers, durations, addresses and lists, and every error it
//! makes names the file and the key path, so a mistake deep in a file is
//! found without searching. Value rules shared with the flags (ports,
//! `client_addr`) live here too, so a file and a flag accept the same.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use super::ConfigError;
use crate::config::duration::parse_go_duration;

fn key_err(file: &str, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        file: file.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// A typed view of one value, for error messages that name the key.
pub(super) struct At<'a> {
    pub(super) file: &'a str,
    pub(super) key: String,
    pub(super) v: &'a Value,
}

impl<'a> At<'a> {
    pub(super) fn err(&self, problem: impl Into<String>) -> ConfigError {
        key_err(self.file, &self.key, problem)
    }
    pub(super) fn child(&self, key: &str, v: &'a Value) -> At<'a> {
        let key = if self.key.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.key)
        };
        At {
            file: self.file,
            key,
            v,
        }
    }
    pub(super) fn index(&self, i: usize, v: &'a Value) -> At<'a> {
        At {
            file: self.file,
            key: format!("{}[{i}]", self.key),
            v,
        }
    }
    pub(super) fn string(&self) -> Result<String, ConfigError> {
        match self.v {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.err(format!("expected a string, got {}", kind(other)))),
        }
    }
    pub(super) fn boolean(&self) -> Result<bool, ConfigError> {
        match self.v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(self.err(format!("expected a boolean, got {}", kind(other)))),
        }
    }
    pub(super) fn int(&self) -> Result<i64, ConfigError> {
        match self.v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| self.err(format!("expected an integer, got {n}"))),
            Value::String(s) => s
                .parse()
                .map_err(|_| self.err(format!("expected an integer, got {s:?}"))),
            other => Err(self.err(format!("expected an integer, got {}", kind(other)))),
        }
    }
    pub(super) fn uint<T: TryFrom<i64>>(&self) -> Result<T, ConfigError> {
        let n = self.int()?;
        T::try_from(n).map_err(|_| self.err(format!("{n} is out of range")))
    }
    /// A port: 1..=65535, or -1 for disabled (0 binds an ephemeral port).
    pub(super) fn port(&self) -> Result<Option<u16>, ConfigError> {
        port_value(self.int()?).map_err(|p| self.err(p))
    }
    pub(super) fn duration(&self) -> Result<Duration, ConfigError> {
        parse_go_duration(&self.string()?).map_err(|e| self.err(e))
    }
    pub(super) fn ip(&self) -> Result<IpAddr, ConfigError> {
        let s = self.string()?;
        s.parse()
            .map_err(|_| self.err(format!("{s:?} is not an IP address")))
    }
    /// A list of strings; a single string is a one-element list.
    pub(super) fn strings(&self) -> Result<Vec<String>, ConfigError> {
        match self.v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| self.index(i, v).string())
                .collect(),
            other => Err(self.err(format!("expected a list of strings, got {}", kind(other)))),
        }
    }
    pub(super) fn string_map(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        self.object()?
            .map(|(k, v)| Ok((k.clone(), self.child(k, v).string()?)))
            .collect()
    }
    pub(super) fn object(
        &self,
    ) -> Result<impl Iterator<Item = (&'a String, &'a Value)>, ConfigError> {
        match self.v {
            Value::Object(m) => Ok(m.iter()),
            // HCL turns a repeated block into a list of objects; merge them.
            other => Err(self.err(format!("expected an object, got {}", kind(other)))),
        }
    }
    /// One object or a list of them (`service {}` or `services [...]`,
    /// and HCL's repeated blocks).
    pub(super) fn objects(&self) -> Result<Vec<At<'a>>, ConfigError> {
        match self.v {
            Value::Object(_) => Ok(vec![At {
                file: self.file,
                key: self.key.clone(),
                v: self.v,
            }]),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| Ok(self.index(i, v)))
                .collect(),
            other => Err(self.err(format!(
                "expected an object or a list of objects, got {}",
                kind(other)
            ))),
        }
    }
}

pub(super) fn port_value(n: i64) -> Result<Option<u16>, String> {
    match n {
        -1 => Ok(None),
        0..=65535 => Ok(Some(n as u16)),
        _ => Err(format!("port {n} is out of range (use -1 to disable)")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub(super) fn parse_client(s: &str) -> Result<Vec<IpAddr>, String> {
    let addrs: Result<Vec<IpAddr>, String> = s
        .split_whitespace()
        .map(|a| a.parse().map_err(|_| format!("{a:?} is not an IP address")))
        .collect();
    match addrs? {
        v if v.is_empty() => Err("no address given".into()),
        v => Ok(v),
    }
}
