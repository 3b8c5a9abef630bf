//! The 2025-11-25 sessions of the HTTP endpoint: how many are open, and whose each is.
//!
//! rmcp holds the sessions; this records which caller opened each, before the answer that
//! reveals its id is returned. An `initialize` past the caps is refused before rmcp creates
//! a session (503 for all sessions, 429 for one caller's), and a session serves only the
//! caller that opened it: to any other, its id is as unknown as one never issued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::http::refuse_for_now;

/// The header naming a 2025-11-25 session.
pub(super) const SESSION_HEADER: &str = "mcp-session-id";

/// The 2025-11-25 sessions rmcp holds, and which caller opened each: an `initialize` past
/// the limits is refused before rmcp creates a session for it, and a session serves only
/// the caller that opened it.
pub(super) struct Sessions {
    pub(super) rmcp: Arc<LocalSessionManager>,
    pub(super) max: usize,
    pub(super) max_per_caller: usize,
    /// Held while a session is being opened, so that check, create and record happen
    /// together.
    pub(super) opening: tokio::sync::Mutex<()>,
    /// Session id to the caller that opened it. An id is recorded before the answer that
    /// reveals it is returned.
    pub(super) owners: Mutex<HashMap<String, String>>,
}

impl Sessions {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `caller` opened the session `id`. A session this gate did not see opened
    /// belongs to nobody.
    pub(super) fn opened_by(&self, id: &str, caller: &str) -> bool {
        self.owners().get(id).is_some_and(|owner| owner == caller)
    }

    /// Opens a session for `caller` with `req` (an `initialize`), unless that would pass a
    /// limit: 503 for all sessions, 429 for the caller's.
    pub(super) async fn open(&self, caller: &str, next: Next, req: Request) -> Response {
        let _opening = self.opening.lock().await;
        if let Some(refused) = self.refusal(caller).await {
            return refused;
        }
        let response = next.run(req).await;
        if let Some(id) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            self.owners().insert(id.to_owned(), caller.to_owned());
        }
        response
    }

    /// Why `caller` may not open another session, if a limit says so. Forgets the owners
    /// of sessions rmcp no longer holds (closed or expired) first.
    async fn refusal(&self, caller: &str) -> Option<Response> {
        let live = self.rmcp.sessions.read().await;
        let held = {
            let mut owners = self.owners();
            owners.retain(|id, _| live.contains_key(id.as_str()));
            owners.values().filter(|c| *c == caller).count()
        };
        let (status, message) = if live.len() >= self.max {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{} MCP sessions are open (--max-sessions)", self.max),
            )
        } else if held >= self.max_per_caller {
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this caller holds {} MCP sessions (--max-sessions-per-caller)",
                    self.max_per_caller
                ),
            )
        } else {
            return None;
        };
        Some(refuse_for_now(
            status,
            &format!(
                "{message}: close one (DELETE /mcp with its Mcp-Session-Id) or wait for an idle one to expire; protocol 2026-07-28 clients need no session"
            ),
            "5",
        ))
    }
}
