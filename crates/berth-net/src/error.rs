//! Turns this crate's error enums into [`berth_core::Error`] with the whole cause chain
//! printed once (`outer: inner: innermost`), as the API shows it to clients.

use std::error::Error as StdError;

/// `err` and each of its sources, joined with `": "`.
pub(crate) fn full_message(err: &dyn StdError) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Transparent wrappers repeat their inner message; print it once.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Implements `From<$ty> for berth_core::Error` using the type's `HasKind`.
macro_rules! into_core_error {
    ($ty:ty) => {
        impl From<$ty> for berth_core::Error {
            fn from(err: $ty) -> Self {
                use berth_core::error::HasKind;
                berth_core::Error::new(err.kind(), $crate::error::full_message(&err))
            }
        }
    };
}
pub(crate) use into_core_error;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("creating bridge br0")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn full_message_joins_the_cause_chain() {
        let err = Outer {
            source: std::io::Error::other("permission denied"),
        };
        assert_eq!(full_message(&err), "creating bridge br0: permission denied");
    }
}
