//! Unit tests of the ACL module, one file per concern: parsing
//! (`parse_tests`), compiling and deciding (`authorizer_tests`), KV
//! listing and recursive writes (`key_tests`), all/any, intentions and
//! fallbacks (`resource_tests`), a 20-policy compile (`scale_tests`),
//! explanations and refusals (`decision_tests`), builtins, identities and
//! names (`builtin_tests`), which permission each request needs
//! (`enforce_tests`). `common` holds the shared helpers.

mod authorizer_tests;
mod builtin_tests;
mod common;
mod decision_tests;
mod enforce_tests;
mod key_tests;
mod parse_tests;
mod resource_tests;
mod scale_tests;
