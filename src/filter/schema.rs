//! The fields a filter may name, per element type, with Consul's names and
//! the kinds that decide which operators a field takes and how a value is
//! read (go-bexpr derives the same from the Go structs by reflection).
//!
//! Each schema mirrors the JSON shape the endpoint serializes; the tests at
//! the bottom hold them to the crate's row types so that a field added to a
//! row and not here fails a test rather than a user's filter.

/// What a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Int,
    Uint,
    Bool,
    /// A list; a selector that goes on past it matches when any element does.
    List(&'static Kind),
    /// A map with string keys; the next selector segment is a key.
    Map(&'static Kind),
    Struct(&'static [(&'static str, Kind)]),
    /// Free-form JSON (a check's `Definition`): any selector below it, and
    /// each value read by the JSON type found there.
    Any,
}

/// The fields of one element type.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub(crate) fields: &'static [(&'static str, Kind)],
}

use Kind::*;

const STR_MAP: Kind = Map(&Str);
const STR_LIST: Kind = List(&Str);
const WEIGHTS: Kind = Struct(&[("Passing", Int), ("Warning", Int)]);
/// A service's tagged address (`lan`, `wan_ipv4`, ...): Consul's
/// `ServiceAddress`.
const SERVICE_ADDRESSES: Kind = Map(&Struct(&[("Address", Str), ("Port", Int)]));

const NODE_FIELDS: &[(&str, Kind)] = &[
    ("ID", Str),
    ("Node", Str),
    ("Address", Str),
    ("Datacenter", Str),
    ("TaggedAddresses", STR_MAP),
    ("Meta", STR_MAP),
    ("CreateIndex", Uint),
    ("ModifyIndex", Uint),
];

const NODE_SERVICE_FIELDS: &[(&str, Kind)] = &[
    ("ID", Str),
    ("Service", Str),
    ("Tags", STR_LIST),
    ("Address", Str),
    ("TaggedAddresses", SERVICE_ADDRESSES),
    ("Meta", STR_MAP),
    ("Port", Int),
    ("Weights", WEIGHTS),
    ("EnableTagOverride", Bool),
    ("Kind", Str),
    ("CreateIndex", Uint),
    ("ModifyIndex", Uint),
];

const HEALTH_CHECK_FIELDS: &[(&str, Kind)] = &[
    ("Node", Str),
    ("CheckID", Str),
    ("Name", Str),
    ("Status", Str),
    ("Notes", Str),
    ("Output", Str),
    ("ServiceID", Str),
    ("ServiceName", Str),
    ("ServiceTags", STR_LIST),
    ("Type", Str),
    ("Definition", Any),
    ("CreateIndex", Uint),
    ("ModifyIndex", Uint),
];

/// `/v1/catalog/nodes`: Consul's `Node`.
pub const NODE: Schema = Schema {
    fields: NODE_FIELDS,
};

/// `/v1/catalog/service/<s>` and, before grouping by name,
/// `/v1/catalog/services`: Consul's `ServiceNode`.
pub const SERVICE_NODE: Schema = Schema {
    fields: &[
        ("ID", Str),
        ("Node", Str),
        ("Address", Str),
        ("Datacenter", Str),
        ("TaggedAddresses", STR_MAP),
        ("NodeMeta", STR_MAP),
        ("ServiceKind", Str),
        ("ServiceID", Str),
        ("ServiceName", Str),
        ("ServiceTags", STR_LIST),
        ("ServiceAddress", Str),
        ("ServiceTaggedAddresses", SERVICE_ADDRESSES),
        ("ServiceWeights", WEIGHTS),
        ("ServiceMeta", STR_MAP),
        ("ServicePort", Int),
        ("ServiceEnableTagOverride", Bool),
        ("CreateIndex", Uint),
        ("ModifyIndex", Uint),
    ],
};

/// The services of `/v1/catalog/node/<n>` and
/// `/v1/catalog/node-services/<n>`: Consul's `NodeService`.
pub const NODE_SERVICE: Schema = Schema {
    fields: NODE_SERVICE_FIELDS,
};

/// `/v1/health/node|checks|state/...` and the values of
/// `/v1/agent/checks`: Consul's `HealthCheck`.
pub const HEALTH_CHECK: Schema = Schema {
    fields: HEALTH_CHECK_FIELDS,
};

