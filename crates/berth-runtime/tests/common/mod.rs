//! Helpers shared by the root tests: the root check and unique names.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// True when the test may run as root. Fails the test when not root, unless
/// `BERTH_SKIP_ROOT_TESTS=1` opts out, which prints a loud skip line instead.
pub fn require_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        // Straight to fd 2: the test harness captures `eprintln!` of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "!!!!!!!! SKIPPED root test `{test}`: not root and BERTH_SKIP_ROOT_TESTS=1 !!!!!!!!"
        );
        return false;
    }
    panic!("`{test}` needs root: run the tests as root, or set BERTH_SKIP_ROOT_TESTS=1 to skip root tests");
}

/// A name no other test run on this machine uses: `prefix-<pid>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}
