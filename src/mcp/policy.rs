//! What the MCP server lets agents do: capabilities and per-capability queue globs.
//!
//! Deny by default: a capability that is not enabled has no tools; a queue is allowed only if
//! an `allow` glob of that capability matches it and no `deny` glob does; `SYSTEM.*` queues
//! are denied unless an allow glob that itself starts with `SYSTEM.` matches (a bare `*` never
//! opens them). Every decision names the rule that made it, so a denial can say why. The
//! policy is checked before any MQ call.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;
use crate::toml_location::{field_error, parse_error};

/// What a tool needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Queue attributes, pool status, reason codes.
    Inspect,
    /// Non-destructive reads of messages.
    Browse,
    /// Destructive gets and locks.
    Consume,
    /// Puts.
    Produce,
    /// The capacity planner (no MQ access).
    Plan,
}

crate::toml_location::deserialize_one_of!(Capability {
    "inspect" => Inspect,
    "browse" => Browse,
    "consume" => Consume,
    "produce" => Produce,
    "plan" => Plan,
});

impl Capability {
    /// Every capability, in order.
    pub const ALL: [Self; 5] = [Self::Inspect, Self::Browse, Self::Consume, Self::Produce, Self::Plan];
    /// Enabled when the policy does not say.
    pub const DEFAULT: [Self; 3] = [Self::Inspect, Self::Browse, Self::Plan];

    /// The lowercase name used in files, tokens and messages.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Inspect => "inspect",
            Self::Browse => "browse",
            Self::Consume => "consume",
            Self::Produce => "produce",
            Self::Plan => "plan",
        }
    }

    /// Parses a name (`browse`), also in scope form (`mq:browse`).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let name = text.strip_prefix("mq:").unwrap_or(text);
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Limits the server enforces on top of MQ's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload `put_message` accepts (MAXMSGL still applies). Default 1 MiB.
    pub max_put_bytes: usize,
    /// Locks held at once over all callers. Default 2.
    pub max_locks: usize,
    /// Longest `lock_seconds`. Default and ceiling 300.
    pub max_lock_seconds: u32,
    /// Most messages one browse, receive or lock returns. Default and ceiling 100.
    pub max_messages: usize,
    /// Most bytes the payloads of one browse, receive or lock take in its result, as they
    /// are encoded there: each twice (structured content and its copy in the text), as
    /// escaped JSON text or base64 (see `output::text_cost`). The message that would go past
    /// it stays on the queue for the next call. Default 12 MiB, at most 15 MiB: with the
    /// other fields of 100 messages a result stays under the 16 MiB a message of rmcp's
    /// clients may be.
    pub max_result_bytes: usize,
}

/// `limits.max_result_bytes` by default.
pub const DEFAULT_RESULT_BYTES: usize = 12 * 1024 * 1024;

/// The range of `limits.max_result_bytes`: a result must hold some payload, and stay under
/// the 16 MiB line rmcp's clients read (see [`Limits::max_result_bytes`]).
pub const RESULT_BYTES: std::ops::RangeInclusive<usize> = 1024..=15 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_put_bytes: 1024 * 1024,
            max_locks: 2,
            max_lock_seconds: 300,
            max_messages: 100,
            max_result_bytes: DEFAULT_RESULT_BYTES,
        }
    }
}

/// One capability's queue rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    allow: Vec<String>,
    deny: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            allow: vec!["*".into()],
            deny: Vec::new(),
        }
    }
}

/// Why a queue was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule, e.g. `browse.deny[0] "PAYROLL.*"`.
    pub rule: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rule)
    }
}

/// The validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    enabled: BTreeSet<Capability>,
    rules: [Rules; 5],
    /// Limits.
    pub limits: Limits,
    /// Queue names `list_queues` reports when the queue manager cannot list them.
    pub queues: Vec<String>,
    origin: String,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: Capability::DEFAULT.into_iter().collect(),
            rules: Default::default(),
            limits: Limits::default(),
            queues: Vec::new(),
            origin: "the default policy".into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_put_bytes: Option<usize>,
    max_locks: Option<usize>,
    max_lock_seconds: Option<u32>,
    max_messages: Option<usize>,
    max_result_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    capabilities: Option<Vec<Capability>>,
    #[serde(default)]
    queues: Vec<String>,
    #[serde(default)]
    limits: RawLimits,
    inspect: Option<RawRules>,
    browse: Option<RawRules>,
    consume: Option<RawRules>,
    produce: Option<RawRules>,
    plan: Option<RawRules>,
}

/// Whether `name` matches `glob` (`*` any run, `?` one character; case-sensitive, as MQ
/// names are).
#[must_use]
pub fn glob_matches(glob: &str, name: &str) -> bool {
    // Linear in the lengths: on a mismatch, retry from just after the last `*` with one more
    // name byte swallowed by it (no backtracking past earlier stars is ever needed).
    let (g, n) = (glob.as_bytes(), name.as_bytes());
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match g.get(gi) {
            Some(b'*') => {
                star = Some((gi, ni));
                gi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                gi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sg, sn)) => {
                    gi = sg + 1;
                    ni = sn + 1;
                    star = Some((sg, sn + 1));
                }
                None => return false,
            },
        }
    }
    g[gi.min(g.len())..].iter().all(|&c| c == b'*')
}

