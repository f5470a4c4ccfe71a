//! Hint-RFT end to end: answer checks that need the symbolic (sympy) fallback, and scripted
//! trajectories for 5 math and 3 code problems through score, filter and export.

mod cli;
mod pipeline;
mod sympy;