/// `/v1/health/service/<s>`: Consul's `CheckServiceNode`.
pub const CHECK_SERVICE_NODE: Schema = Schema {
    fields: &[
        ("Node", Struct(NODE_FIELDS)),
        ("Service", Struct(NODE_SERVICE_FIELDS)),
        ("Checks", List(&Struct(HEALTH_CHECK_FIELDS))),
    ],
};

/// The values of `/v1/agent/services`: Consul's `AgentService`.
pub const AGENT_SERVICE: Schema = Schema {
    fields: &[
        ("ID", Str),
        ("Service", Str),
        ("Tags", STR_LIST),
        ("Meta", STR_MAP),
        ("Port", Int),
        ("Address", Str),
        ("TaggedAddresses", SERVICE_ADDRESSES),
        ("Weights", WEIGHTS),
        ("EnableTagOverride", Bool),
        ("Kind", Str),
        ("Datacenter", Str),
    ],
};

/// `/v1/agent/members`: Consul's `api.AgentMember`.
pub const AGENT_MEMBER: Schema = Schema {
    fields: &[
        ("Name", Str),
        ("Addr", Str),
        ("Port", Uint),
        ("Tags", STR_MAP),
        ("Status", Int),
        ("ProtocolMin", Uint),
        ("ProtocolMax", Uint),
        ("ProtocolCur", Uint),
        ("DelegateMin", Uint),
        ("DelegateMax", Uint),
        ("DelegateCur", Uint),
    ],
};

impl Schema {
    /// The kind a selector ends on, or the longest prefix that names
    /// nothing (go-bexpr reports that prefix).
    pub(crate) fn resolve(&self, path: &[String]) -> Result<Kind, usize> {
        let mut kind = Struct(self.fields);
        for (i, seg) in path.iter().enumerate() {
            // Through a list: an index picks one element; a name applies
            // to every element.
            if let List(elem) = kind {
                if seg.parse::<usize>().is_ok() {
                    kind = *elem;
                    continue;
                }
                kind = *elem;
            }
            kind = match kind {
                Struct(fields) => match fields.iter().find(|(name, _)| name == seg) {
                    Some((_, k)) => *k,
                    None => return Err(i + 1),
                },
                Map(value) => *value,
                Any => Any,
                _ => return Err(i + 1),
            };
        }
        Ok(kind)
    }

    /// The top-level field names, for the drift tests.
    #[cfg(test)]
    pub fn field_names(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().map(|(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::structs::catalog::{CheckServiceNode, HealthCheck, Node, NodeService, ServiceNode};

    fn keys<T: serde::Serialize>(v: &T) -> BTreeSet<String> {
        match serde_json::to_value(v).unwrap() {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    fn names(s: &Schema) -> BTreeSet<String> {
        s.field_names().map(str::to_string).collect()
    }

    #[test]
    fn each_schema_names_exactly_the_fields_its_row_serializes() {
        let node = Node::default();
        let svc = NodeService::default();
        let check = HealthCheck::default();
        assert_eq!(names(&NODE), keys(&node));
        assert_eq!(names(&NODE_SERVICE), keys(&svc));
        assert_eq!(names(&HEALTH_CHECK), keys(&check));
        assert_eq!(names(&SERVICE_NODE), keys(&ServiceNode::new(&node, &svc)));
        let csn = CheckServiceNode {
            node,
            service: svc,
            checks: vec![check],
        };
        assert_eq!(names(&CHECK_SERVICE_NODE), keys(&csn));
    }

    #[test]
    fn selectors_resolve_through_structs_maps_and_lists() {
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Node.Meta.env")),
            Ok(Str)
        ));
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Checks.Status")),
            Ok(Str)
        ));
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Checks.0.Status")),
            Ok(Str)
        ));
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Checks")),
            Ok(List(_))
        ));
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Service.TaggedAddresses.lan.Port")),
            Ok(Int)
        ));
        assert!(matches!(
            CHECK_SERVICE_NODE.resolve(&p("Checks.Definition.HTTP")),
            Ok(Any)
        ));
        assert_eq!(CHECK_SERVICE_NODE.resolve(&p("Nodes.Meta")).unwrap_err(), 1);
        assert_eq!(
            CHECK_SERVICE_NODE.resolve(&p("Service.Nope")).unwrap_err(),
            2
        );
        assert_eq!(SERVICE_NODE.resolve(&p("ServiceName.x")).unwrap_err(), 2);
        assert_eq!(SERVICE_NODE.resolve(&p("ServiceTags.x")).unwrap_err(), 2);
    }
}
