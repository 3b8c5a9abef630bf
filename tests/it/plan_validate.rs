//! Validation on the fake.
