//! The START driver: tool-integrated reasoning on top of the [`sandbox`] crate.
//!
//! Modules, one per concept:
//! - [`answer`]: extracting final math answers and deciding equivalence with a gold answer.
//! - [`testcase`]: extracting sample tests from code problem statements.
//! - [`compare`]: comparing program output with expected output (judging).

pub mod answer;
pub mod compare;
pub mod testcase;
