//! placeholder until the table lands
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason(pub i32);
impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
