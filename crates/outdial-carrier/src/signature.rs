//! `X-Twilio-Signature`: how the carrier signs every webhook it sends, so the receiver can
//! tell a real status callback from a forged one.
//!
//! The signature is `Base64(HMAC-SHA1(key = auth token, data = url + k1 + v1 + k2 + v2 …))`
//! where `url` is the exact URL requested (scheme, host, port, path and query string, as
//! given to the carrier) and the form parameters are sorted by key, then by value. The
//! scheme is Twilio's ("Webhooks security" in its docs); [`verify`] compares in constant
//! time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The HTTP header the signature travels in.
pub const HEADER: &str = "X-Twilio-Signature";

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    // HMAC accepts keys of every length (long keys are hashed first), so this cannot fail.
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (key, value) in sorted {
        mac.update(key.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The Base64 signature of a request to `url` (exact, including its query string) with the
/// decoded form parameters `params` (any order; repeated keys allowed), keyed by the
/// account's `auth_token`.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` (the `X-Twilio-Signature` header value) is the signature of `url` and
/// `params` under `auth_token`. Constant-time in the signature bytes; `false` for anything
/// that is not valid Base64.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    match STANDARD.decode(signature.trim()) {
        Ok(expected) => mac(auth_token, url, params).verify_slice(&expected).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example (docs "Webhooks security"; twilio-php's
    /// `RequestValidator` example in TwilioDevEd/api-snippets).
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const EXPECTED: &str = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

    fn params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn matches_twilios_published_example() {
        assert_eq!(sign(TOKEN, URL, &params()), EXPECTED);
        assert!(verify(TOKEN, URL, &params(), EXPECTED));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut reversed = params();
        reversed.reverse();
        assert_eq!(sign(TOKEN, URL, &reversed), EXPECTED);
    }

    #[test]
    fn repeated_keys_are_sorted_by_value() {
        let a = vec![
            ("E".to_owned(), "b".to_owned()),
            ("E".to_owned(), "a".to_owned()),
        ];
        let b = vec![
            ("E".to_owned(), "a".to_owned()),
            ("E".to_owned(), "b".to_owned()),
        ];
        assert_eq!(sign(TOKEN, URL, &a), sign(TOKEN, URL, &b));
    }

    #[test]
    fn detects_tampering() {
        let mut changed = params();
        changed[2].1 = "1235".to_owned();
        assert!(
            !verify(TOKEN, URL, &changed, EXPECTED),
            "changed parameter value"
        );

        let mut added = params();
        added.push(("CallStatus".to_owned(), "completed".to_owned()));
        assert!(!verify(TOKEN, URL, &added, EXPECTED), "added parameter");

        assert!(
            !verify(TOKEN, URL, &params()[..4], EXPECTED),
            "removed parameter"
        );
        assert!(
            !verify(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &params(),
                EXPECTED
            ),
            "changed query"
        );
        assert!(
            !verify(
                TOKEN,
                "https://mycompany.com/myapp.php",
                &params(),
                EXPECTED
            ),
            "dropped query"
        );
        assert!(!verify("12346", URL, &params(), EXPECTED), "wrong token");
        assert!(
            !verify(TOKEN, URL, &params(), "GvWf1cFY/Q7PnoempGyD5oXAezd="),
            "changed signature"
        );
        assert!(
            !verify(TOKEN, URL, &params(), "not base64!"),
            "garbage signature"
        );
        assert!(!verify(TOKEN, URL, &params(), ""), "empty signature");
    }
}
