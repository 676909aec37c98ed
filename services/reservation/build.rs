// The end-to-end tests' rule, for the PostgreSQL variants here: compiled as ignored unless a
// server is named.
include!("../../tests/build.rs");
