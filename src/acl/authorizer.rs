//! Compiling a token's policies into an [`Authorizer`], and deciding with
//! it.
//!
//! Compiling merges first, the way Consul's `policy_merger.go` does: for
//! one rule (same keyword, same name) set by several policies, deny beats
//! write beats list beats read; the `intentions` of service rules merge on
//! their own. Then every named resource gets a [`Tree`]: exact and prefix
//! grants by name, so a decision is a map lookup for the exact rule and
//! then one lookup per distinct prefix length, longest first — the cost
//! follows the name and the rule shapes, not the number of rules.
//!
//! A decision is the deciding rule's grant, or, when no rule matches, the
//! default policy (Consul chains the policy authorizer to an allow-all or
//! deny-all one). Two Consul details carry over: a default of allow never
//! grants `acl` (nor snapshots, which need `acl:write`), and `mesh` and
//! `peering` fall back to the `operator` rule when unset.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::access::{Access, AccessLevel, DefaultPolicy, Resource};
use super::decision::{DecidedBy, Decision, RuleField};
use super::rules::{rule_keyword, NamedRules, PLAIN_ORDER};

/// Compile options, from the agent's `acl {}` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthorizerConfig {
    /// `acl.default_policy`.
    pub default_policy: DefaultPolicy,
    /// `acl.enable_key_list_policy`: KV listings need `list` (or `write`)
    /// on the prefix. Off, listings are not checked on the prefix at all.
    pub enable_key_list_policy: bool,
}

/// A rule's grant, with the explanation it gives when it decides.
#[derive(Debug, Clone)]
struct Grant {
    level: AccessLevel,
    by: DecidedBy,
}

impl Grant {
    fn decide(&self, access: Access) -> Decision {
        Decision::new(self.level.grants(access), self.by.clone())
    }
}

/// The exact and the prefix grant for one name.
#[derive(Debug, Clone, Default)]
struct Leaf {
    exact: Option<Grant>,
    prefix: Option<Grant>,
}

impl Leaf {
    /// Prefix first, as Consul walks a leaf for the all/any checks.
    fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.prefix.iter().chain(self.exact.iter())
    }
}

/// The grants of one named resource.
#[derive(Debug, Clone, Default)]
struct Tree {
    leaves: BTreeMap<String, Leaf>,
    /// The distinct lengths (bytes) of prefix rule names, longest first:
    /// the only places a prefix rule can match a name.
    prefix_lengths: Vec<usize>,
}

impl Tree {
    fn insert(&mut self, name: &str, prefix: bool, grant: Grant) {
        let leaf = self.leaves.entry(name.to_string()).or_default();
        if prefix {
            leaf.prefix = Some(grant);
            self.prefix_lengths.push(name.len());
        } else {
            leaf.exact = Some(grant);
        }
    }

    fn seal(&mut self) {
        self.prefix_lengths.sort_unstable_by(|a, b| b.cmp(a));
        self.prefix_lengths.dedup();
    }

    /// The deciding grant for `name`: its exact rule, else the longest
    /// prefix rule that `name` starts with.
    fn lookup(&self, name: &str) -> Option<&Grant> {
        if let Some(grant) = self.leaves.get(name).and_then(|l| l.exact.as_ref()) {
            return Some(grant);
        }
        self.prefix_lengths
            .iter()
            // `get` is None when the cut is inside a character; a rule name
            // (valid UTF-8) can never end there anyway.
            .filter_map(|&len| name.get(..len))
            .find_map(|p| self.leaves.get(p).and_then(|l| l.prefix.as_ref()))
    }

    /// The longest prefix rule covering `name`, exact rules ignored.
    fn longest_prefix(&self, name: &str) -> Option<&Grant> {
        self.prefix_lengths
            .iter()
            .filter_map(|&len| name.get(..len))
            .find_map(|p| self.leaves.get(p).and_then(|l| l.prefix.as_ref()))
    }

    /// The `key_prefix ""` style rule, which covers every name.
    fn catch_all(&self) -> Option<&Grant> {
        self.leaves.get("").and_then(|l| l.prefix.as_ref())
    }

    /// Every grant whose name starts with `prefix` (exact and prefix).
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.leaves
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(name, _)| name.starts_with(prefix))
            .flat_map(|(_, leaf)| leaf.grants())
    }

    fn all(&self) -> impl Iterator<Item = &Grant> {
        self.leaves.values().flat_map(Leaf::grants)
    }
}

/// The named resources with trees, in [`Authorizer::trees`] order.
const NAMED: [Resource; 8] = [
    Resource::Agent,
    Resource::Event,
    Resource::Intention,
    Resource::Key,
    Resource::Node,
    Resource::Query,
    Resource::Service,
    Resource::Session,
];

