//! The `Health` actor: runs check definitions and reports status changes to
//! `Node`. A skeleton until the health-check issue: it accepts definitions
//! and keeps them, so the message surface is in place.

use actix::prelude::*;

use crate::config::CheckDefinition;

/// Replace the set of checks this agent runs.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetChecks(pub Vec<CheckDefinition>);

#[derive(Default)]
pub struct HealthActor {
    checks: Vec<CheckDefinition>,
}

impl Actor for HealthActor {
    type Context = Context<Self>;
}

impl Handler<SetChecks> for HealthActor {
    type Result = ();
    fn handle(&mut self, msg: SetChecks, _: &mut Context<Self>) {
        self.checks = msg.0;
        tracing::debug!(
            count = self.checks.len(),
            "health: check definitions updated (runners come with the health issue)"
        );
    }
}
