//! Integration tests: production code through `mqi` against the fake queue manager.

mod cli;
mod fake_basics;
mod fake_browse;
mod fake_hidden;
mod fake_limits;
mod fake_model;
mod fake_waits;
mod library;
mod mcp;
mod mcp_http;
mod message_length;
mod net;
mod net_ahead;
mod net_cli;
mod net_crash;
mod net_fuzz;
mod net_memory;
mod net_procs;
mod plan;
mod plan_golden;
mod plan_net;
mod plan_validate;
mod shutdown;
mod support;
mod worker;
mod worker_props;