fn tree_index(resource: Resource) -> Option<usize> {
    NAMED.iter().position(|r| *r == resource)
}

fn plain_index(resource: Resource) -> Option<usize> {
    PLAIN_ORDER.iter().position(|r| *r == resource)
}

/// A token's compiled permissions. Cheap to share (`Arc` it); immutable.
#[derive(Debug, Clone)]
pub struct Authorizer {
    config: AuthorizerConfig,
    trees: [Tree; 8],
    plain: [Option<Grant>; 5],
}

/// A level and the policy that set it.
type Source = (AccessLevel, Arc<str>);

/// A named rule as merged across policies: its `policy` and its
/// `intentions` merge separately, as in Consul.
struct Merged {
    policy: Source,
    intentions: Option<Source>,
}

/// Keeps `new` when it takes precedence (ties keep the first).
fn merge_into(slot: &mut Source, level: AccessLevel, policy: &Arc<str>) {
    if level.takes_precedence_over(slot.0) {
        *slot = (level, Arc::clone(policy));
    }
}

/// Fills `slot` with `level`, or merges it in.
fn merge_option(slot: &mut Option<Source>, level: AccessLevel, policy: &Arc<str>) {
    match slot {
        Some(existing) => merge_into(existing, level, policy),
        None => *slot = Some((level, Arc::clone(policy))),
    }
}

/// Every policy's rules merged, keyed by rule: the input of the trees.
#[derive(Default)]
struct Merge<'a> {
    plain: [Option<Source>; 5],
    named: BTreeMap<(Resource, bool, &'a str), Merged>,
}

impl<'a> Merge<'a> {
    fn add(&mut self, policy: &'a NamedRules) {
        let source: Arc<str> = Arc::from(policy.name.as_str());
        for (slot, resource) in self.plain.iter_mut().zip(PLAIN_ORDER) {
            if let Some(level) = policy.rules.plain(resource) {
                merge_option(slot, level, &source);
            }
        }
        for rule in &policy.rules.rules {
            let key = (rule.resource, rule.prefix, rule.name.as_str());
            match self.named.get_mut(&key) {
                Some(m) => {
                    merge_into(&mut m.policy, rule.policy, &source);
                    if let Some(level) = rule.intentions {
                        merge_option(&mut m.intentions, level, &source);
                    }
                }
                None => {
                    let merged = Merged {
                        policy: (rule.policy, Arc::clone(&source)),
                        intentions: rule.intentions.map(|l| (l, Arc::clone(&source))),
                    };
                    self.named.insert(key, merged);
                }
            }
        }
    }
}

/// The grant a merged value gives, explained as the rule it came from.
fn grant(kind: &'static str, name: Option<&Arc<str>>, field: RuleField, source: &Source) -> Grant {
    Grant {
        level: source.0,
        by: DecidedBy::Rule {
            kind,
            name: name.cloned(),
            field,
            access: source.0,
            policy: Arc::clone(&source.1),
        },
    }
}

impl Authorizer {
    /// Compiles `policies` (a token's policies, its roles' policies and its
    /// identities' synthesized policies, already filtered to this
    /// datacenter) with the default policy and options of `config`.
    pub fn compile(policies: &[NamedRules], config: AuthorizerConfig) -> Authorizer {
        let mut merge = Merge::default();
        for policy in policies {
            merge.add(policy);
        }

        let mut trees: [Tree; 8] = Default::default();
        let intention_tree = tree_index(Resource::Intention);
        for ((resource, prefix, name), m) in &merge.named {
            let (Some(kind), Some(i)) = (rule_keyword(*resource, *prefix), tree_index(*resource))
            else {
                continue;
            };
            let rule_name: Arc<str> = Arc::from(*name);
            let policy_grant = grant(kind, Some(&rule_name), RuleField::Policy, &m.policy);
            trees[i].insert(name, *prefix, policy_grant);
            if let (Resource::Service, Some(t)) = (resource, intention_tree) {
                let intention = match &m.intentions {
                    Some(source) => grant(kind, Some(&rule_name), RuleField::Intentions, source),
                    None => {
                        // Unset intentions follow the policy: read or write
                        // give intention read, deny gives deny.
                        let derived = match m.policy.0 {
                            AccessLevel::Read | AccessLevel::Write => AccessLevel::Read,
                            AccessLevel::Deny | AccessLevel::List => AccessLevel::Deny,
                        };
                        let field = RuleField::IntentionsFromPolicy(m.policy.0);
                        let source = (derived, Arc::clone(&m.policy.1));
                        grant(kind, Some(&rule_name), field, &source)
                    }
                };
                trees[t].insert(name, *prefix, intention);
            }
        }
        for tree in &mut trees {
            tree.seal();
        }

        let plain = std::array::from_fn(|i| {
            let source = merge.plain[i].as_ref()?;
            Some(grant(
                PLAIN_ORDER[i].as_str(),
                None,
                RuleField::Policy,
                source,
            ))
        });
        Authorizer {
            config,
            trees,
            plain,
        }
    }

