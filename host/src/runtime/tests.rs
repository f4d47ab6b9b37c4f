//! Tests of the runtime against the guest fixtures.
