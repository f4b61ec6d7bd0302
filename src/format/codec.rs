//! MessagePack encoding of attribute values and flash messages.
//!
//! Structs are encoded as maps keyed by field name (`to_vec_named`), not as positional arrays,
//! so adding a field to a struct (with `#[serde(default)]`) does not break sessions already in
//! Redis. Values are decoded only when the application asks for them, so one corrupt attribute
//! costs an error for that attribute alone.

use std::io::Cursor;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Encodes one value for attribute `name`.
pub(crate) fn encode<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(value)
        .map_err(|source| Error::Encode { attribute: name.to_owned(), source })
}

/// Decodes the value stored for attribute `name`.
pub(crate) fn decode<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes)
        .map_err(|source| Error::Decode { attribute: name.to_owned(), source })
}

/// Decodes a run of concatenated MessagePack values (the pending flash messages).
pub(crate) fn decode_all<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<Vec<T>> {
    let mut cursor = Cursor::new(bytes);
    let mut values = Vec::new();
    while (cursor.position() as usize) < bytes.len() {
        let value = rmp_serde::from_read(&mut cursor)
            .map_err(|source| Error::Decode { attribute: name.to_owned(), source })?;
        values.push(value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Old {
        id: u32,
    }

    #[derive(serde::Deserialize, PartialEq, Debug)]
    struct New {
        id: u32,
        #[serde(default)]
        theme: Option<String>,
    }

    #[test]
    fn a_struct_gains_a_field_without_breaking_stored_values() {
        let bytes = encode("user", &Old { id: 7 }).expect("encode");
        let new: New = decode("user", &bytes).expect("decode");
        assert_eq!(new, New { id: 7, theme: None });
    }

    #[test]
    fn concatenated_values_decode_one_by_one() {
        let mut run = encode("f", "one").expect("encode");
        run.extend(encode("f", "two").expect("encode"));
        let all: Vec<String> = decode_all("f", &run).expect("decode");
        assert_eq!(all, ["one", "two"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = decode::<Old>("user", &[crate::format::META, 0xff]).expect_err("garbage");
        assert!(matches!(err, Error::Decode { .. }));
        assert!(decode_all::<String>("f", &[crate::format::FIXSTR + 5, b'a']).is_err());
    }
}
