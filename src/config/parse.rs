//! Settings whose text means something else: a listen address, a zone offset, a list of
//! origins (a list in the file, comma-separated in the environment).

use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;

/// `127.0.0.1:8080` → the socket address.
pub fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!(
            "listen address must look like 127.0.0.1:8080, got {text:?}"
        ))
    })
}

/// `UTC`, `Z` or `±hh:mm` → seconds east of UTC.
pub fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    offset(&String::deserialize(d)?).map_err(D::Error::custom)
}

/// A list of origins, or one text of comma-separated origins; blanks dropped.
pub fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Origins;
    impl<'de> Visitor<'de> for Origins {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of origins or comma-separated origins")
        }
        fn visit_str<E: Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(text
                .split(',')
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut origins = Vec::new();
            while let Some(origin) = seq.next_element::<String>()? {
                origins.push(origin);
            }
            Ok(origins)
        }
    }
    d.deserialize_any(Origins)
}

/// `UTC`/`Z` or `±hh:mm` → seconds east of UTC.
pub fn offset(text: &str) -> Result<i32, String> {
    let invalid = || format!("timezone must be UTC or an offset such as +02:00, got {text:?}");
    if text.eq_ignore_ascii_case("utc") || text == "Z" {
        return Ok(0);
    }
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(invalid()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(invalid)?;
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    if h > 14 || m > 59 || h.to_string().len() > 2 {
        return Err(invalid());
    }
    Ok(sign * (h * 3600 + m * 60))
}
