//! Enums stored as text (in Postgres, in JSON, in events): one declaration gives each its
//! list of variants, its text, parsing and display, so a status or reason is written once.

/// Implements, for a fieldless enum `$ty` whose variants are stored as `$text`:
/// `$ty::ALL` (every variant, in the order given), `as_str` (the stored text, which is also
/// the serde form when the enum derives serde with `rename_all = "snake_case"`), `FromStr`
/// (the inverse; the error names `$what` and the text) and `Display` (the text).
macro_rules! stored_text {
    ($ty:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: [$ty; [$($text),+].len()] = [$(Self::$variant),+];

            /// The stored text (also its JSON form).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), s))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use stored_text;
