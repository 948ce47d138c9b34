//! Service and check definitions (`service`/`services`, `check`/`checks`,
//! at the top level or inside a service): each key checked and typed, and
//! a check's kind rules (which need an interval, which need one probe)
//! enforced where the definition is read.

use super::keys::{fold, Ignored};
use super::value::At;
use super::ConfigError;
use crate::config::{CheckDefinition, DefinitionToken, ServiceDefinition};

/// Service and check definitions accept Consul's CamelCase as well: keys
/// are compared lowercased with underscores removed.
pub(super) fn parse_check(at: &At, ignored: &mut Ignored) -> Result<CheckDefinition, ConfigError> {
    let mut c = CheckDefinition::default();
    for (k, v) in at.object()? {
        let a = at.child(k, v);
        match fold(k).as_str() {
            "id" | "checkid" => c.id = a.string()?,
            "name" => c.name = a.string()?,
            "notes" => c.notes = a.string()?,
            "status" => {
                let s = a.string()?;
                if !["passing", "warning", "critical", ""].contains(&s.as_str()) {
                    return Err(a.err(format!("{s:?} is not passing, warning or critical")));
                }
                c.status = s;
            }
            "serviceid" => c.service_id = a.string()?,
            "interval" => c.interval = Some(a.duration()?),
            "timeout" => c.timeout = Some(a.duration()?),
            "ttl" => c.ttl = Some(a.duration()?),
            "http" => c.http = a.string()?,
            "method" => c.method = a.string()?,
            "header" => {
                for (hk, hv) in a.object()? {
                    c.header.insert(hk.clone(), a.child(hk, hv).strings()?);
                }
            }
            "body" => c.body = a.string()?,
            "tlsskipverify" => c.tls_skip_verify = a.boolean()?,
            "tcp" => c.tcp = a.string()?,
            "udp" => c.udp = a.string()?,
            "grpc" => c.grpc = a.string()?,
            "grpcusetls" => c.grpc_use_tls = a.boolean()?,
            "args" | "scriptargs" => c.args = a.strings()?,
            "aliasservice" => c.alias_service = a.string()?,
            "aliasnode" => c.alias_node = a.string()?,
            "deregistercriticalserviceafter" => {
                c.deregister_critical_service_after = Some(a.duration()?)
            }
            "token" => c.token = DefinitionToken(a.string()?),
            "successbeforepassing" => c.success_before_passing = a.uint()?,
            "failuresbeforewarning" => c.failures_before_warning = a.uint()?,
            "failuresbeforecritical" => c.failures_before_critical = a.uint()?,
            _ if ignored.handle(&format!("check.{k}"), &a)? => {}
            _ => return Err(a.err("unknown check key")),
        }
    }
    let needs_interval = !c.http.is_empty()
        || !c.tcp.is_empty()
        || !c.udp.is_empty()
        || !c.grpc.is_empty()
        || !c.args.is_empty();
    if needs_interval && c.interval.is_none() {
        return Err(at.err("interval is required for this check type"));
    }
    if let Err(e) = c.validate() {
        return Err(at.err(e));
    }
    if c.kind().is_empty() {
        return Err(at.err(
            "a check needs one of http, tcp, udp, grpc, args, ttl, alias_service or alias_node",
        ));
    }
    Ok(c)
}

pub(super) fn parse_service(
    at: &At,
    ignored: &mut Ignored,
) -> Result<ServiceDefinition, ConfigError> {
    let mut s = ServiceDefinition::default();
    for (k, v) in at.object()? {
        let a = at.child(k, v);
        match fold(k).as_str() {
            "id" => s.id = a.string()?,
            "name" => s.name = a.string()?,
            "tags" => s.tags = a.strings()?,
            "address" => s.address = a.string()?,
            "port" => s.port = a.uint()?,
            "meta" => s.meta = a.string_map()?,
            "enabletagoverride" => s.enable_tag_override = a.boolean()?,
            "kind" => s.kind = a.string()?,
            "taggedaddresses" => {
                for (tk, tv) in a.object()? {
                    let t = a.child(tk, tv);
                    let mut addr = crate::structs::catalog::ServiceAddress::default();
                    for (fk, fv) in t.object()? {
                        let f = t.child(fk, fv);
                        match fold(fk).as_str() {
                            "address" => addr.address = f.string()?,
                            "port" => addr.port = f.uint()?,
                            _ => return Err(f.err("unknown tagged address key")),
                        }
                    }
                    s.tagged_addresses.insert(tk.to_string(), addr);
                }
            }
            "weights" => {
                let (mut passing, mut warning) = (1, 1);
                for (wk, wv) in a.object()? {
                    let w = a.child(wk, wv);
                    match fold(wk).as_str() {
                        "passing" => passing = w.uint()?,
                        "warning" => warning = w.uint()?,
                        _ => return Err(w.err("unknown weights key")),
                    }
                }
                s.weights = Some((passing, warning));
            }
            "check" | "checks" => {
                for c in a.objects()? {
                    s.checks.push(parse_check(&c, ignored)?);
                }
            }
            "token" => s.token = DefinitionToken(a.string()?),
            _ if ignored.handle(&format!("service.{k}"), &a)? => {}
            _ => return Err(a.err("unknown service key")),
        }
    }
    if s.name.is_empty() {
        return Err(at.err("a service needs a name"));
    }
    Ok(s)
}