const SYSTEM_PREFIX: &str = "SYSTEM.";

impl Policy {
    /// Reads and checks a policy file.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Config`] naming the file, line, column and field.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = crate::toml_location::read_text(path)?;
        Self::from_toml(&text, path)
    }

    /// Parses and checks policy TOML; `origin` names it in errors.
    ///
    /// # Errors
    /// [`Error::Config`] naming the line, column and field.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| parse_error(&e, text, origin))?;
        let bad = |field: &str, message: String| field_error(text, origin, field.to_owned(), message);
        let enabled: BTreeSet<Capability> = raw.capabilities.map_or_else(
            || Capability::DEFAULT.into_iter().collect(),
            |c| c.into_iter().collect(),
        );
        let mut rules: [Rules; 5] = Default::default();
        let raws = [raw.inspect, raw.browse, raw.consume, raw.produce, raw.plan];
        for (cap, raw_rules) in Capability::ALL.into_iter().zip(raws) {
            let r = raw_rules.unwrap_or_default();
            let needs_allow = matches!(cap, Capability::Consume | Capability::Produce);
            let allow = match r.allow {
                Some(a) => a,
                None if needs_allow && enabled.contains(&cap) => {
                    return Err(bad(
                        &format!("{cap}.allow"),
                        format!(
                            "the {cap} capability is enabled: list the queues it may touch in [{cap}] allow = [...]"
                        ),
                    ));
                }
                None => vec!["*".into()],
            };
            for (kind, list) in [("allow", &allow), ("deny", &r.deny)] {
                for (i, g) in list.iter().enumerate() {
                    if g.is_empty()
                        || g.len() > 48
                        || !g.bytes().all(|b| b.is_ascii_alphanumeric() || b"._/%*?".contains(&b))
                    {
                        return Err(bad(
                            &format!("{cap}.{kind}"),
                            format!("entry {i} {g:?} is not a queue name glob (A-Z a-z 0-9 . / _ % and * ?)"),
                        ));
                    }
                }
            }
            rules[cap as usize] = Rules { allow, deny: r.deny };
        }
        let d = Limits::default();
        let limits = Limits {
            max_put_bytes: raw.limits.max_put_bytes.unwrap_or(d.max_put_bytes),
            max_locks: raw.limits.max_locks.unwrap_or(d.max_locks),
            max_lock_seconds: raw.limits.max_lock_seconds.unwrap_or(d.max_lock_seconds),
            max_messages: raw.limits.max_messages.unwrap_or(d.max_messages),
            max_result_bytes: raw.limits.max_result_bytes.unwrap_or(d.max_result_bytes),
        };
        if limits.max_put_bytes == 0 || limits.max_put_bytes > crate::mq::session::MAX_MESSAGE_BYTES {
            return Err(bad("limits.max_put_bytes", "must be 1..=104857600".into()));
        }
        if !(1..=300).contains(&limits.max_lock_seconds) {
            return Err(bad("limits.max_lock_seconds", "must be 1..=300".into()));
        }
        if !(1..=100).contains(&limits.max_messages) {
            return Err(bad("limits.max_messages", "must be 1..=100".into()));
        }
        if !RESULT_BYTES.contains(&limits.max_result_bytes) {
            return Err(bad(
                "limits.max_result_bytes",
                format!("must be {}..={}", RESULT_BYTES.start(), RESULT_BYTES.end()),
            ));
        }
        Ok(Self {
            enabled,
            rules,
            limits,
            queues: raw.queues,
            origin: PathBuf::from(origin).display().to_string(),
        })
    }

    /// A policy with these capabilities enabled, every other setting as in a file that
    /// lists only `allow` globs (used by tests and examples).
    #[must_use]
    pub fn with(enabled: &[Capability], allow: &[&str]) -> Self {
        let rules = Rules {
            allow: allow.iter().map(|s| (*s).to_owned()).collect(),
            deny: Vec::new(),
        };
        Self {
            enabled: enabled.iter().copied().collect(),
            rules: std::array::from_fn(|_| rules.clone()),
            origin: "a built-in policy".into(),
            ..Self::default()
        }
    }

    /// Replaces one capability's deny globs.
    #[must_use]
    pub fn deny(mut self, cap: Capability, globs: &[&str]) -> Self {
        self.rules[cap as usize].deny = globs.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Whether `cap` is enabled.
    #[must_use]
    pub fn enabled(&self, cap: Capability) -> bool {
        self.enabled.contains(&cap)
    }

    /// The enabled capabilities.
    #[must_use]
    pub fn capabilities(&self) -> Vec<Capability> {
        self.enabled.iter().copied().collect()
    }

    /// Whether `cap` may touch `queue`, and if not, which rule says no.
    ///
    /// # Errors
    /// The [`Denial`] naming the rule.
    pub fn check(&self, cap: Capability, queue: &str) -> Result<(), Denial> {
        let deny = |rule: String| Err(Denial { rule });
        if !self.enabled(cap) {
            return deny(format!("capability {cap} is not enabled in {}", self.origin));
        }
        let rules = &self.rules[cap as usize];
        if let Some((i, g)) = rules.deny.iter().enumerate().find(|(_, g)| glob_matches(g, queue)) {
            return deny(format!("{cap}.deny[{i}] {g:?} in {}", self.origin));
        }
        let system = queue.starts_with(SYSTEM_PREFIX);
        let allowed = rules
            .allow
            .iter()
            .any(|g| glob_matches(g, queue) && (!system || g.starts_with(SYSTEM_PREFIX)));
        if allowed {
            Ok(())
        } else if system && rules.allow.iter().any(|g| glob_matches(g, queue)) {
            deny(format!(
                "SYSTEM.* queues are denied unless {cap}.allow names them with a SYSTEM. glob ({})",
                self.origin
            ))
        } else {
            deny(format!("no {cap}.allow glob matches it in {}", self.origin))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, Error> {
        Policy::from_toml(text, Path::new("policy.toml"))
    }

    #[test]
    fn globs_match_in_linear_time() {
        assert!(glob_matches("A*B*C", "AXXBYYC"));
        assert!(glob_matches("*.IN", "ORDERS.IN"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("**?", "A"));
        assert!(glob_matches("A?C*", "ABCDEF"));
        assert!(!glob_matches("A*", ""));
        assert!(!glob_matches("*.IN", "ORDERS.OUT"));
        assert!(!glob_matches("A*B", "AXXBX"));
        // Exponential for a backtracking matcher: returns at once here.
        let hostile = format!("{}!", "*".repeat(30));
        assert!(!glob_matches(&hostile, &"A".repeat(48)));
    }

    #[test]
    fn globs_match_like_mq_generic_names() {
        assert!(glob_matches("*", "A.B"));
        assert!(glob_matches("DEMO.*", "DEMO.IN"));
        assert!(!glob_matches("DEMO.*", "DEMO"));
        assert!(glob_matches("A?C", "ABC"));
        assert!(!glob_matches("a*", "A"));
    }

    #[test]
    fn default_enables_inspect_browse_plan_and_hides_system_queues() {
        let p = Policy::default();
        assert!(p.check(Capability::Browse, "DEMO.IN").is_ok());
        assert!(
            p.check(Capability::Consume, "DEMO.IN")
                .unwrap_err()
                .rule
                .contains("not enabled")
        );
        let d = p.check(Capability::Inspect, "SYSTEM.ADMIN.COMMAND.QUEUE").unwrap_err();
        assert!(d.rule.contains("SYSTEM.*"), "{d}");
    }

    #[test]
    fn deny_wins_and_names_the_rule() {
        let p = parse("[browse]\nallow = [\"*\"]\ndeny = [\"PAY.*\"]\n").unwrap();
        let d = p.check(Capability::Browse, "PAY.ROLL").unwrap_err();
        assert_eq!(d.rule, "browse.deny[0] \"PAY.*\" in policy.toml");
    }

    #[test]
    fn system_queues_need_a_system_glob() {
        let p = parse("[inspect]\nallow = [\"SYSTEM.DEAD.*\", \"*\"]\n").unwrap();
        assert!(p.check(Capability::Inspect, "SYSTEM.DEAD.LETTER.QUEUE").is_ok());
        assert!(p.check(Capability::Inspect, "SYSTEM.ADMIN.COMMAND.QUEUE").is_err());
    }

    #[test]
    fn consume_without_allow_list_is_an_error_with_its_line() {
        let e = parse("capabilities = [\"inspect\", \"consume\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("policy.toml:"), "{e}");
        assert!(e.contains("consume.allow"), "{e}");
    }

    #[test]
    fn unknown_keys_and_capabilities_name_line_and_field() {
        let e = parse("capabilities = [\"inspect\"]\n[browse]\nalow = [\"*\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("policy.toml:3:"), "{e}");
        let e = parse("capabilities = [\"delete\"]\n").unwrap_err().to_string();
        assert!(e.contains("policy.toml:1:"), "{e}");
        // Regression: a value of another type said "wanted string or table", not the names.
        let e = parse("capabilities = [1]\n").unwrap_err().to_string();
        assert!(
            e.contains("invalid type: integer `1`, expected `inspect`, `browse`, `consume`, `produce` or `plan`"),
            "{e}"
        );
    }

    #[test]
    fn limits_are_range_checked() {
        let e = parse("[limits]\nmax_lock_seconds = 301\n").unwrap_err().to_string();
        assert!(e.contains("policy.toml:2:1: limits.max_lock_seconds"), "{e}");
        for bad in [0, 1023, 15 * 1024 * 1024 + 1] {
            let e = parse(&format!("[limits]\nmax_result_bytes = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("limits.max_result_bytes: must be 1024..=15728640"), "{e}");
        }
        let p = parse("[limits]\nmax_result_bytes = 65536\n").expect("policy");
        assert_eq!(p.limits.max_result_bytes, 65536);
        assert_eq!(Policy::default().limits.max_result_bytes, 12 * 1024 * 1024);
    }
}