    pub fn config(&self) -> AuthorizerConfig {
        self.config
    }

    /// Whether `access` to `resource` named `name` is allowed, and why.
    /// `name` is ignored for single-valued resources (acl, keyring, mesh,
    /// operator, peering). Snapshots are `check(Acl, Write, "")`.
    pub fn check(&self, resource: Resource, access: Access, name: &str) -> Decision {
        if resource == Resource::Key
            && access == Access::List
            && !self.config.enable_key_list_policy
        {
            return Decision::new(true, DecidedBy::KeyListNotEnforced);
        }
        let grant = match tree_index(resource) {
            Some(i) => self.trees[i].lookup(name),
            None => self.plain_grant(resource),
        };
        match grant {
            Some(grant) => grant.decide(access),
            None => self.default_decision(resource),
        }
    }

    /// Shorthand for `check(…).allowed`.
    pub fn allowed(&self, resource: Resource, access: Access, name: &str) -> bool {
        self.check(resource, access, name).allowed
    }

    /// Whether every key under `prefix` may be written (a recursive KV
    /// delete): the longest prefix rule covering `prefix` must grant write,
    /// and no rule for a name under `prefix` may grant less. Consul's
    /// `KeyWritePrefix`.
    pub fn key_write_prefix(&self, prefix: &str) -> Decision {
        let Some(tree) = tree_index(Resource::Key).map(|i| &self.trees[i]) else {
            return self.default_decision(Resource::Key);
        };
        let base = tree.longest_prefix(prefix);
        if let Some(grant) = base.filter(|g| g.level != AccessLevel::Write) {
            return grant.decide(Access::Write);
        }
        if let Some(grant) = tree.under(prefix).find(|g| g.level != AccessLevel::Write) {
            return grant.decide(Access::Write);
        }
        match base {
            Some(grant) => grant.decide(Access::Write),
            None => self.default_decision(Resource::Key),
        }
    }

    /// Whether `access` holds for every name of a named resource: a
    /// catch-all prefix rule (`""`) must grant it and no rule may refuse it.
    /// Consul's `ServiceReadAll`, `NodeReadAll`, and `IntentionWrite("*")`.
    pub fn check_all(&self, resource: Resource, access: Access) -> Decision {
        let Some(tree) = tree_index(resource).map(|i| &self.trees[i]) else {
            return self.check(resource, access, "");
        };
        if let Some(grant) = tree.all().find(|g| !g.level.grants(access)) {
            return grant.decide(access);
        }
        match tree.catch_all() {
            Some(grant) => grant.decide(access),
            None => self.default_decision(resource),
        }
    }

    /// Whether `access` holds for at least one name of a named resource:
    /// any rule granting it will do. Consul's `ServiceWriteAny` and
    /// `IntentionRead("*")`.
    pub fn check_any(&self, resource: Resource, access: Access) -> Decision {
        let Some(tree) = tree_index(resource).map(|i| &self.trees[i]) else {
            return self.check(resource, access, "");
        };
        let granting = tree.catch_all().filter(|g| g.level.grants(access));
        if let Some(grant) = granting.or_else(|| tree.all().find(|g| g.level.grants(access))) {
            return grant.decide(access);
        }
        // A catch-all that refuses makes the refusal explicit, as in Consul.
        match tree.catch_all() {
            Some(grant) => grant.decide(access),
            None => self.default_decision(resource),
        }
    }

    /// A single-valued resource's grant; mesh and peering fall back to
    /// operator when unset, as in Consul.
    fn plain_grant(&self, resource: Resource) -> Option<&Grant> {
        let own = plain_index(resource).and_then(|i| self.plain[i].as_ref());
        match resource {
            Resource::Mesh | Resource::Peering => {
                own.or_else(|| self.plain_grant(Resource::Operator))
            }
            _ => own,
        }
    }

    fn default_decision(&self, resource: Resource) -> Decision {
        match (self.config.default_policy, resource) {
            (DefaultPolicy::Allow, Resource::Acl) => Decision::new(false, DecidedBy::AclNeedsRule),
            (policy, _) => Decision::new(
                policy == DefaultPolicy::Allow,
                DecidedBy::Default { policy },
            ),
        }
    }
}
