//! The providers and models the server routes to.
