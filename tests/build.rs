// Marks the build as one whose PostgreSQL tests run: `TEST_DATABASE_URL` names a server, or
// `REQUIRE_POSTGRES` demands them. Without either they are compiled as ignored, so a run without a
// database reports them as not run instead of passing them.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=REQUIRE_POSTGRES");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.trim().is_empty());
    if set("TEST_DATABASE_URL") || set("REQUIRE_POSTGRES") {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
