//! `meridian maint [-enable|-disable] [-reason R] [-service ID]`: maintenance
//! mode for the node or one service; without flags, what is in maintenance.

use anyhow::{anyhow, Result};

use crate::api::enc;

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Enable maintenance mode.
    #[arg(long)]
    enable: bool,
    /// Disable maintenance mode.
    #[arg(long)]
    disable: bool,
    /// Why (shown as the check's notes).
    #[arg(long, default_value = "")]
    reason: String,
    /// A service ID instead of the whole node.
    #[arg(long)]
    service: Option<String>,
}

const NODE_MAINT: &str = "_node_maintenance";
const SERVICE_MAINT: &str = "_service_maintenance:";

pub fn run(a: Args) -> Result<i32> {
    if a.enable && a.disable {
        return Err(anyhow!("Only one of -enable or -disable may be provided"));
    }
    if !a.enable && !a.reason.is_empty() {
        return Err(anyhow!("Reason may only be provided with -enable"));
    }
    if !a.enable && !a.disable && a.service.is_some() {
        return Err(anyhow!("Service requires either -enable or -disable"));
    }
    let c = Client::new(&a.http)?;
    if !a.enable && !a.disable {
        print!(
            "{}",
            list(
                &c.get("/v1/agent/checks", &[])?,
                &c.get("/v1/agent/self", &[])?
            )
        );
        return Ok(0);
    }
    let mut q = vec![("enable", a.enable.to_string())];
    if !a.reason.is_empty() {
        q.push(("reason", a.reason.clone()));
    }
    let path = match &a.service {
        Some(id) => format!("/v1/agent/service/maintenance/{}", enc(id)),
        None => "/v1/agent/maintenance".to_string(),
    };
    c.call_ok(reqwest::Method::PUT, &path, &q, None, &[])?;
    match (&a.service, a.enable) {
        (None, true) => println!("Node entered maintenance mode"),
        (None, false) => println!("Node maintenance is now disabled"),
        (Some(id), true) => println!("Service entered maintenance mode: {id}"),
        (Some(id), false) => println!("Service maintenance is now disabled: {id}"),
    }
    Ok(0)
}

/// Consul's listing of what is in maintenance.
fn list(checks: &serde_json::Value, me: &serde_json::Value) -> String {
    let mut out = String::new();
    let Some(checks) = checks.as_object() else {
        return out;
    };
    for (id, c) in checks {
        let reason = c["Notes"].as_str().unwrap_or("");
        if id == NODE_MAINT {
            out.push_str(&format!(
                "Node:\n  Name:   {}\n  Reason: {reason}\n\n",
                me["Config"]["NodeName"].as_str().unwrap_or("")
            ));
        } else if let Some(svc) = id.strip_prefix(SERVICE_MAINT) {
            out.push_str(&format!(
                "Service:\n  ID:     {svc}\n  Reason: {reason}\n\n"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_node_and_service_maintenance() {
        let checks = serde_json::json!({
            "_node_maintenance": {"Notes": "patching"},
            "_service_maintenance:web": {"Notes": "deploy"},
            "service:web": {"Notes": ""}
        });
        let me = serde_json::json!({"Config": {"NodeName": "n1"}});
        assert_eq!(
            super::list(&checks, &me),
            "Node:\n  Name:   n1\n  Reason: patching\n\nService:\n  ID:     web\n  Reason: deploy\n\n"
        );
    }
}
