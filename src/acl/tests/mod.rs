//! Unit tests of the ACL module, one file per concern.

mod parse_tests;
