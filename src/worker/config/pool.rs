//! The connection pool's settings (`[pool]`): their defaults and their checks.
//!
//! Only the pool's own ranges are checked here; the handle budget each connection gets from
//! `max_handles` and `handle_reserve` is worked out against the queue manager's MAXHANDS when
//! the connection opens (`pool/`).

use std::time::Duration;

use super::{
    DEFAULT_RECONNECT_INITIAL_MS, DEFAULT_RECONNECT_MAX_MS, Invalid, MAX_CONNECTIONS, MAX_RECONNECT_MS, check_range,
    invalid,
};

/// Pool settings (`[pool]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections per process, 1 to 1000. Default 2.
    pub connections: usize,
    /// Configured maximum handles per connection; the budget is the smaller of this and
    /// MAXHANDS minus `handle_reserve`. At least 1. Default 256.
    pub max_handles: usize,
    /// Handles left free below MAXHANDS. Default 8.
    pub handle_reserve: usize,
    /// First reconnect delay, 1 ms to [`MAX_RECONNECT_MS`]. Default 100 ms.
    pub reconnect_initial: Duration,
    /// Largest reconnect delay, `reconnect_initial` to [`MAX_RECONNECT_MS`]. Default 30 s.
    pub reconnect_max: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            connections: 2,
            max_handles: 256,
            handle_reserve: 8,
            reconnect_initial: Duration::from_millis(DEFAULT_RECONNECT_INITIAL_MS),
            reconnect_max: Duration::from_millis(DEFAULT_RECONNECT_MAX_MS),
        }
    }
}

impl PoolSettings {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        check_range("pool.connections", self.connections, 1, Some(MAX_CONNECTIONS))?;
        check_range("pool.max_handles", self.max_handles, 1, None)?;
        check_range(
            "pool.reconnect_initial_ms",
            self.reconnect_initial.as_millis(),
            1,
            Some(u128::from(MAX_RECONNECT_MS)),
        )?;
        check_range(
            "pool.reconnect_max_ms",
            self.reconnect_max.as_millis(),
            1,
            Some(u128::from(MAX_RECONNECT_MS)),
        )?;
        if self.reconnect_max < self.reconnect_initial {
            return Err(invalid(
                "pool.reconnect_max_ms",
                format!(
                    "is {} ms, less than reconnect_initial_ms ({} ms)",
                    self.reconnect_max.as_millis(),
                    self.reconnect_initial.as_millis()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::worker::config::WorkerConfig;
    use crate::worker::config::tests::assert_error_starts;

    #[test]
    fn a_default_that_breaks_a_rule_points_at_the_table_header() {
        let text = "[[queue]]\nname = \"A\"\n\n[pool]\nreconnect_initial_ms = 60000\n";
        assert_error_starts(text, "w.toml:4:1: pool.reconnect_max_ms: is 30000 ms, less than");
    }

    #[test]
    fn reconnect_delays_are_capped_at_an_hour() {
        let text = "[pool]\nreconnect_initial_ms = 9223372036854775807\nreconnect_max_ms = 9223372036854775807\n";
        assert_error_starts(
            text,
            "w.toml:2:1: pool.reconnect_initial_ms: is 9223372036854775807, must be 1 to 3600000",
        );
        assert_error_starts(
            "[pool]\nreconnect_max_ms = 3600001\n",
            "w.toml:2:1: pool.reconnect_max_ms: is 3600001, must be 1 to 3600000",
        );
        let hour = "[pool]\nreconnect_initial_ms = 3600000\nreconnect_max_ms = 3600000\n";
        assert!(WorkerConfig::from_toml(hour, Path::new("w.toml")).is_ok());
    }
}
