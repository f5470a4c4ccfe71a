//! `start-grade`'s integration tests, one binary: the equivalence and extraction tables read
//! from `data/`, and the hostile-input property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod equivalence;
mod extraction;
mod hostile;
