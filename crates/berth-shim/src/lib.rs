//! The per-container monitor: holds stdio, writes logs, reaps, records exit status.
