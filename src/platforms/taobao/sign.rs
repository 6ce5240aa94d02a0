//! TOP request signatures.
//!
//! Every parameter but `sign` with a non-empty key and value, sorted by key
//! (byte order), concatenated as `key + value`: `md5` hashes
//! `secret + s + secret`, `hmac` is HMAC-MD5 and `hmac-sha256` HMAC-SHA256
//! keyed with the secret; the digest in upper-case hex.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

pub use crate::config::SignMethod;

/// The `sign_method` parameter's value for `method`.
pub fn method_name(method: SignMethod) -> &'static str {
    match method {
        SignMethod::Md5 => "md5",
        SignMethod::Hmac => "hmac",
        SignMethod::HmacSha256 => "hmac-sha256",
    }
}

/// The method a `sign_method` parameter names.
pub fn parse_method(name: &str) -> Option<SignMethod> {
    match name {
        "md5" => Some(SignMethod::Md5),
        "hmac" => Some(SignMethod::Hmac),
        "hmac-sha256" => Some(SignMethod::HmacSha256),
        _ => None,
    }
}

/// Signs `params` (system and business parameters together; a `sign` entry
/// among them is ignored) with `secret`.
pub fn sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret: &str, method: SignMethod) -> String {
    let mut pairs: Vec<(&str, &str)> =
        params.into_iter().filter(|(key, value)| !key.is_empty() && !value.is_empty() && *key != "sign").collect();
    pairs.sort_unstable();
    let mut joined = String::new();
    for (key, value) in pairs {
        joined.push_str(key);
        joined.push_str(value);
    }
    let digest = match method {
        SignMethod::Md5 => {
            let mut hasher = Md5::new();
            hasher.update(secret.as_bytes());
            hasher.update(joined.as_bytes());
            hasher.update(secret.as_bytes());
            hasher.finalize().to_vec()
        }
        SignMethod::Hmac => keyed::<Hmac<Md5>>(secret, &joined),
        SignMethod::HmacSha256 => keyed::<Hmac<Sha256>>(secret, &joined),
    };
    hex::encode_upper(digest)
}

fn keyed<M: Mac + KeyInit>(secret: &str, message: &str) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM_SELLER_GET: [(&str, &str); 8] = [
        ("method", "taobao.item.seller.get"),
        ("app_key", "12345678"),
        ("session", "test"),
        ("timestamp", "2016-01-01 12:00:00"),
        ("format", "json"),
        ("v", "2.0"),
        ("sign_method", "md5"),
        ("fields", "num_iid,title,nick,price,num"),
    ];

    fn item_seller_get() -> Vec<(&'static str, &'static str)> {
        let mut params = ITEM_SELLER_GET.to_vec();
        params.push(("num_iid", "11223344"));
        params
    }

    #[test]
    fn md5_matches_the_public_vectors() {
        assert_eq!(sign(item_seller_get(), "helloworld", SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
        let user_seller_get = [
            ("method", "taobao.user.seller.get"),
            ("timestamp", "2013-05-06 13:52:03"),
            ("format", "xml"),
            ("app_key", "test"),
            ("v", "2.0"),
            ("fields", "nick"),
            ("sign_method", "md5"),
            ("session", "test"),
        ];
        assert_eq!(sign(user_seller_get, "test", SignMethod::Md5), "72CB4D809B375A54502C09360D879C64");
    }

    #[test]
    fn empty_values_and_the_sign_itself_are_left_out() {
        let mut params = item_seller_get();
        params.push(("buyer_nick", ""));
        params.push(("sign", "ANYTHING"));
        assert_eq!(sign(params, "helloworld", SignMethod::Md5), "66987CB115214E59E6EC978214934FB8");
    }

    #[test]
    fn hmac_methods_key_the_digest_with_the_secret() {
        // HMAC-MD5 and HMAC-SHA256 of "ab" keyed "k", checked with
        // `printf ab | openssl dgst -md5 -hmac k` and `-sha256`.
        let params = [("a", "b")];
        assert_eq!(sign(params, "k", SignMethod::Hmac), "3C09015047ADCF83A96F5FDFA75FDE59");
        assert_eq!(
            sign(params, "k", SignMethod::HmacSha256),
            "7475BB119FE9B74CC0AF5014A49D80AB23BD1AC82987E7696CDC242288654436"
        );
    }
}
