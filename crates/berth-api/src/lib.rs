//! The Docker Engine HTTP API over berth's services.
