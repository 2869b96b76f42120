//! End-to-end tests: a real berthd driven by berth and the docker CLI.
