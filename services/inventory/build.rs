// The end-to-end tests' rule, for the PostgreSQL-only tests here: compiled as ignored unless a
// server is named.
include!("../../tests/build.rs");
