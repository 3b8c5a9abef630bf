//! Integration tests: production code through `mqi` against the fake queue manager.

mod fake_basics;
mod support;
