//! Binary values on the wire: standard base64 (with padding) inside JSON strings.
//! In binary formats (postcard, used for stored envelopes) they are plain
//! bytes: serde's `is_human_readable` tells the two apart.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that travel as a base64 string in JSON.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct B64(pub Vec<u8>);

impl B64 {
    pub fn encode(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(text)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for B64 {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for B64 {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

/// Prints only the length: values of this type are often keys or sealed blobs.
impl std::fmt::Debug for B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&Self::encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            Self::decode(&text)
                .map(Self)
                .map_err(|_| serde::de::Error::custom("invalid base64"))
        } else {
            d.deserialize_byte_buf(BytesVisitor)
        }
    }
}

struct BytesVisitor;

impl serde::de::Visitor<'_> for BytesVisitor {
    type Value = B64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<B64, E> {
        Ok(B64(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<B64, E> {
        Ok(B64(v))
    }
}

#[cfg(test)]
mod tests {
    use super::B64;

    #[test]
    fn round_trips_through_json() {
        let value = B64(vec![0, 1, 2, 250, 255]);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, "\"AAEC+v8=\"");
        let back: B64 = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn rejects_bad_base64_without_echoing_it() {
        let err = serde_json::from_str::<B64>("\"not base64!!\"").unwrap_err();
        assert!(err.to_string().contains("invalid base64"));
        assert!(!err.to_string().contains("not base64!!"));
    }

    #[test]
    fn binary_formats_carry_plain_bytes() {
        let value = B64(vec![0, 1, 2, 250, 255]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        // a length prefix and the bytes themselves, no base64
        assert_eq!(bytes, vec![5, 0, 1, 2, 250, 255]);
        let back: B64 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, value);
        assert!(postcard::from_bytes::<B64>(&[9, 1]).is_err());
    }

    #[test]
    fn debug_hides_contents() {
        assert_eq!(format!("{:?}", B64(vec![7; 32])), "B64(32 bytes)");
    }
}
