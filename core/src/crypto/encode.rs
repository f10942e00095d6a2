//! Unambiguous byte encodings for what we hash, sign or authenticate.
//!
//! Every variable-length field is preceded by its length as a big-endian u64,
//! and every encoding starts with a distinct, length-prefixed domain label, so
//! no two different inputs (or two different purposes) give the same bytes.
//! JSON text is never signed: its field order and escaping are not canonical.

/// Builds a canonical, length-prefixed byte string.
pub(crate) struct Canonical(Vec<u8>);

impl Canonical {
    /// Starts an encoding for one purpose; `domain` keeps purposes apart.
    pub(crate) fn new(domain: &[u8]) -> Self {
        let mut encoding = Self(Vec::with_capacity(256));
        encoding.bytes(domain);
        encoding
    }

    /// A variable-length field: length, then contents.
    pub(crate) fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // usize is at most 64 bits on every target we build for: lossless.
        self.0
            .extend_from_slice(&(value.len() as u64).to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A count (of list items, say), as a big-endian u64.
    pub(crate) fn count(&mut self, value: usize) -> &mut Self {
        self.0.extend_from_slice(&(value as u64).to_be_bytes());
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a byte string field by field; every read fails (None) past the end.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    /// A field written as a big-endian u32 length, then that many bytes.
    pub(crate) fn u32_prefixed(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        self.take(len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{Canonical, Reader};

    #[test]
    fn length_prefixes_keep_field_boundaries_apart() {
        let mut a = Canonical::new(b"test");
        a.bytes(b"ab").bytes(b"c");
        let mut b = Canonical::new(b"test");
        b.bytes(b"a").bytes(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn reader_refuses_to_read_past_the_end() {
        let mut reader = Reader::new(&[0, 0, 0, 5, 1, 2]);
        assert_eq!(reader.u32_prefixed(), None);
        let mut reader = Reader::new(&[0, 0, 0, 2, 1, 2]);
        assert_eq!(reader.u32_prefixed(), Some(&[1u8, 2][..]));
        assert!(reader.is_empty());
        assert_eq!(reader.u8(), None);
    }
}
