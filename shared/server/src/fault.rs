//! Test-only fault points: a process started with `<SERVICE>_FAULT_POINT=<name>` aborts, as a crash
//! would, when it reaches the point of that name. Crash tests use them to stop a service exactly
//! between two steps; nothing else sets the variable.

/// Aborts the process if `variable` names `point`.
pub fn point(variable: &str, point: &str) {
    if std::env::var(variable).is_ok_and(|chosen| chosen == point) {
        tracing::error!(point, "fault point reached: aborting");
        std::process::abort();
    }
}
